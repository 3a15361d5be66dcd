"""The benchmark harness runs end to end on a tiny world (N=3). It asserts that every case
ran and every file was written, never how fast anything was (speed lives in bench/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.report import VAULT_CHALLENGES_PER_PROCESS

TINY = [
    "--sizes=3",
    "--concurrency=3",
    "--c1-up-to=3",
    "--first-time-apps=3",
    "--plan-apps=3",
    "--coldstart-runs=1",
    "--graph-ms=0",
    "--vault-ms=0",
    "--smtp-ms=0",
    "--propagation=0",
    "--pacing-delays=0.2",
    "--pacing-window=1",
]


@pytest.mark.slow
def test_bench_runs_every_case_and_writes_its_results(tmp_path: Path) -> None:
    assert main([*TINY, f"--out={tmp_path}"]) == 0

    results = json.loads((tmp_path / "latest.json").read_text())
    rotations = {(r["apps"], r["concurrency"], r["scenario"]): r for r in results["rotations"]}
    assert set(rotations) == {(3, 1, "due"), (3, 3, "due"), (3, 3, "new")}
    for run in rotations.values():
        assert run["rotated"] == 3, run["errors"]
        assert run["graph_add_password"] == 3
        assert run["vault_writes"] >= 3
        assert run["smtp_auth"] >= 3
    assert results["plan"]["unchanged"] == 3
    assert results["plan"]["graph_get_one_app"] == 0
    assert results["plan"]["vault_version_reads"] == 0  # untouched apps: the listing only
    # One page of 6 secrets, and the challenge the vault's first request meets.
    assert results["plan"]["vault_list_pages"] == 1 + VAULT_CHALLENGES_PER_PROCESS
    assert results["coldstart"]["runs"] == 1
    assert results["critical_path_seconds"] is not None
    assert [r["delay"] for r in results["pacing"]["runs"]] == [0.2]
    assert {t["name"] for t in results["targets"]} >= {
        "Graph requests per rotated app (worst case)",
        "peak concurrent SMTP sessions",
    }
    text = (tmp_path / "latest.md").read_text()
    for heading in ("## Targets", "## Rotation", "## Plan over 3 apps", "## Cold start"):
        assert heading in text
    assert "AZURE_CLIENT_SECRET" not in text
