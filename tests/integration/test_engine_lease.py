"""The engine and the Leases port, with in-memory fakes of the port (the real rotator and
sandbox otherwise): an app is changed only under its lease, a held app is busy and left
alone, and a lease store that cannot be used stops the run before anything changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from rotation import answers
from rotation.errors import LeaseStoreUnavailable, LeaseTaken
from rotation.model import Mode, Outcome, RunOptions
from sandbox.server import Sandbox
from sandbox.state import SandboxState
from tests.integration.conftest import OpenService

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def writes(state: SandboxState) -> int:
    return sum(
        n
        for key, n in state.requests.items()
        if key.split()[0] in ("graph", "vault") and key.split()[1] in WRITES
    )


class MemoryLeases:
    """The port in memory: one holder per app; `taken` apps are held by "another run".
    Records the Graph and Key Vault write count as each lease is taken and given back."""

    def __init__(self, state: SandboxState, taken: Collection[str] = ()) -> None:
        self.state = state
        self.held: dict[str, str] = dict.fromkeys(taken, "0123456789ab")
        self.spans: list[tuple[str, int, int]] = []
        self.ready_calls = 0

    async def ready(self) -> None:
        self.ready_calls += 1

    @asynccontextmanager
    async def hold(self, app_id: str, run_id: str | None = None) -> AsyncIterator[None]:
        if app_id in self.held:
            holder = self.held[app_id]
            raise LeaseTaken(f"run {holder} holds the lease of app {app_id}", holder)
        self.held[app_id] = run_id or ""
        taken_at = writes(self.state)
        try:
            yield
        finally:
            self.held.pop(app_id)
            self.spans.append((app_id, taken_at, writes(self.state)))


class DownLeases(MemoryLeases):
    async def ready(self) -> None:
        raise LeaseStoreUnavailable("cannot reach the lease store, storage account stdown")


async def test_every_write_of_a_rotation_happens_under_the_apps_lease(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=3))
    leases = MemoryLeases(sandbox.state)
    # create -> verify -> promote -> retire
    async with open_service(grace_hours=0, leases=leases) as service:
        (outcome,) = (await service.run()).outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert outcome.removed_key_ids == [sender.password.key_id]  # retired in the same hold
    assert leases.spans == [(sender.app_id.lower(), 0, writes(sandbox.state))]
    assert leases.held == {}  # given back


async def test_an_app_another_run_holds_is_busy_and_untouched(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    held = sandbox.add_sender(lifetime=timedelta(days=3))
    free = sandbox.add_sender(lifetime=timedelta(days=3))
    leases = MemoryLeases(sandbox.state, taken={held.app_id.lower()})
    async with open_service(leases=leases) as service:
        report = await service.run()
    outcomes = {o.app_id: o for o in report.outcomes}
    assert outcomes[held.app_id].outcome is Outcome.BUSY
    assert "run 0123456789ab holds the lease" in (outcomes[held.app_id].error or "")
    assert outcomes[held.app_id].held_by == "0123456789ab"
    assert outcomes[free.app_id].outcome is Outcome.ROTATED
    assert report.ok  # busy is not a failure
    assert answers.RunReport.of(report).body()["busy"] == [held.app_id]
    assert [p.key_id for p in held.app.passwords] == [held.password.key_id]


async def test_an_unusable_lease_store_stops_the_run_before_any_write(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sandbox.add_sender(lifetime=timedelta(days=3))
    async with open_service(leases=DownLeases(sandbox.state)) as service:
        with pytest.raises(LeaseStoreUnavailable, match="storage account stdown"):
            await service.run(RunOptions(mode=Mode.FORCE))
    assert writes(sandbox.state) == 0


async def test_a_dry_run_needs_no_lease_store(sandbox: Sandbox, open_service: OpenService) -> None:
    sandbox.add_sender(lifetime=timedelta(days=3))
    leases = DownLeases(sandbox.state)
    async with open_service(leases=leases) as service:
        (outcome,) = (await service.run(RunOptions(dry_run=True))).outcomes
    assert outcome.outcome is Outcome.PLANNED
    assert leases.spans == []
