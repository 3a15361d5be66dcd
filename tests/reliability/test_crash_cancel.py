"""A run cancelled at every step boundary; the next runs converge (I1, I3, I5, I7).

The cancellation is exact, never timed: the engine's own log event for a step (or the
sandbox receiving the promote request) cancels the run's task synchronously, so the
CancelledError lands at the engine's very next suspension. That suspension can come after
the next request's bytes have left (a pooled connection and a cached token need no wait), so
a boundary that means "before that request" also loses it, as a crash would. Throughout, a monitor checks every
5 ms that the password in Key Vault works.

Each scenario starts from an app whose Key Vault password exists (key K1) and that also
has a secret a person added (M); grace is 0, so a completed forced run would create K2,
verify it, promote it and remove K1 and M.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from rotation.model import Mode, Outcome, RunOptions
from sandbox.faults import Fault
from sandbox.server import Sandbox
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import (
    EngineEvents,
    MakeWorld,
    Tripwire,
    VaultWatch,
    World,
    converge,
    set_propagation_delay,
)


@dataclass(frozen=True)
class Boundary:
    name: str
    event: str | None = None  # engine event that cancels the run
    request: str | None = None  # or: sandbox route whose arrival cancels it
    orphaned: bool = False  # the new credential never reached Key Vault
    promoted: bool = False  # Key Vault serves the new credential after the crash
    lost: str | None = None  # route of the next request, lost if it leaves after the cancel


BOUNDARIES = [
    Boundary("after create", event="credential.created", orphaned=True),
    Boundary(
        "after verify", event="smtp.verified", orphaned=True, lost="vault PUT /secrets/{name}"
    ),
    Boundary("promote request in flight", request="vault PUT /secrets/{name}", promoted=True),
    Boundary("after promote", event="vault.promoted", promoted=True),
    Boundary("in the middle of retire", event="credential.removed", promoted=True),
]


async def prepared(sandbox: Sandbox, make_world: MakeWorld) -> World:
    set_propagation_delay(sandbox, 0.2)
    world = make_world(1, grace_hours=0)
    first = await world.service.run()
    assert first.outcomes[0].outcome is Outcome.ROTATED
    sandbox.state.add_password(world.senders[0].app, display_name="added by a person")
    return world


@pytest.mark.slow
@pytest.mark.parametrize("boundary", BOUNDARIES, ids=[b.name for b in BOUNDARIES])
async def test_a_cancelled_run_converges_on_the_next_runs(
    sandbox: Sandbox,
    make_world: MakeWorld,
    evidence: LeakScan,
    ledger: Ledger,
    boundary: Boundary,
) -> None:
    world = await prepared(sandbox, make_world)
    sender = world.senders[0]
    k1 = world.live_key_id(sender)
    before = world.key_ids(sender)
    stop = asyncio.Event()
    watch = VaultWatch(world, [sender])
    monitor = asyncio.create_task(watch.run(stop))
    events = EngineEvents()
    with events.attached():
        crashed = asyncio.create_task(world.service.run(RunOptions(mode=Mode.FORCE)))
        lost: list[Fault] = []

        def cancel(*_: object) -> None:
            crashed.cancel()
            if boundary.lost:
                lost.append(sandbox.state.faults.inject(boundary.lost, drop=True, times=1))

        if boundary.event:
            events.triggers[boundary.event] = cancel
        else:
            assert boundary.request
            sandbox.state.faults.add(Tripwire(boundary.request, cancel))
        with pytest.raises(asyncio.CancelledError):
            await crashed
    for fault in lost:  # a request that never left must not be lost by the next run
        sandbox.state.faults.faults.remove(fault)

    created = world.our_key_ids(sender) - before
    assert len(created) == 1, "the cancelled run should have created exactly one credential"
    assert world.password_works(sender), "I1: Key Vault's password broke at the crash"
    served = world.live_key_id(sender)
    assert served == (created.pop() if boundary.promoted else k1)
    if boundary.event == "credential.removed":
        assert len(world.key_ids(sender)) == len(before), "exactly one of K1, M was removed"

    runs = await converge(world, sender, evidence.add)
    stop.set()
    await monitor
    assert watch.violations == []
    ledger.record(
        f"crash by task cancellation: {boundary.name}",
        f"forced run cancelled at '{boundary.event or boundary.request}', then {runs} runs "
        "(clock moved past the verify window); I1 sampled "
        f"{watch.samples} times",
        "Key Vault password worked throughout; converged to the one Key Vault credential; "
        "no orphan outlived its window; no enabled version of a removed credential; "
        "the run after that wrote nothing",
    )
