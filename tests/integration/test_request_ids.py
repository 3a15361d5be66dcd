"""Item 10 of issue 11, the product's side: it follows ARM's nextLink, and a failure's message
(what `app.failed` logs) names the request ids the service answered with, for support."""

from __future__ import annotations

import re

import pytest
from azure.core.credentials_async import AsyncTokenCredential

from rotation.azure.acs import ArmReader, parse_resource_id
from rotation.azure.entra import EntraAdapter
from rotation.azure.key_vault import VaultAdapter
from rotation.errors import InvalidRequest, PermissionDenied, RotationError
from rotation.settings import Settings
from sandbox.server import Sandbox

FAST_RETRY = {"retry_total": 1, "retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}
ROLE_ASSIGNMENTS = "arm GET /{scope}/providers/Microsoft.Authorization/roleAssignments"
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def test_arm_role_assignments_are_read_across_every_page(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> None:
    sandbox.state.arm_page_size = 2
    senders = [sandbox.add_sender() for _ in range(4)]
    reader = ArmReader.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        entries = await reader.role_assignments(parse_resource_id(sandbox.default_resource.id))
    finally:
        await reader.close()
    principals = {e.principal_id for e in entries}
    assert {s.principal_id.lower() for s in senders} <= principals
    assert len(entries) == 5  # four senders and the rotator's Reader on the subscription
    assert sandbox.state.requests[ROLE_ASSIGNMENTS] == 3


async def test_an_arm_failure_names_its_request_ids(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> None:
    sandbox.state.faults.inject(ROLE_ASSIGNMENTS, status=400, times=1)
    reader = ArmReader.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        with pytest.raises(InvalidRequest) as caught:
            await reader.role_assignments(parse_resource_id(sandbox.default_resource.id))
    finally:
        await reader.close()
    assert re.search(f"x-ms-request-id {GUID}", str(caught.value))
    assert re.search(f"x-ms-correlation-request-id {GUID}", str(caught.value))


async def test_a_graph_failure_names_its_request_ids(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> None:
    sender = sandbox.add_sender(owned=False)
    entra = EntraAdapter.from_settings(settings, credential)
    try:
        record = (await entra.read_apps([sender.app_id]))[sender.app_id.lower()]
        with pytest.raises(PermissionDenied) as caught:
            await entra.remove_password(record, sender.password.key_id)
    finally:
        await entra.close()
    assert re.search(f"request-id {GUID}", str(caught.value))
    assert "client-request-id" in str(caught.value)


async def test_a_key_vault_failure_names_its_request_id(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> None:
    sandbox.state.faults.inject("vault GET /secrets/{name}/versions", status=400, times=1)
    vault = VaultAdapter.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        with pytest.raises(RotationError) as caught:
            await vault.read("acs-smtp-anything")
    finally:
        await vault.close()
    assert re.search(f"x-ms-request-id {GUID}", str(caught.value))
