"""The committed benchmark results describe the code as it is (issue 27 item 5).

Timings move with the machine, so they cannot be re-checked here; the request counts cannot
move without the code changing, and they are what the timings are made of. This runs the two
smallest cases of `python -m bench` again (10 due apps at concurrency 16; the plan without
latency) and fails when Graph, Key Vault or Resource Manager see other requests than
bench/results/latest.json records: then the results are stale, and `python -m bench` (and
`make docs`, which renders README's Performance from them) must run again. The results also
record a digest of the code they measured (`sources`), for the reader.
"""

from __future__ import annotations

import pytest

from bench.case import run_case
from bench.config import WorldConfig
from tests import bench_doc

STALE = (
    "the code makes other requests than bench/results/latest.json records: run `python -m bench`"
)
COUNTED = ("graph_requests", "vault_requests", "arm_requests", "graph_writes", "vault_writes")


@pytest.mark.slow
def test_a_small_rotation_makes_the_requests_the_results_record() -> None:
    results = bench_doc.load()
    recorded = bench_doc.rotation(results, 10, 16)
    config = WorldConfig(**results["config"]).without_latency()

    measured = run_case("rotate", ["--apps=10", "--concurrency=16"], config, 300)

    assert measured["rotated"] == 10
    for key in ("graph_requests", "graph_add_password", "vault_requests", "vault_writes"):
        assert measured[key] == recorded[key], f"{key}: {STALE}"


@pytest.mark.slow
def test_the_plan_makes_the_requests_the_results_record() -> None:
    results = bench_doc.load()
    recorded = results["plans"][0]  # without latency: the quicker of the two
    config = WorldConfig(**results["config"]).without_latency()

    measured = run_case("plan", [f"--apps={recorded['apps']}"], config, 600)

    for key in COUNTED:
        assert measured[key] == recorded[key], f"{key}: {STALE}"
