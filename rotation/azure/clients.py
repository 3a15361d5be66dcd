"""The one composition root: every client the rotator talks through, built from settings.

`RotationService.open` and `doctor.diagnose` both take their clients from here, so the two
can never disagree on how a client is made. Each client goes onto an AsyncExitStack as it is
made (the credential first, so it closes last). `Overrides` is the seam for tests and the
bench: a port given there is used as is, and its maker closes it.

The SDKs are imported inside `build_clients`: a cold start of the Function App pays for
them only when a trigger actually runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from rotation.core.ports import Leases, Verifier
from rotation.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from rotation.azure.acs import ArmReader
    from rotation.azure.app_service import WebSiteReader
    from rotation.azure.blob_lease import BlobLeases
    from rotation.azure.entra import EntraAdapter
    from rotation.azure.key_vault import VaultAdapter
    from rotation.azure.smtp import Backoff, SmtpVerifier


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def closed_with(stack: AsyncExitStack, client: C) -> C:
    """`client`, to be closed when `stack` closes (in reverse order of making, each close
    attempted even when another fails)."""
    stack.push_async_callback(client.close)
    return client


@dataclass(frozen=True, slots=True)
class Overrides:
    """What a test or the bench puts in place of what settings would build."""

    verifier: Verifier | None = None  # SMTP AUTH proof of a new secret
    leases: Leases | None = None  # the per-app leases (whether or not a lease URL is set)
    backoff: Backoff | None = None  # the pacing of the SMTP verifier's retries


@dataclass(frozen=True, slots=True)
class Clients:
    """Every client, and the ports a rotation acts through (the adapters unless overridden)."""

    credential: AsyncTokenCredential
    entra: EntraAdapter
    arm: ArmReader
    vault: VaultAdapter
    smtp: SmtpVerifier
    web: WebSiteReader | None  # with ROTATION_CONSUMERS_ENABLED only
    blob_leases: BlobLeases | None  # with ROTATION_LEASE_BLOB_URL only
    verifier: Verifier
    leases: Leases | None


def build_clients(
    settings: Settings, stack: AsyncExitStack, overrides: Overrides | None = None
) -> Clients:
    """Every client from `settings` (no network traffic yet), each closed with `stack`."""
    from rotation.azure.acs import ArmReader
    from rotation.azure.blob_lease import BlobLeases
    from rotation.azure.entra import EntraAdapter
    from rotation.azure.identity import build_credential
    from rotation.azure.key_vault import VaultAdapter
    from rotation.azure.smtp import SmtpVerifier
    from rotation.azure.trust import trusted_ssl_context

    given = overrides or Overrides()
    credential = closed_with(stack, build_credential(settings))
    smtp = SmtpVerifier(
        settings.smtp_host, settings.smtp_port, trusted_ssl_context(settings), backoff=given.backoff
    )
    web = None
    if settings.consumers_enabled:
        from rotation.azure.app_service import WebSiteReader

        web = closed_with(stack, WebSiteReader.from_settings(settings, credential))
    blob_leases = None
    if settings.lease_blob_url:
        blob_leases = closed_with(stack, BlobLeases.from_settings(settings, credential))
    return Clients(
        credential,
        closed_with(stack, EntraAdapter.from_settings(settings, credential)),
        closed_with(stack, ArmReader.from_settings(settings, credential)),
        closed_with(stack, VaultAdapter.from_settings(settings, credential)),
        smtp,
        web,
        blob_leases,
        verifier=given.verifier or smtp,
        leases=given.leases or blob_leases,
    )


@asynccontextmanager
async def open_clients(
    settings: Settings, overrides: Overrides | None = None
) -> AsyncIterator[Clients]:
    """`build_clients` for one block: every client is closed on the way out, even after a
    failure, and each even if another fails to close."""
    async with AsyncExitStack() as stack:
        yield build_clients(settings, stack, overrides)
