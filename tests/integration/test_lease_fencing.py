"""Fencing with Azurite (issue 23 item 4): a run that loses an app's lease writes nothing
for that app afterwards, and the next run finishes it (I5).

The run's storage client is the product's own (BlobLeases over azure-storage-blob, with a
bearer token from the sandbox's Entra), with one azure-core pipeline policy added that
holds lease renewals without an answer: a storage account that stops answering. Azurite
then lets the lease lapse, and a second instance takes it, as Azure Storage would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, MutableMapping
from datetime import timedelta
from typing import Any

import pytest
from azure.core.credentials_async import AsyncTokenCredential
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient, LinearRetry
from structlog.testing import capture_logs

from rotation.azure.blob_lease import (
    CONNECTION_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    RETRY_BACKOFF_SECONDS,
    RETRY_TOTAL,
    BlobLeases,
)
from rotation.azure.trust import TrustedTransport, connection_options, trusted_ssl_context
from rotation.errors import LeaseTaken
from rotation.model import AppOutcome, Outcome, RunReport
from rotation.settings import Settings
from sandbox.seed import Sender
from sandbox.server import Sandbox
from sandbox.state import SandboxState
from tests.integration.conftest import OpenService
from tests.waiting import until

LEASE_SECONDS = 15  # the shortest lease Azure Storage grants
WRITES = ("POST", "PUT", "PATCH", "DELETE")

pytestmark = pytest.mark.slow


def writes(state: SandboxState) -> int:
    """Graph and Key Vault writes so far (addPassword, removePassword, set, update)."""
    return sum(
        n
        for key, n in state.requests.items()
        if key.split()[0] in ("graph", "vault") and key.split()[1] in WRITES
    )


def hold_new_secrets(sandbox: Sandbox) -> None:
    """New secrets work only after an hour (until the test lets them); the ones that exist
    already (the rotator's own, the sender's) keep working."""
    delay = timedelta(hours=1)
    for app in sandbox.state.applications.values():
        for password in app.passwords:
            password.created -= delay
    sandbox.state.propagation_delay = delay


class RenewalsHang(TrustedTransport):
    """The client's own transport (the sandbox CA trusted), except that lease renewals get
    no answer while `hanging`: the per-try timeouts never start, so only the rotator's own
    bound on a call made under the lease can end them."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(trusted_ssl_context(settings))
        self.hanging = False
        self.held = 0

    async def send(self, request: Any, **kwargs: Any) -> Any:
        if self.hanging and request.headers.get("x-ms-lease-action") == "renew":
            self.held += 1
            await asyncio.Event().wait()  # until the caller gives up on it
        return await super().send(request, **kwargs)


def blob_leases(
    sandbox: Sandbox,
    settings: Settings,
    credential: AsyncTokenCredential,
    transport: TrustedTransport | None = None,
) -> BlobLeases:
    """The store as BlobLeases.from_settings makes it (timeouts, retries), on `transport`,
    with the shortest lease."""
    service = BlobServiceClient(
        sandbox.lease_blob_url,
        credential=credential,
        retry_policy=LinearRetry(backoff=RETRY_BACKOFF_SECONDS, retry_total=RETRY_TOTAL),
        connection_timeout=CONNECTION_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        transport=transport or TrustedTransport(trusted_ssl_context(settings)),
    )
    return BlobLeases(service, settings.lease_container, LEASE_SECONDS)


@pytest.fixture
async def rival(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> AsyncIterator[BlobLeases]:
    """Another instance's view of the same lease store."""
    store = blob_leases(sandbox, settings, credential)
    yield store
    await store.close()


async def take_when_free(rival: BlobLeases, app_id: str, stack: contextlib.AsyncExitStack) -> None:
    """Holds the app's lease in the rival's name as soon as it can be had."""
    while True:
        try:
            await stack.enter_async_context(rival.hold(app_id, "0the4run0001"))
            return
        except LeaseTaken:
            await asyncio.sleep(0.5)


async def ends_while_rival_holds(
    sandbox: Sandbox,
    rival: BlobLeases,
    sender: Sender,
    run: asyncio.Task[RunReport],
    within: float,
    learned: Callable[[], bool] = lambda: True,
) -> AppOutcome:
    """The rival takes the app's lease (within `within` s); once the first run has
    `learned` it, its secret starts working, so its verification passes and it goes for its
    next write. Returns the run's one outcome, once it checked that nothing was written
    meanwhile."""
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(within):
            await take_when_free(rival, sender.app_id, stack)
        taken_at = writes(sandbox.state)
        await until(learned, LEASE_SECONDS)
        sandbox.state.propagation_delay = timedelta(0)
        (outcome,) = (await asyncio.wait_for(run, 60)).outcomes
        assert writes(sandbox.state) == taken_at  # nothing after the rival took it
    return outcome


async def test_a_run_whose_renewals_hang_past_expiry_writes_nothing_once_another_run_holds_it(
    sandbox: Sandbox,
    settings: Settings,
    credential: AsyncTokenCredential,
    open_service: OpenService,
    rival: BlobLeases,
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=3))
    hold_new_secrets(sandbox)  # verification waits meanwhile
    hang = RenewalsHang(settings)
    leases = blob_leases(sandbox, settings, credential, hang)
    async with open_service(leases=leases) as service:
        run = asyncio.create_task(service.run())
        await until(lambda: any(k.endswith("addPassword") for k in sandbox.state.requests), 30)
        hang.hanging = True  # from now on storage does not answer renewals
        outcome = await ends_while_rival_holds(sandbox, rival, sender, run, 3 * LEASE_SECONDS)
        await leases.close()
    assert hang.held >= 1
    assert outcome.outcome is Outcome.UNFINISHED
    assert "lost the lease" in (outcome.error or outcome.reason)
    assert sandbox.state.live_secret(outcome.secret_name) is None  # never promoted
    orphan = {p.key_id for p in sender.app.passwords} - {sender.password.key_id}
    assert len(orphan) == 1  # its new secret: left for the next run (I5)

    sandbox.state.clock.advance(timedelta(minutes=30))  # past the verify window
    async with open_service() as service:
        (after,) = (await service.run()).outcomes
    assert after.outcome is Outcome.ROTATED
    assert orphan.isdisjoint(p.key_id for p in sender.app.passwords)  # removed (I5)
    live = sandbox.state.live_secret(after.secret_name)
    assert live is not None
    assert sandbox.state.smtp_login(sender.username, live.value).ok


async def test_a_renewal_refused_because_another_run_broke_the_lease_stops_the_writes(
    sandbox: Sandbox,
    settings: Settings,
    credential: AsyncTokenCredential,
    open_service: OpenService,
    rival: BlobLeases,
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=3))
    hold_new_secrets(sandbox)
    leases = blob_leases(sandbox, settings, credential)
    with capture_logs() as logged:
        outcome = await break_and_take(
            sandbox, settings, credential, open_service, rival, leases, sender, logged
        )
    assert outcome.outcome is Outcome.UNFINISHED
    assert "storage refused its renewal" in (outcome.error or "")


def events(logged: list[MutableMapping[str, Any]]) -> list[str]:
    return [str(e.get("event")) for e in logged]


async def break_and_take(
    sandbox: Sandbox,
    settings: Settings,
    credential: AsyncTokenCredential,
    open_service: OpenService,
    rival: BlobLeases,
    leases: BlobLeases,
    sender: Sender,
    logged: list[MutableMapping[str, Any]],
) -> AppOutcome:
    """Someone breaks the app's lease mid-rotation and the rival takes it."""
    async with open_service(leases=leases) as service:
        run = asyncio.create_task(service.run())
        await until(lambda: any(k.endswith("addPassword") for k in sandbox.state.requests), 30)
        async with BlobServiceClient(
            sandbox.lease_blob_url, credential=credential, **connection_options(settings)
        ) as storage:  # someone breaks the lease (az storage blob lease break)
            blob = storage.get_blob_client(settings.lease_container, sender.app_id.lower())
            await BlobLeaseClient(blob).break_lease(lease_break_period=0)
        outcome = await ends_while_rival_holds(
            sandbox, rival, sender, run, LEASE_SECONDS, lambda: "lease.lost" in events(logged)
        )
        await leases.close()
    return outcome
