"""A 403 says that a fresh grant can take hours to reach a managed identity's tokens.

Microsoft Graph reads application permissions from the token, and Azure caches a managed
identity's tokens for around 24 hours (managed identities FAQ). The sandbox issues tokens
with the roles held at issue time, so a grant made after the rotator got its token is not
seen until a new token is issued, and every 403 message names that delay.
"""

from __future__ import annotations

import pytest
from azure.core.credentials_async import AsyncTokenCredential
from pydantic import SecretStr

from rotation.azure.acs import ArmReader
from rotation.azure.entra import EntraAdapter
from rotation.azure.identity import build_credential
from rotation.azure.key_vault import VaultAdapter
from rotation.errors import PermissionDenied, VaultWriteFailed
from rotation.model import Credential, ManagedApp, NewSecret
from rotation.settings import Settings
from sandbox.server import Sandbox
from sandbox.state import GRAPH_READ_WRITE_OWNED_BY

FAQ = "managed-identities-faq#are-managed-identities-tokens-cached"
FAST_RETRY = {"retry_total": 1, "retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}


def says_it_can_take_hours(error: BaseException) -> bool:
    text = str(error)
    return "hours" in text and FAQ in text


async def test_a_graph_grant_reaches_only_new_tokens_and_the_403_says_so(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> None:
    sender = sandbox.add_sender()
    sandbox.rotator.sp.graph_roles.clear()
    entra = EntraAdapter.from_settings(settings, credential)
    try:
        with pytest.raises(PermissionDenied) as before:
            await entra.read_apps([sender.app_id])
        sandbox.rotator.sp.graph_roles.add(GRAPH_READ_WRITE_OWNED_BY)
        with pytest.raises(PermissionDenied) as cached:
            await entra.read_apps([sender.app_id])  # the token from before the grant
    finally:
        await entra.close()
    fresh_credential = build_credential(settings)
    fresh = EntraAdapter.from_settings(settings, fresh_credential)
    try:
        found = await fresh.read_apps([sender.app_id])
    finally:
        await fresh.close()
        await fresh_credential.close()

    assert says_it_can_take_hours(before.value)
    assert says_it_can_take_hours(cached.value)
    assert sender.app_id in found


async def test_resource_manager_403_says_it_can_take_hours(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> None:
    sandbox.state.role_assignments.clear()
    arm = ArmReader.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        with pytest.raises(PermissionDenied) as caught:
            await arm.acs_resources([sandbox.subscription_id], [])
    finally:
        await arm.close()

    assert "Reader" in str(caught.value)
    assert says_it_can_take_hours(caught.value)


async def test_key_vault_403_says_it_can_take_hours(
    sandbox: Sandbox, settings: Settings, credential: AsyncTokenCredential
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"get"})
    vault = VaultAdapter.from_settings(settings, credential, retry=FAST_RETRY)
    app = ManagedApp(sender.app_id, sandbox.tenant_id, "acs-smtp-x", (sender.username,))
    password = sender.password
    secret = NewSecret(
        Credential(password.key_id, None, password.start, password.end),
        SecretStr(password.secret_text),
    )
    try:
        with pytest.raises(PermissionDenied) as reading:
            await vault.read("acs-smtp-x")
        with pytest.raises(VaultWriteFailed) as writing:
            await vault.promote(
                app, secret, smtp_host="smtp.example", smtp_port=587, write_username=False
            )
    finally:
        await vault.close()

    assert says_it_can_take_hours(reading.value)
    assert says_it_can_take_hours(writing.value)
