"""One rotation per app across instances: a blob lease in the Function App's own storage.

On Flex Consumption the timer and the HTTP API scale on separate instances, so busy marks
inside one process cannot see each other. Each app therefore has a blob (named by its app
id) in a container of the Function App's ``AzureWebJobsStorage`` account, and a run holds
that blob's lease for the whole of the app's create -> retire. Azure Storage gives a lease
to one holder at a time; a second acquire gets 409 ``LeaseAlreadyPresent`` ("Lease Blob",
Azure Storage REST reference), which the engine reports as the app being busy. The holder
writes its run id into the blob's metadata (``run_id``) right after taking the lease, so a
run refused it can say which run holds the app.

The lease is finite (15-60 s, the only finite durations Azure accepts) and renewed every
third of it while the app's steps run (SMTP verification may wait minutes for a new secret
to propagate), then released. A worker that dies stops renewing, and the lease expires by
itself within ``lease_seconds``. A worker that lives on but loses the lease (a renewal
refused with 409, or renewals failing until it could have lapsed) is fenced: its app's
writes stop before the next one (`LeaseFence`, rotation/core/fencing.py).

Reached with the rotator's identity (Storage Blob Data Owner on the account, which infra
grants for the Functions host already). Errors reaching or using the account become
``LeaseStoreUnavailable`` naming the account: without a lease nothing may rotate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING, Literal, TypeVar

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from rotation.core import fencing
from rotation.errors import LeaseLost, LeaseStoreUnavailable, LeaseTaken
from rotation.settings import Settings
from rotation.telemetry import logs, redaction
from rotation.telemetry.redaction import echo

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.storage.blob.aio import BlobClient, BlobLeaseClient, BlobServiceClient

log = logs.get_logger("rotation.lease")
T = TypeVar("T")

#: Every storage call is bounded well inside the shortest lease (15 s). Storage's default
#: retry policy waits 15 s, then 18 s, then 24 s, and the blob client reads for up to 60 s
#: per try (azure-storage-blob's READ_TIMEOUT): one renewal could outlast the lease. Here a
#: try connects within 3 s and reads within 4 s, and two retries come 1 s (+-1 s) apart: a failing
#: store is known in seconds (a run then fails closed), and a renewal fails, and is tried
#: again, before the lease could lapse. `BlobLeases._bounded` cuts a call off at that point
#: in any case.
RETRY_TOTAL = 2
RETRY_BACKOFF_SECONDS = 1
CONNECTION_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 4
#: The blob metadata naming the run that holds the lease.
HOLDER = "run_id"


class BlobLeases:
    """The `Leases` port on Azure Blob Storage (azure-storage-blob, async)."""

    def __init__(self, service: BlobServiceClient, container: str, seconds: int) -> None:
        self._service = service
        self._container = service.get_container_client(container)
        self.container = container
        self.seconds = seconds

    @classmethod
    def from_settings(cls, settings: Settings, credential: AsyncTokenCredential) -> BlobLeases:
        """Imported here, not at module level: a cold start pays for the blob SDK only
        when a run needs a lease."""
        from azure.storage.blob.aio import BlobServiceClient, LinearRetry

        from rotation.azure.trust import connection_options

        if settings.lease_blob_url is None:
            raise ValueError("lease_blob_url is not set")
        service = BlobServiceClient(
            settings.lease_blob_url,
            credential=credential,
            retry_policy=LinearRetry(
                backoff=RETRY_BACKOFF_SECONDS, retry_total=RETRY_TOTAL, random_jitter_range=1
            ),
            connection_timeout=CONNECTION_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            **connection_options(settings),
        )
        return cls(service, settings.lease_container, settings.lease_seconds)

    @property
    def account(self) -> str:
        return self._service.account_name or self._service.url

    async def close(self) -> None:
        await self._service.close()

    async def ready(self) -> None:
        """The container exists (made if missing) and the identity may use it."""
        with self._mapped():
            try:
                await self._container.get_container_properties()
            except ResourceNotFoundError:
                await self._create_container()

    async def visible(self) -> bool:
        """Whether the lease container exists, read without creating it (for `doctor`);
        LeaseStoreUnavailable when the store refuses or cannot be reached."""
        with self._mapped():
            try:
                await self._container.get_container_properties()
            except ResourceNotFoundError:
                return False
        return True

    @asynccontextmanager
    async def hold(self, app_id: str, run_id: str | None = None) -> AsyncIterator[None]:
        """The app's lease for the block, renewed meanwhile, and its fence
        (rotation/core/fencing.py): the block's writes stop once the lease is lost."""
        from azure.storage.blob.aio import BlobLeaseClient

        blob = self._container.get_blob_client(app_id.lower())
        lease = BlobLeaseClient(blob)
        with self._mapped():
            asked = time.monotonic()  # the lease runs from no earlier than this
            await self._acquire(app_id, blob, lease)
        fence = LeaseFence(app_id, self.seconds, asked)
        renewer = asyncio.create_task(self._renew(lease, fence))
        try:
            with self._mapped():
                if run_id is not None:
                    await self._bounded(fence, self._name_holder(blob, lease, run_id))
            log.info("lease.acquired", lease_seconds=self.seconds)
            with fencing.fenced(fence):
                yield
        finally:
            renewer.cancel()
            if not fence.taken:  # a lease another run holds now is not ours to release
                await asyncio.shield(self._release(lease))

    async def _acquire(self, app_id: str, blob: BlobClient, lease: BlobLeaseClient) -> None:
        for _ in range(3):  # the container, then the app's blob, may have to be made first
            try:
                await lease.acquire(lease_duration=self.seconds)
                return
            except ResourceNotFoundError as exc:
                if _code(exc) == "ContainerNotFound":
                    await self._create_container()
                else:
                    await self._create_blob(blob)
            except ResourceExistsError as exc:
                if _code(exc) != "LeaseAlreadyPresent":
                    raise
                holder = await self._holder(blob)
                run = f"run {holder}" if holder else "another run"
                raise LeaseTaken(
                    f"{run} holds the lease of app {app_id} (blob {self.container}/"
                    f"{app_id.lower()} in storage account {self.account}); it is released "
                    f"when that run ends, or expires within {self.seconds} s if it died",
                    holder,
                ) from None
        raise LeaseStoreUnavailable(
            f"could not make the lease blob of app {app_id} in storage account {self.account}"
        )

    async def _name_holder(self, blob: BlobClient, lease: BlobLeaseClient, run_id: str) -> None:
        """Writes the holding run's id into the blob's metadata (a write only the lease
        holder may make), so that a run refused the lease can say who holds it."""
        await blob.set_blob_metadata({HOLDER: run_id}, lease=lease)

    async def _holder(self, blob: BlobClient) -> str | None:
        """The run id the current holder wrote, when it can be read (a refusal must not
        fail for want of it: the holder is named when known)."""
        try:
            properties = await blob.get_blob_properties()
        except AzureError:
            return None
        holder = (properties.metadata or {}).get(HOLDER)
        return echo(holder, quoted=False) if holder else None

    async def _create_container(self) -> None:
        try:
            await self._container.create_container()
            log.info("lease.container_created", container=self.container)
        except ResourceExistsError:
            pass  # another instance made it first

    async def _create_blob(self, blob: BlobClient) -> None:
        # Another instance may have made it first (and may hold its lease already).
        with suppress(ResourceExistsError):
            await blob.upload_blob(b"", overwrite=False)

    async def _renew(self, lease: BlobLeaseClient, fence: LeaseFence) -> None:
        """Renews every third of the lease, so two renewals may fail before it lapses. Each
        renewal is cut short where the lease could lapse; once it is lost (409: taken or
        broken) or could have lapsed, the fence closes and nothing renews it any more."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            asked = time.monotonic()
            try:
                await self._bounded(fence, lease.renew())
                fence.renewed(asked)
                continue
            except HttpResponseError as exc:
                if exc.status_code == 409:  # expired and taken, or broken: not ours any more
                    fence.lose("taken", f"storage refused its renewal ({_code(exc)})")
                    log.error("lease.lost", error_code=_code(exc))
                    return
                log.warning("lease.renew_failed", error=redaction.scrub(str(exc.message)))
            except AzureError as exc:
                log.warning("lease.renew_failed", error=redaction.scrub(str(exc.message)))
            except TimeoutError:
                log.warning("lease.renew_failed", error="no answer before the lease could lapse")
            if fence.lapsed():
                fence.lose("lapsed", f"no renewal succeeded for {self.seconds} s")
                log.error("lease.lost", error_code="lapsed")
                return

    @staticmethod
    async def _bounded(fence: LeaseFence, call: Awaitable[T]) -> T:
        """A storage call made while holding the lease, cut off where the lease could lapse
        (on top of the client's own per-try timeouts and retries)."""
        async with asyncio.timeout(fence.left()):
            return await call

    async def _release(self, lease: BlobLeaseClient) -> None:
        try:
            await lease.release()
        except AzureError as exc:
            # It expires by itself within lease_seconds; say so rather than fail the app.
            log.warning("lease.release_failed", error=redaction.scrub(str(exc.message)))
            return
        log.info("lease.released")

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """Every storage error as LeaseStoreUnavailable, naming the account and the fix."""
        where = f"storage account {self.account} ({self._service.url.rstrip('/')})"
        try:
            yield
        except ClientAuthenticationError as exc:
            raise LeaseStoreUnavailable(
                f"the lease store, {where}, refused the rotator's identity ({_reason(exc)}); "
                "it needs Storage Blob Data Owner on that account"
            ) from None
        except HttpResponseError as exc:
            raise LeaseStoreUnavailable(
                f"the lease store, {where}, answered {exc.status_code} ({_reason(exc)})"
            ) from None
        except AzureError as exc:
            raise LeaseStoreUnavailable(
                f"cannot reach the lease store, {where}: {_reason(exc)}; nothing rotates "
                "until it can be reached"
            ) from None


class LeaseFence:
    """What one holder knows of its lease: held until `valid_until` (monotonic) unless it
    renews, or until storage says another holds it. `check` (rotation/core/fencing.py)
    refuses a write from `MARGIN` of the lease before it could lapse: a write that starts
    then still lands while the lease is ours."""

    #: The part of the lease kept in hand for a write that has begun to land.
    MARGIN = 0.25

    def __init__(self, app_id: str, seconds: int, asked: float) -> None:
        self.app_id = app_id
        self.seconds = seconds
        self.valid_until = asked + seconds
        self.taken = False
        self.lost: str | None = None

    def renewed(self, asked: float) -> None:
        self.valid_until = asked + self.seconds

    def left(self) -> float:
        """Seconds until writes must stop (0 once lost or lapsed)."""
        if self.lost is not None:
            return 0.0
        return max(0.0, self.valid_until - self.seconds * self.MARGIN - time.monotonic())

    def lapsed(self) -> bool:
        return self.left() <= 0

    def lose(self, how: Literal["taken", "lapsed"], why: str) -> None:
        self.taken = how == "taken"
        self.lost = why

    def check(self) -> None:
        if self.lost is None and self.lapsed():
            self.lose("lapsed", f"no renewal succeeded for {self.seconds} s")
        if self.lost is not None:
            raise LeaseLost(
                f"lost the lease of app {self.app_id} ({self.lost}); its work stopped before "
                "the next write, and the next run finishes it"
            )


def _code(exc: AzureError) -> str | None:
    """Storage's error code (x-ms-error-code), which azure-storage-blob sets on the error."""
    code = getattr(exc, "error_code", None)
    return str(code) if code is not None else None


def _reason(exc: AzureError) -> str:
    code = _code(exc)
    message = str(exc.message or exc).splitlines()[0]
    return redaction.scrub(f"{code}: {message}" if code else message)
