"""The fence an app's writes pass (rotation/core/fencing.py) and the lease's own
(rotation/azure/blob_lease.LeaseFence): closed once the lease is lost or may have lapsed."""

from __future__ import annotations

import asyncio
import time

import pytest

from rotation.azure.blob_lease import LeaseFence
from rotation.core import fencing
from rotation.errors import LeaseLost

APP = "8d2f6f4e-54b5-4a4e-9a51-0a1f36a8a0c1"


class _Closed:
    """A fence whose lease is gone: every check it is asked raises, and is counted."""

    def __init__(self) -> None:
        self.asked = 0

    def check(self) -> None:
        self.asked += 1
        raise LeaseLost("the lease is gone")


async def test_without_a_lease_store_every_write_passes() -> None:
    """No lease store: no fence is set, so `check` asks none, even while another app's
    task holds a closed one (each task sees only its own) and after a block has ended."""
    closed = _Closed()
    inside, done = asyncio.Event(), asyncio.Event()

    async def other_app() -> None:
        with fencing.fenced(closed):
            inside.set()
            await done.wait()
            with pytest.raises(LeaseLost):
                fencing.check()

    task = asyncio.create_task(other_app())
    await inside.wait()
    fencing.check()  # this task: no lease store, no fence
    done.set()
    await task
    assert closed.asked == 1  # asked by its own task only
    with fencing.fenced(closed), pytest.raises(LeaseLost):
        fencing.check()
    fencing.check()  # the block has ended: no fence again
    assert closed.asked == 2


def test_a_fresh_lease_lets_writes_through_until_its_margin() -> None:
    fence = LeaseFence(APP, 60, time.monotonic())
    with fencing.fenced(fence):
        fencing.check()
    assert 40 < fence.left() <= 45  # a quarter of the lease kept in hand


def test_a_lease_not_renewed_for_its_length_stops_the_next_write() -> None:
    fence = LeaseFence(APP, 15, time.monotonic() - 12)  # 3 s left: inside the margin
    with fencing.fenced(fence), pytest.raises(LeaseLost, match=f"lost the lease of app {APP}"):
        fencing.check()
    assert not fence.taken  # it may still be ours: released as usual


def test_a_renewal_moves_the_fence_on() -> None:
    fence = LeaseFence(APP, 15, time.monotonic() - 12)
    fence.renewed(time.monotonic())
    fence.check()


def test_a_lease_another_run_took_stops_every_write_after() -> None:
    fence = LeaseFence(APP, 60, time.monotonic())
    fence.lose("taken", "storage refused its renewal (LeaseIdMismatchWithLeaseOperation)")
    fence.renewed(time.monotonic())  # a late answer does not reopen it
    with fencing.fenced(fence), pytest.raises(LeaseLost, match="storage refused its renewal"):
        fencing.check()
    assert fence.taken
    assert fence.left() == 0
    fencing.check()  # outside the block: no fence
