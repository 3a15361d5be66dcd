"""README's Performance figures, rendered from the committed results (bench/results/latest.json).

`make docs` (``python -m tests.bench_doc --write``) rewrites the block between the markers;
tests/unit/test_bench_doc.py fails while README and the results differ. Each figure says
whether it varies from run to run and by how much, read from the same results: request
counts are the same every run; times move with the machine's load, and the spread shown is
the one the run itself saw (its per-app samples, its repeated cold starts).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results" / "latest.json"
BEGIN = "<!-- BEGIN performance figures generated from bench/results/latest.json: make docs -->"
END = "<!-- END performance figures -->"
PACING_BEGIN = "<!-- BEGIN pacing figures generated from bench/results/latest.json: make docs -->"
PACING_END = "<!-- END pacing figures -->"
SAME = "no: the same every run"


def load() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(RESULTS.read_text(encoding="utf-8"))
    return results


def rotation(results: dict[str, Any], apps: int, concurrency: int, scenario: str = "due") -> Any:
    return next(
        r
        for r in results["rotations"]
        if (r["apps"], r["concurrency"], r["scenario"]) == (apps, concurrency, scenario)
    )


def _spread(run: dict[str, Any]) -> str:
    """How far one app's verification (3 s of it the propagation) strayed within the run."""
    verify = run["verify_seconds"]
    return (
        f"yes, with the machine's load: an app's verification took {verify['median']:.1f} s "
        f"median, {verify['p90']:.1f} s p90, {verify['max']:.1f} s max in this run"
    )


def _rotations(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    path = results["critical_path_seconds"]
    rows = []
    for concurrency, label in ((32, ""), (16, " (the default)")):
        run = rotation(results, 1000, concurrency)
        bound = math.ceil(run["apps"] / concurrency) * path
        rows.append(
            (
                f"1,000 apps at concurrency {concurrency}{label}",
                f"{run['wall_seconds']:.0f} s ({run['apps'] / run['wall_seconds'] * 60:.0f} "
                f"apps/min), {run['wall_seconds'] / bound:.2f}x the bound ceil(N/C) x one "
                f"app's {path:.1f} s",
                _spread(run),
            )
        )
    fast = rotation(results, 1000, 32)
    rows.append(
        (
            "against one app at a time",
            f"{path * 1000 / fast['wall_seconds']:.0f}x faster at concurrency 32 "
            f"({path * 1000:,.0f} s derived: 1,000 x one app's {path:.1f} s)",
            "as the two times it divides",
        )
    )
    per = rotation(results, 100, 32)
    rows.append(
        (
            "requests per rotated app (100 apps, concurrency 32)",
            f"Graph {per['graph_requests'] / per['rotated']:.2f}, Key Vault "
            f"{per['vault_requests'] / per['rotated']:.2f} (one write, and its share of the "
            f"vault listing), SMTP handshakes {per['smtp_connections'] / per['rotated']:.1f} "
            f"(the retries through propagation)",
            f"Graph and Key Vault {SAME}; SMTP handshakes with the propagation's timing",
        )
    )
    first = rotation(results, 100, 32, "new")
    rows.append(
        (
            "Key Vault requests per app, first rotation",
            f"{first['vault_requests'] / first['rotated']:.2f} (the `-username` companion "
            "secret is written once, on top)",
            SAME,
        )
    )
    return rows


def _plans(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for plan in results["plans"]:
        latency = plan["latency"] or "no latency"
        rows.append(
            (
                f"plan over {plan['apps']:,} untouched apps, {latency}",
                f"{plan['wall_seconds']:.1f} s wall, discovery {plan['discovery_seconds']:.1f} s",
                "yes, with the machine's load: one run per results file (see the load above)",
            )
        )
    plan = results["plans"][-1]
    rows += [
        (
            "Key Vault requests per untouched app",
            f"{(plan['vault_requests'] - 1) / plan['apps']:.2f} ({plan['vault_requests']:,} "
            "requests: listing pages of 25 secrets, a password and its `-username` companion "
            "per app, and one authentication challenge); the target is this floor, 2/25 = 0.08: "
            "no run can read fewer pages (the earlier 0.05 was below it)",
            SAME,
        ),
        (
            f"Graph requests, plan over {plan['apps']:,} apps",
            f"{plan['graph_requests']} (paged listings, {plan['graph_get_one_app']} per-app GETs)",
            SAME,
        ),
    ]
    return rows


def _others(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    cold = results["coldstart"]
    app = cold["app"]
    time_ratio, memory_ratio = cold["time_ratio"], cold["memory_ratio"]
    return [
        (
            "cold start",
            f"importing `function_app` takes {time_ratio:.2f}x the time and {memory_ratio:.2f}x "
            "the memory of the six SDK packages alone",
            f"yes: time {min(app['seconds']):.2f} to {max(app['seconds']):.2f} s over "
            f"{cold['runs']} fresh processes; memory within "
            f"{(max(app['rss_kib']) - min(app['rss_kib'])) / 1024:.1f} MiB",
        ),
        (
            "JSON answer of a 10,000-app run (`python -m bench.answers`)",
            results["answers"],
            "yes, with the machine's load: the best of 7 in one process",
        ),
        (
            "an API caller's token check (`python -m bench.auth`)",
            results["auth"],
            "yes, with the machine's load: the best of 7 rounds in one process",
        ),
    ]


def table(results: dict[str, Any] | None = None) -> list[str]:
    results = results or load()
    machine = results["machine"]
    rows = [*_rotations(results), *_plans(results), *_others(results)]
    return [
        BEGIN,
        f"Measured {machine['date']} at commit {machine['commit']} ({machine['cpu']}, "
        f"{machine['nproc']} vCPU, {machine['python']}; load average "
        f"{machine['load average (1 min) at start / end']} at start / end), `python -m bench` "
        f"({results['mode']} mode):",
        "",
        "| | latest | varies run to run? |",
        "|---|---|---|",
        *(f"| {label} | {figure} | {varies} |" for label, figure, varies in rows),
        END,
    ]


def pacing(results: dict[str, Any] | None = None) -> list[str]:
    """The verification pacing case: created-to-verified per propagation delay, and the
    attempts a secret that never works costs over a verify window."""
    data = (results or load())["pacing"]
    rows = [
        PACING_BEGIN,
        "| propagation delay | created to verified | late | allowed: max(2 s, 15 %) "
        "| AUTH attempts |",
        "|---|---|---|---|---|",
    ]
    for run in data["runs"]:
        late, allowed = run["verified_seconds"] - run["delay"], max(2.0, 0.15 * run["delay"])
        rows.append(
            f"| {run['delay']:g} s | {run['verified_seconds']:.2f} s | {late:+.2f} s "
            f"| {allowed:.2f} s | {run['attempts']} |"
        )
    if data["window_seconds"]:
        rate = data["window_attempts"] / data["window_seconds"] * 5
        rows.append(
            f"| never (a {data['window_seconds']:g} s verify timeout) | - | - | - "
            f"| {data['window_attempts']}: {rate:.2f} per 5 s |"
        )
    return [*rows, PACING_END]


def write() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    for begin, end, block in ((BEGIN, END, table()), (PACING_BEGIN, PACING_END, pacing())):
        start, stop = lines.index(begin), lines.index(end)
        lines = [*lines[:start], *block, *lines[stop + 1 :]]
    README.write_text("\n".join(lines) + "\n", "utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print("\n".join(table()))
