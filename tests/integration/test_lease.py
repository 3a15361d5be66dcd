"""BlobLeases against Azurite, the sandbox's blob service: the real azure-storage-blob aio
client over HTTPS with a bearer token from the sandbox's Entra, the real lease protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest
from azure.core.credentials_async import AsyncTokenCredential
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient
from structlog.testing import capture_logs

from rotation.azure.blob_lease import BlobLeases
from rotation.azure.trust import connection_options
from rotation.errors import LeaseStoreUnavailable, LeaseTaken
from rotation.settings import Settings, load_settings
from sandbox.azurite import ACCOUNT
from sandbox.server import Sandbox, unreachable_vault_url
from tests.waiting import until

APP = "8d2f6f4e-54b5-4a4e-9a51-0a1f36a8a0c1"
OTHER = "0b5f0a55-3f0c-4a8e-bd0e-9d0f2a1f7d12"


def storage(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> BlobServiceClient:
    """The sandbox's blob service, as a test's own client sees it."""
    return BlobServiceClient(
        sandbox.lease_blob_url, credential=credential, **connection_options(settings)
    )


@pytest.fixture
async def leases(settings: Settings, credential: AsyncTokenCredential) -> AsyncIterator[BlobLeases]:
    store = BlobLeases.from_settings(settings, credential)
    yield store
    await store.close()


@pytest.fixture
async def rival(settings: Settings, credential: AsyncTokenCredential) -> AsyncIterator[BlobLeases]:
    """A second instance's view of the same store."""
    store = BlobLeases.from_settings(settings, credential)
    yield store
    await store.close()


async def test_a_held_app_is_refused_to_a_second_holder_until_released(
    leases: BlobLeases, rival: BlobLeases
) -> None:
    async with leases.hold(APP.upper()):  # app ids are case-insensitive
        with pytest.raises(LeaseTaken, match=f"app {APP}.*storage account {ACCOUNT}"):
            async with rival.hold(APP):
                pytest.fail("two holders of one lease")
        async with rival.hold(OTHER):  # another app is free meanwhile
            pass
    async with rival.hold(APP):  # released when the first holder's block ended
        pass


async def test_a_refused_holder_learns_which_run_holds_the_lease(
    leases: BlobLeases, rival: BlobLeases
) -> None:
    async with leases.hold(APP, "5c0ffee5a1b2"):
        with pytest.raises(
            LeaseTaken, match=f"run 5c0ffee5a1b2 holds the lease of app {APP}"
        ) as caught:
            async with rival.hold(APP, "0ther0run000"):
                pytest.fail("two holders of one lease")
    assert caught.value.run_id == "5c0ffee5a1b2"
    async with rival.hold(APP, "0ther0run000"):  # the next holder names itself
        with pytest.raises(LeaseTaken) as again:
            async with leases.hold(APP):
                pytest.fail("two holders of one lease")
    assert again.value.run_id == "0ther0run000"


async def test_first_use_makes_the_container_and_each_apps_blob(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential, leases: BlobLeases
) -> None:
    await leases.ready()
    await leases.ready()  # made once; a second look changes nothing
    async with leases.hold(APP):
        pass
    async with storage(sandbox, settings, credential) as client:
        container = client.get_container_client(sandbox.lease_container)
        names = [b.name async for b in container.list_blobs()]
        properties = await container.get_blob_client(APP).get_blob_properties()
    assert names == [APP]
    assert properties.lease.state == "available"  # released, not left to expire


@pytest.mark.slow
async def test_unreachable_store_fails_closed_naming_the_account(
    sandbox: Sandbox, credential: AsyncTokenCredential
) -> None:
    down = f"{unreachable_vault_url()}/{ACCOUNT}"  # a closed loopback port
    store = BlobLeases.from_settings(load_settings(sandbox.env(lease_blob_url=down)), credential)
    try:
        with pytest.raises(LeaseStoreUnavailable, match=f"storage account {ACCOUNT}") as caught:
            async with store.hold(APP):
                pytest.fail("a lease from a store that cannot be reached")
    finally:
        await store.close()
    assert "cannot reach the lease store" in str(caught.value)
    assert down in str(caught.value)


@pytest.mark.slow
async def test_a_lease_taken_away_meanwhile_is_reported_lost_and_the_block_ends_cleanly(
    sandbox: Sandbox,
    settings: Settings,
    credential: AsyncTokenCredential,
    rival: BlobLeases,
) -> None:
    """Broken (Lease Blob "break") and taken by another holder while held: the next renewal
    is refused (409), which the holder logs as lost; leaving the block does not raise, and
    does not try to release a lease another holder has (issue 23: fencing)."""
    store = BlobLeases.from_settings(load_settings(sandbox.env(lease_seconds=15)), credential)
    with capture_logs() as logged:
        await hold_while_taken(sandbox, settings, credential, store, rival, logged)
    events = [e["event"] for e in logged]
    assert "lease.lost" in events
    assert events.count("lease.released") == 1  # the rival's: not ours to release any more
    assert "lease.release_failed" not in events  # nor tried


async def hold_while_taken(
    sandbox: Sandbox,
    settings: Settings,
    credential: AsyncTokenCredential,
    store: BlobLeases,
    rival: BlobLeases,
    logged: list[MutableMapping[str, Any]],
) -> None:
    try:
        async with store.hold(APP), storage(sandbox, settings, credential) as client:
            blob = client.get_container_client(sandbox.lease_container).get_blob_client(APP)
            await BlobLeaseClient(blob).break_lease(lease_break_period=0)
            async with rival.hold(APP):
                await until(lambda: any(e["event"] == "lease.lost" for e in logged), timeout=15)
    finally:
        await store.close()


async def test_a_lease_being_broken_is_refused_as_held_not_as_a_store_failure(
    sandbox: Sandbox,
    settings: Settings,
    credential: AsyncTokenCredential,
    leases: BlobLeases,
    rival: BlobLeases,
) -> None:
    """An operator's `az storage blob lease break --lease-break-period N` on a stuck run's
    lease. Until the period ends, an acquire with another lease id (ours always proposes a
    new one) is refused with 409 LeaseAlreadyPresent, as Azurite answers here: Storage gives
    LeaseIsBreakingAndCannotBeAcquired only when "the lease ID matched, but the lease is
    currently in breaking state" (that code's description in the storage SDKs' generated
    error list; Lease Blob, learn.microsoft.com/rest/api/storageservices/lease-blob). So the
    app is held, LeaseTaken, never LeaseStoreUnavailable (a review's worry, checked)."""
    async with rival.hold(APP), storage(sandbox, settings, credential) as client:
        blob = client.get_container_client(sandbox.lease_container).get_blob_client(APP)
        await BlobLeaseClient(blob).break_lease(lease_break_period=60)
        with pytest.raises(LeaseTaken, match=f"holds the lease of app {APP}"):
            async with leases.hold(APP):
                pytest.fail("a lease acquired while it was being broken")
