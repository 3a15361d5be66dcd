"""Rotating N due apps at concurrency C: wall time, per-app calls, memory, SMTP sessions.

One case = one fresh sandbox process seeded with N due senders and one rotator run
(`RotationService.run()`, discovery and observation included, as the timer runs it).

The *critical path* of one app is what a rotation costs when nothing else runs: create
(addPassword), verify (SMTP AUTH retried until the new secret has propagated) and promote
(Key Vault write). At concurrency 1 the apps run back to back, so the time between two
consecutive finished apps is exactly one critical path; its median over the C=1 runs is the
figure the bound ceil(N/C) x critical path uses.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.config import WorldConfig
from bench.memory import peak_rss_kib, reset_peak, rss_kib
from bench.product import LogEvent, open_product
from bench.world import SandboxProcess
from rotation.model import AppOutcome, Outcome

ADD_PASSWORD = "/applications/{id}/addPassword"


@dataclass
class RotationResult:
    apps: int
    concurrency: int
    scenario: str
    wall_seconds: float
    rotated: int
    failed: int
    unfinished: int
    errors: list[str]
    graph_requests: int
    graph_add_password: int
    graph_reads: int
    vault_requests: int
    vault_writes: int
    smtp_connections: int
    smtp_auth: int
    arm_requests: int
    login_requests: int
    peak_smtp_sessions: int
    peak_rss_mib: float
    rss_growth_mib: float
    discovery_seconds: float | None
    observe_seconds: float | None  # run start -> first plan (discovery + Graph + Key Vault reads)
    per_app_seconds: list[float] = field(default_factory=list)  # gaps between finished apps
    create_seconds: list[float] = field(default_factory=list)  # C=1 only: see _create_times
    verify_seconds: list[float] = field(default_factory=list)
    promote_seconds: list[float] = field(default_factory=list)
    verify_attempts: list[int] = field(default_factory=list)
    log_lines: int = 0
    log_bytes: int = 0
    seed_seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)  # every counter of the sandbox

    @property
    def ok(self) -> bool:
        return self.rotated == self.apps and not self.failed and not self.unfinished

    def per(self, count: int) -> float:
        return count / self.rotated if self.rotated else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RotationResult:
        return cls(**data)


async def run_rotation(
    apps: int, concurrency: int, config: WorldConfig, *, scenario: str = "due"
) -> RotationResult:
    """Seeds `apps` senders in `scenario` and times one rotator run at `concurrency`."""
    async with SandboxProcess.start(apps=apps, scenario=scenario, config=config) as world:  # noqa: SIM117
        async with open_product(world, max_concurrency=concurrency) as (service, tap):
            finished: list[float] = []

            def on_outcome(outcome: AppOutcome) -> None:
                if outcome.outcome is Outcome.ROTATED:
                    finished.append(time.perf_counter())

            await world.reset()
            tap.clear()
            reset_peak()
            baseline = rss_kib()
            began = datetime.now(UTC)
            started = time.perf_counter()
            report = await service.run(on_outcome=on_outcome)
            wall = time.perf_counter() - started
            peak = peak_rss_kib()
            stats = await world.stats()
    outcomes = report.outcomes
    verify, promote, attempts = _step_times(tap.events)
    return RotationResult(
        apps=apps,
        concurrency=concurrency,
        scenario=scenario,
        wall_seconds=wall,
        rotated=sum(o.outcome is Outcome.ROTATED for o in outcomes),
        failed=sum(o.outcome is Outcome.FAILED for o in outcomes),
        unfinished=sum(o.outcome is Outcome.UNFINISHED for o in outcomes),
        errors=sorted({o.error for o in outcomes if o.error})[:5],
        graph_requests=stats.count("graph"),
        graph_add_password=stats.count("graph", "POST", ADD_PASSWORD),
        graph_reads=stats.count("graph", "GET"),
        vault_requests=stats.count("vault"),
        vault_writes=stats.count("vault", "PUT") + stats.count("vault", "PATCH"),
        smtp_connections=stats.count("smtp", "CONNECT"),
        smtp_auth=stats.count("smtp", "AUTH"),
        arm_requests=stats.count("arm"),
        login_requests=stats.count("login"),
        peak_smtp_sessions=stats.peak_smtp_sessions,
        peak_rss_mib=peak / 1024,
        rss_growth_mib=(peak - baseline) / 1024,
        discovery_seconds=_since(began, tap.events, "discovery.finished"),
        observe_seconds=_since(began, tap.events, "app.planned"),
        per_app_seconds=[b - a for a, b in itertools.pairwise(finished)],
        create_seconds=_create_times(tap.events) if concurrency == 1 else [],
        verify_seconds=verify,
        promote_seconds=promote,
        verify_attempts=attempts,
        log_lines=tap.lines,
        log_bytes=tap.bytes,
        seed_seconds=world.seed_seconds,
        requests=dict(stats.requests),
    )


def critical_path(results: Sequence[RotationResult]) -> float | None:
    """Median time of one app's rotation when apps run one at a time (C=1 runs)."""
    gaps = [g for r in results if r.concurrency == 1 and r.ok for g in r.per_app_seconds]
    return statistics.median(gaps) if gaps else None


def _first(events: Sequence[LogEvent], name: str) -> LogEvent | None:
    return next((e for e in events if e.event == name), None)


def _since(began: datetime, events: Sequence[LogEvent], name: str) -> float | None:
    event = _first(events, name)
    return (event.at - began).total_seconds() if event else None


def _create_times(events: Sequence[LogEvent]) -> list[float]:
    """At concurrency 1, an app's create starts when the previous app's promote ended, so
    the time from one `vault.promoted` to the next `credential.created` is one create."""
    out, promoted = [], None
    for e in events:
        if e.event == "vault.promoted":
            promoted = e.at
        elif e.event == "credential.created" and promoted is not None:
            out.append((e.at - promoted).total_seconds())
            promoted = None
    return out


def _step_times(events: Sequence[LogEvent]) -> tuple[list[float], list[float], list[int]]:
    """Per app: created -> verified, verified -> promoted, and SMTP attempts."""
    created: dict[str, LogEvent] = {}
    verified: dict[str, LogEvent] = {}
    verify, promote, attempts = [], [], []
    for e in events:
        if e.app_id is None:
            continue
        if e.event == "credential.created":
            created[e.app_id] = e
        elif e.event == "smtp.verified" and e.app_id in created:
            verified[e.app_id] = e
            verify.append((e.at - created[e.app_id].at).total_seconds())
            if e.attempts is not None:
                attempts.append(e.attempts)
        elif e.event == "vault.promoted" and e.app_id in verified:
            promote.append((e.at - verified[e.app_id].at).total_seconds())
    return verify, promote, attempts
