"""Many senders cost a few Graph pages, never a request per app or per 15 apps
(the request counts bench/ reports, proven here without timing anything)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from azure.core.credentials_async import AsyncTokenCredential

from rotation.azure.entra import IN_BATCH, LIST_ALL_ABOVE, EntraAdapter
from rotation.settings import Settings
from sandbox.server import Sandbox

LIST_APPS = "graph GET /applications"
LIST_SPS = "graph GET /servicePrincipals"


async def app_ids_of(entra: EntraAdapter, object_ids: list[str]) -> dict[str, str]:
    """Service principal object id -> app id, from `service_principals` (what discovery reads)."""
    return {
        oid: found.app_id for oid, found in (await entra.service_principals(object_ids)).items()
    }


@pytest.fixture
async def entra(
    settings: Settings, credential: AsyncTokenCredential
) -> AsyncIterator[EntraAdapter]:
    adapter = EntraAdapter.from_settings(settings, credential)
    yield adapter
    await adapter.close()


async def test_many_service_principals_are_read_in_one_listing(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    senders = [sandbox.add_sender() for _ in range(LIST_ALL_ABOVE + 1)]
    mapping = await app_ids_of(entra, [s.principal_id.upper() for s in senders])
    assert mapping == {s.principal_id: s.app_id for s in senders}
    assert sandbox.state.requests[LIST_SPS] == 1  # every SP fits one page of 999


async def test_a_few_service_principals_are_read_in_batches_of_15(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    senders = [sandbox.add_sender() for _ in range(2 * IN_BATCH + 1)]
    mapping = await app_ids_of(entra, [s.principal_id for s in senders[:-1]])
    assert mapping == {s.principal_id: s.app_id for s in senders[:-1]}
    assert sandbox.state.requests[LIST_SPS] == 2


async def test_many_applications_are_read_in_one_listing(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    senders = [sandbox.add_sender() for _ in range(LIST_ALL_ABOVE + 1)]
    records = await entra.read_apps([s.app_id for s in senders])
    assert set(records) == {s.app_id for s in senders}
    assert sandbox.state.requests[LIST_APPS] == 1
