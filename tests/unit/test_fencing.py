"""The fence an app's writes pass (rotation/core/fencing.py) and the lease's own
(rotation/azure/blob_lease.LeaseFence): closed once the lease is lost or may have lapsed."""

from __future__ import annotations

import time

import pytest

from rotation.azure.blob_lease import LeaseFence
from rotation.core import fencing
from rotation.errors import LeaseLost

APP = "8d2f6f4e-54b5-4a4e-9a51-0a1f36a8a0c1"


def test_without_a_lease_store_every_write_passes() -> None:
    fencing.check()


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
