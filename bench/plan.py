"""Planning over many apps when nothing is due: what a daily timer run costs on most days.

The sandbox holds N senders whose secrets are healthy and already in Key Vault, as the
rotator leaves them (``settled-version`` tag, -username companions); the rotator runs a dry
run (`python -m rotation plan`), discovery included. The figures that matter are the Graph
requests (a paged `$select` listing and batched look-ups, never one GET per app), the Key
Vault requests (one paged listing of the vault, no version listing for an untouched app)
and the wall time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.config import WorldConfig
from bench.memory import peak_rss_kib, reset_peak, rss_kib
from bench.product import LogEvent, open_product
from bench.world import SandboxProcess
from rotation.model import Outcome, RunOptions

GET_ONE_APP = ("/applications/{id}", "/applications(appId='{appId}')")


@dataclass
class PlanResult:
    apps: int
    concurrency: int
    wall_seconds: float
    unchanged: int
    other_outcomes: int
    graph_requests: int
    graph_list_applications: int
    graph_list_service_principals: int
    graph_get_one_app: int
    graph_writes: int
    vault_requests: int
    vault_writes: int
    arm_requests: int
    peak_rss_mib: float
    rss_growth_mib: float
    seed_seconds: float
    discovery_seconds: float
    requests: dict[str, int] = field(default_factory=dict)  # every counter of the sandbox
    vault_list_pages: int = 0  # GET /secrets: the vault-wide listing (and the challenge)
    vault_version_reads: int = 0  # GET /secrets/{name}/versions: one app's history
    latency: str = ""  # the world's injected latencies, e.g. "Graph 50 ms, Key Vault 30 ms"

    @property
    def ok(self) -> bool:
        return (
            self.unchanged == self.apps
            and not self.other_outcomes
            and not self.graph_writes
            and not self.vault_writes
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanResult:
        return cls(**data)


async def run_plan(apps: int, config: WorldConfig, *, concurrency: int = 16) -> PlanResult:
    async with SandboxProcess.start(apps=apps, scenario="steady", config=config) as world:  # noqa: SIM117
        async with open_product(world, max_concurrency=concurrency) as (service, tap):
            await world.reset()
            reset_peak()
            baseline = rss_kib()
            tap.clear()
            began = datetime.now(UTC)
            started = time.perf_counter()
            # As `python -m rotation plan` runs it: the vault listing beside discovery.
            report = await service.run(RunOptions(dry_run=True))
            wall = time.perf_counter() - started
            peak = peak_rss_kib()
            stats = await world.stats()
    unchanged = sum(o.outcome is Outcome.UNCHANGED for o in report.outcomes)
    return PlanResult(
        apps=apps,
        concurrency=concurrency,
        wall_seconds=wall,
        unchanged=unchanged,
        other_outcomes=len(report.outcomes) - unchanged,
        graph_requests=stats.count("graph"),
        graph_list_applications=stats.count("graph", "GET", "/applications"),
        graph_list_service_principals=stats.count("graph", "GET", "/servicePrincipals"),
        graph_get_one_app=sum(stats.count("graph", "GET", r) for r in GET_ONE_APP),
        graph_writes=stats.count("graph", "POST"),
        vault_requests=stats.count("vault"),
        vault_writes=stats.count("vault", "PUT") + stats.count("vault", "PATCH"),
        arm_requests=stats.count("arm"),
        peak_rss_mib=peak / 1024,
        rss_growth_mib=(peak - baseline) / 1024,
        seed_seconds=world.seed_seconds,
        discovery_seconds=_since(began, tap.events, "discovery.finished"),
        requests=dict(stats.requests),
        vault_list_pages=stats.count("vault", "GET", "/secrets"),
        vault_version_reads=stats.count("vault", "GET", "/secrets/{name}/versions"),
        latency=config.latency_label,
    )


def _since(began: datetime, events: Sequence[LogEvent], name: str) -> float:
    """Seconds from `began` to the first `name` event (discovery ends inside the run now)."""
    at = next((e.at for e in events if e.event == name), None)
    return (at - began).total_seconds() if at is not None else 0.0
