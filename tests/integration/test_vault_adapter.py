"""VaultAdapter against the sandbox Key Vault: the product's own credential, trust and SDK.

The adapter is built exactly as the service builds it (`from_settings` with the
credential from rotation.azure.identity); only azure-core's back-off is shortened.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.credentials_async import AsyncTokenCredential
from pydantic import SecretStr

from rotation.azure.key_vault import SETTLED_TAG, VaultAdapter
from rotation.errors import PermissionDenied, ServiceUnavailable, VaultWriteFailed
from rotation.model import Credential, ManagedApp, NewSecret, VaultVersion
from rotation.settings import Settings, load_settings
from sandbox.server import Sandbox, unreachable_vault_url
from tests.integration.conftest import FAST_RETRY

PASSWORD = "Abc8Q~never-in-a-message-0123456789"


def app(settings: Settings, username: str = "acs.app.tenant") -> ManagedApp:
    app_id = "11111111-2222-3333-4444-555555555555"
    return ManagedApp(app_id, settings.tenant_id, settings.secret_name(app_id), (username,))


def new_secret(key_id: str = "key-1", value: str = PASSWORD) -> NewSecret:
    end = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
    return NewSecret(Credential(key_id, "acs-smtp-rotation x", None, end), SecretStr(value))


async def promote(
    vault: VaultAdapter, managed: ManagedApp, secret: NewSecret, *, username: bool = True
) -> VaultVersion:
    return await vault.promote(
        managed, secret, smtp_host="smtp.azurecomm.net", smtp_port=587, write_username=username
    )


def vault_calls(sandbox: Sandbox) -> int:
    return sum(n for key, n in sandbox.state.requests.items() if key.startswith("vault "))


# ----- read -------------------------------------------------------------------------------------


async def test_read_of_a_secret_never_written_is_an_empty_entry_in_one_list_call(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    name = app(settings).secret_name

    entry = await vault.read(name)

    assert entry.name == name
    assert entry.versions == ()
    assert entry.current is None
    # The one list call, plus the challenge probe every new client makes once.
    assert sandbox.state.requests["vault GET /secrets/{name}/versions"] == 2


async def test_read_returns_versions_newest_first_by_created_whatever_the_list_order(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    managed = app(settings)
    promoted = []
    for i in range(5):
        promoted.append(await promote(vault, managed, new_secret(f"key-{i}"), username=i == 0))
        sandbox.state.clock.advance(timedelta(minutes=1))

    entry = await vault.read(managed.secret_name)

    assert [v.key_id for v in entry.versions] == [f"key-{i}" for i in reversed(range(5))]
    assert entry.current == promoted[-1]
    assert [v.created for v in entry.versions] == sorted(
        (v.created for v in entry.versions), reverse=True
    )


# ----- promote ----------------------------------------------------------------------------------


async def test_promote_writes_the_password_with_tags_expiry_and_the_username_companion(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    managed = app(settings, "acs-mail.1111.tenant")
    secret = new_secret("key-42")

    version = await promote(vault, managed, secret)

    stored = sandbox.state.live_secret(managed.secret_name)
    companion = sandbox.state.live_secret(managed.secret_name + "-username")
    assert stored is not None
    assert companion is not None
    assert stored.value == PASSWORD
    assert stored.content_type == "smtp-password"
    assert stored.expires == secret.credential.end
    assert stored.tags == {
        "app-id": managed.app_id,
        "key-id": "key-42",
        "smtp-username": "acs-mail.1111.tenant",
        "smtp-host": "smtp.azurecomm.net",
        "smtp-port": "587",
        "managed-by": "acs-smtp-rotation",
    }
    assert (companion.value, companion.content_type) == ("acs-mail.1111.tenant", "smtp-username")
    assert version.version == stored.version
    assert version.key_id == "key-42"
    assert version.smtp_username == "acs-mail.1111.tenant"
    assert version.enabled is True
    assert version.expires == secret.credential.end


async def test_steady_state_rotation_costs_one_list_and_one_set(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    managed = app(settings)
    await promote(vault, managed, new_secret("key-1"))
    before = dict(sandbox.state.requests)

    entry = await vault.read(managed.secret_name)
    await promote(vault, managed, new_secret("key-2"), username=False)

    delta = {k: n - before.get(k, 0) for k, n in sandbox.state.requests.items()}
    assert {k: n for k, n in delta.items() if n and k.startswith("vault ")} == {
        "vault GET /secrets/{name}/versions": 1,
        "vault PUT /secrets/{name}": 1,
    }
    assert entry.current is not None
    assert entry.current.key_id == "key-1"
    assert len(sandbox.state.vault[managed.secret_name + "-username"]) == 1


async def test_refused_write_is_vault_write_failed_naming_the_role_and_vault(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"get", "list"})

    with pytest.raises(VaultWriteFailed) as caught:
        await promote(vault, app(settings), new_secret())

    message = str(caught.value)
    assert "Key Vault Secrets Officer" in message
    assert settings.key_vault_url in message
    assert "403" in message
    assert PASSWORD not in message
    assert sandbox.state.vault == {}


async def test_username_companion_is_written_before_the_password(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    """If the companion write is refused, nothing has been promoted (rollback stays safe)."""
    managed = app(settings, "u" * 257)  # longer than a Key Vault tag value may be

    with pytest.raises(VaultWriteFailed) as caught:
        await promote(vault, managed, new_secret())

    assert "400 BadParameter" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert managed.secret_name.lower() not in sandbox.state.vault


async def test_write_that_keeps_failing_is_service_unavailable_not_a_refusal(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    """Unknown fate: the engine must look before it rolls back, so this is not VaultWriteFailed."""
    sandbox.state.faults.inject("vault PUT /secrets/{name}", status=503, retry_after=0)

    with pytest.raises(ServiceUnavailable) as caught:
        await promote(vault, app(settings), new_secret(), username=False)

    assert not isinstance(caught.value, VaultWriteFailed)
    assert "503" in str(caught.value)
    assert PASSWORD not in str(caught.value)


async def test_throttled_write_is_retried_by_the_sdk_and_lands(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    fault = sandbox.state.faults.inject(
        "vault PUT /secrets/{name}", status=429, retry_after=0, times=2
    )

    version = await promote(vault, app(settings), new_secret("key-7"), username=False)

    assert fault.hits == 2
    assert version.key_id == "key-7"


# ----- disable ----------------------------------------------------------------------------------


async def test_disable_turns_off_exactly_the_named_versions(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    managed = app(settings)
    old = await promote(vault, managed, new_secret("key-old"))
    sandbox.state.clock.advance(timedelta(seconds=2))
    new = await promote(vault, managed, new_secret("key-new"), username=False)

    await vault.disable(managed.secret_name, [old.version, "0" * 32])

    entry = await vault.read(managed.secret_name)
    assert {v.version: v.enabled for v in entry.versions} == {old.version: False, new.version: True}
    assert sandbox.state.live_secret(managed.secret_name) is not None


async def test_disable_refused_is_vault_write_failed(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    managed = app(settings)
    version = await promote(vault, managed, new_secret())
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"get", "list"})

    with pytest.raises(VaultWriteFailed, match="Key Vault Secrets Officer"):
        await vault.disable(managed.secret_name, [version.version])


# ----- the vault-wide listing and the settled mark ----------------------------------------------


async def test_read_current_lists_every_secrets_current_version_a_page_per_25(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    managed = app(settings)
    await promote(vault, managed, new_secret("key-1"))
    promoted = await promote(vault, managed, new_secret("key-2"), username=False)
    first = sandbox.state.vault[managed.secret_name.lower()][0]
    for i in range(30):
        sandbox.state.vault[f"other-{i}"] = [dataclasses.replace(first, name=f"other-{i}")]
    sandbox.state.requests.clear()

    current = await vault.read_current()

    assert sandbox.state.requests["vault GET /secrets"] == 2  # 32 secrets
    assert len(current) == 32
    listed = current[managed.secret_name.lower()]
    assert listed.key_id == "key-2"
    assert listed.created == promoted.created
    assert listed.expires == promoted.expires
    assert listed.enabled
    assert (listed.version, listed.settled) == ("", False)  # the listing names no version
    assert current[managed.secret_name.lower() + "-username"].key_id is None


async def test_mark_settled_keeps_the_tags_and_names_the_version_in_the_listing(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    managed = app(settings)
    promoted = await promote(vault, managed, new_secret("key-1"))

    await vault.mark_settled(managed.secret_name, promoted)
    listed = (await vault.read_current())[managed.secret_name.lower()]
    (read,) = (await vault.read(managed.secret_name)).versions

    assert listed.settled
    assert read.settled
    assert listed.version == read.version == promoted.version
    assert listed.tags == {**promoted.tags, SETTLED_TAG: promoted.version}


async def test_read_current_without_list_permission_is_permission_denied(
    sandbox: Sandbox, vault: VaultAdapter
) -> None:
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset()

    with pytest.raises(PermissionDenied, match="Key Vault Secrets Officer"):
        await vault.read_current()


async def test_throttled_listing_is_retried_by_the_sdk_pipeline(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    await promote(vault, app(settings), new_secret())
    sandbox.state.faults.inject("vault GET /secrets", status=429, retry_after=0, times=2)

    assert len(await vault.read_current()) == 2


# ----- other refusals ---------------------------------------------------------------------------


async def test_read_without_list_permission_is_permission_denied(
    sandbox: Sandbox, vault: VaultAdapter, settings: Settings
) -> None:
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset()

    with pytest.raises(PermissionDenied, match="Key Vault Secrets Officer"):
        await vault.read(app(settings).secret_name)


async def test_unreachable_vault_is_service_unavailable_with_a_hint(
    sandbox: Sandbox, credential: AsyncTokenCredential
) -> None:
    # A fresh port: one an earlier sandbox's vault used is in the SDK's challenge cache.
    settings = load_settings(sandbox.env(key_vault_url=unreachable_vault_url()))
    adapter = VaultAdapter.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        with pytest.raises(ServiceUnavailable, match="ROTATION_KEY_VAULT_URL"):
            await adapter.read("anything")
    finally:
        await adapter.close()


async def test_a_value_someone_else_wrote_never_reaches_the_network_trace(
    settings: Settings, credential: AsyncTokenCredential, caplog: pytest.LogCaptureFixture
) -> None:
    """With ROTATION_HTTP_LOGGING on, azure-core logs response bodies at DEBUG; a value read
    back (a hand-written version's, or the current one's) is not yet registered for
    redaction when its body arrives, so those reads must not be traced at all."""
    from azure.keyvault.secrets.aio import SecretClient

    from rotation.azure.trust import connection_options

    traced = settings.model_copy(update={"http_logging": True})
    name = app(settings).secret_name
    by_hand = "Hand8Q~pasted-by-a-person-9876543210"
    async with SecretClient(traced.key_vault_url, credential, **connection_options(traced)) as c:
        version = (await c.set_secret(name, by_hand)).properties.version or ""
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="azure.core.pipeline.policies")
    adapter = VaultAdapter.from_settings(traced, credential, retry=FAST_RETRY)
    try:
        assert (await adapter.read_value(name, version)).get_secret_value() == by_hand
        await adapter.read(name)  # the current version's value, read to learn its id
    finally:
        await adapter.close()

    trace = [r.getMessage() for r in caplog.records if r.name.startswith("azure.core")]
    assert any("Request URL" in line for line in trace), "the network trace did not run"
    assert not any(by_hand in line for line in trace)
