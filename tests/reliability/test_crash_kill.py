"""`python -m rotation run` killed (SIGKILL) at every step boundary; the next runs converge.

The sandbox runs in this test's event loop and the rotator in a child process pointed at
it. Each kill waits for a condition on the sandbox, never for a time: a request arriving,
held there by an injected fault until the process is dead. Afterwards the Key Vault
password must work, the next runs must converge to the one credential Key Vault serves
(orphans go once the sandbox clock passes their verify window), and a further run must
write nothing.

Starting point as in test_crash_cancel: Key Vault serves K1, a person added M, grace 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from asyncio.subprocess import Process
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from rotation.model import Outcome
from sandbox.faults import Fault
from sandbox.server import Sandbox
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import (
    REPO,
    HoldAfter,
    MakeWorld,
    Tripwire,
    VaultWatch,
    World,
    break_dead_leases,
    converge,
    set_propagation_delay,
    wait_until,
)

HOLD = 30.0  # seconds a held request waits: far longer than the kill takes
ADD = "graph POST /applications/{id}/addPassword"
REMOVE = "graph POST /applications/{id}/removePassword"
PUT = "vault PUT /secrets/{name}"
PATCH = "vault PATCH /secrets/{name}/{version}"


@dataclass(frozen=True)
class Kill:
    name: str
    route: str  # the request whose arrival (the `count`-th) is the moment to kill
    count: int
    fault: Callable[[Process], Fault] | None  # holds the rotator there (or kills it)
    never_propagates: bool = False  # new secrets never start working (verify cannot pass)
    promoted: bool = False  # Key Vault serves the new credential afterwards


KILLS = [
    Kill("after create", "smtp CONNECT", 1, None, never_propagates=True),
    Kill("after verify", "smtp QUIT", 1, lambda _: Fault("smtp QUIT", latency=HOLD)),
    Kill("promote sent, never landed", PUT, 1, lambda _: HoldAfter(PUT, 0, HOLD)),
    # Killed the instant the write reaches Key Vault, which still carries it out.
    Kill("promote landed, rotator dead", PUT, 1, lambda p: Tripwire(PUT, p.kill), promoted=True),
    Kill("after promote", REMOVE, 1, lambda _: HoldAfter(REMOVE, 0, HOLD), promoted=True),
    Kill("in the middle of retire", REMOVE, 2, lambda _: HoldAfter(REMOVE, 1, HOLD), promoted=True),
    Kill(
        "after retire, before disable", PATCH, 1, lambda _: HoldAfter(PATCH, 0, HOLD), promoted=True
    ),
]


async def prepared(sandbox: Sandbox, make_world: MakeWorld) -> World:
    world = make_world(1, grace_hours=0)
    first = await world.service.run()
    assert first.outcomes[0].outcome is Outcome.ROTATED
    sandbox.state.add_password(world.senders[0].app, display_name="added by a person")
    return world


async def rotator_process(world: World, app_id: str) -> Process:
    env = {**os.environ, **world.env, "PYTHONPATH": REPO}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rotation", "run", "--force", "--json", "--app", app_id,
        env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kill", KILLS, ids=[k.name for k in KILLS])
async def test_a_killed_run_converges_on_the_next_runs(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger, kill: Kill
) -> None:
    world = await prepared(sandbox, make_world)
    sender = world.senders[0]
    k1 = world.live_key_id(sender)
    before = world.key_ids(sender)
    if kill.never_propagates:
        set_propagation_delay(sandbox, 3600)
    stop = asyncio.Event()
    watch = VaultWatch(world, [sender])
    monitor = asyncio.create_task(watch.run(stop))
    seen = world.count(kill.route)

    process = await rotator_process(world, sender.app_id)
    if kill.fault is not None:  # the child sends nothing before its imports are done
        sandbox.state.faults.add(kill.fault(process))
    await wait_until(
        lambda: world.count(kill.route) >= seen + kill.count or process.returncode is not None,
        f"the child's request {kill.route} #{kill.count}",
        timeout=60,
    )
    assert process.returncode is None, "the rotator finished before the kill"
    with contextlib.suppress(ProcessLookupError):  # a tripwire may have killed it already
        process.kill()
    out, err = await process.communicate()
    evidence.add("killed rotator stdout", out.decode())
    evidence.add("killed rotator stderr", err.decode())
    sandbox.state.faults.clear()
    set_propagation_delay(sandbox, 0)
    # The dead rotator held the app's lease at every one of these steps; it would expire
    # within ROTATION_LEASE_SECONDS (test_leases.py waits for that once). Broken here.
    assert await break_dead_leases(world) == 1
    created = world.our_key_ids(sender) - before
    assert len(created) == 1
    new = created.pop()
    if kill.promoted:  # a write may land after its sender died: wait for it, not for time
        await wait_until(lambda: world.live_key_id(sender) == new, "the promote to land")
    assert world.live_key_id(sender) == (new if kill.promoted else k1)
    assert world.password_works(sender), "I1: Key Vault's password broke at the kill"

    runs = await converge(world, sender, evidence.add)
    stop.set()
    await monitor
    assert watch.violations == []
    ledger.record(
        f"crash by SIGKILL of `python -m rotation run`: {kill.name}",
        f"child killed when {kill.route} #{kill.count} reached the sandbox, then {runs} runs "
        f"(clock moved past the verify window); I1 sampled {watch.samples} times",
        "Key Vault password worked throughout; converged to the one Key Vault credential; "
        "no orphan outlived its window; no enabled version of a removed credential; "
        "the run after that wrote nothing",
    )
