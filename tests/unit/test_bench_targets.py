"""bench/report.py's plan-floor target: a plan with latencies is held to its Key Vault paging
floor (pages x Key Vault latency), and the verdict follows the figures it is given."""

from __future__ import annotations

from dataclasses import replace

from bench.config import WorldConfig
from bench.plan import PlanResult
from bench.report import Suite, targets

NAME = "plan over 10,000 untouched apps against its Key Vault paging floor"


def plan(wall: float, *, latency: str = "Graph 50 ms, Key Vault 30 ms") -> PlanResult:
    return PlanResult(
        apps=10_000, concurrency=16, wall_seconds=wall, unchanged=10_000, other_outcomes=0,
        graph_requests=22, graph_list_applications=11, graph_list_service_principals=11,
        graph_get_one_app=0, graph_writes=0, vault_requests=801, vault_writes=0,
        arm_requests=283, peak_rss_mib=160.0, rss_growth_mib=70.0, seed_seconds=0.5,
        discovery_seconds=2.3, vault_list_pages=801, latency=latency,
    )  # fmt: skip


def floor_target(suite: Suite) -> tuple[str, bool | None]:
    (found,) = [t for t in targets(suite) if t.name == NAME]
    return found.measured, found.met


def test_a_plan_within_a_tenth_of_its_floor_meets_the_target() -> None:
    suite = Suite("test", WorldConfig(), plans=[plan(1.0, latency="no latency"), plan(26.0)])
    measured, met = floor_target(suite)
    assert measured == "26.0 s = 1.08x the floor (801 pages x 30 ms = 24.0 s)"
    assert met is True


def test_a_plan_further_above_it_misses() -> None:
    suite = Suite("test", WorldConfig(), plans=[plan(32.0)])
    measured, met = floor_target(suite)
    assert measured.startswith("32.0 s = 1.33x the floor")
    assert met is False


def test_no_floor_without_key_vault_latency_or_a_plan_with_it() -> None:
    quiet = Suite("test", replace(WorldConfig(), vault_ms=0), plans=[plan(32.0)])
    bare_only = Suite("test", WorldConfig(), plans=[plan(4.0, latency="no latency")])
    for suite in (quiet, bare_only, Suite("test", WorldConfig())):
        assert NAME not in {t.name for t in targets(suite)}
