"""The custom roles in infra/modules/custom-roles.bicep are enough, and each action in them
is needed: discovery and the Key Vault adapter run against the sandbox, whose Resource
Manager and Key Vault check Azure RBAC, with the rotator holding exactly those roles.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from azure.core.credentials_async import AsyncTokenCredential

from rotation.azure.acs import ArmReader
from rotation.azure.entra import EntraAdapter
from rotation.azure.identity import build_credential
from rotation.azure.key_vault import VaultAdapter
from rotation.errors import RotationError
from rotation.permissions import VAULT_DATA_ACTIONS
from rotation.run.discovery import survey
from rotation.settings import Settings, load_settings
from sandbox import web_api
from sandbox.server import Sandbox
from sandbox.vault_api import ALL_OPERATIONS, GET, LIST, SET, UPDATE
from tests.infra import bicep

ROLES = bicep.INFRA / "modules" / "custom-roles.bicep"
READER_ACTIONS: list[str] = bicep.variable(ROLES, "readerActions")
DEFINITION_READER_ACTIONS: list[str] = bicep.variable(ROLES, "definitionReaderActions")
SECRET_WRITER_DATA_ACTIONS: list[str] = bicep.variable(ROLES, "secretWriterDataActions")
FAST_RETRY = {"retry_total": 1, "retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}
SECRETS_PREFIX = "Microsoft.KeyVault/vaults/secrets/"
#: Key Vault data actions (docs: role-based-access-control/permissions/security.md) and the
#: sandbox vault's operation each one allows.
VAULT_OPERATIONS = {
    "getSecret/action": GET,
    "readMetadata/action": LIST,
    "setSecret/action": SET,
    "update/action": UPDATE,
}


@dataclass
class Discovery:
    credential: AsyncTokenCredential
    arm: ArmReader
    entra: EntraAdapter


@pytest.fixture
async def discovery(
    sandbox: Sandbox, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Discovery]:
    for key, value in sandbox.env().items():
        if key.startswith("AZURE_"):
            monkeypatch.setenv(key, value)
    credential = build_credential(settings)
    clients = Discovery(
        credential,
        ArmReader.from_settings(settings, credential, retry=FAST_RETRY),
        EntraAdapter.from_settings(settings, credential),
    )
    yield clients
    await clients.arm.close()
    await clients.entra.close()
    await credential.close()


def give_rotator_only(sandbox: Sandbox, *grants: tuple[list[str], str]) -> None:
    """Replaces the rotator's Resource Manager roles with custom roles: (actions, scope)."""
    state = sandbox.state
    state.role_assignments[:] = [
        a for a in state.role_assignments if a.principal_id != sandbox.rotator.sp.object_id
    ]
    for number, (actions, scope) in enumerate(grants):
        role = state.add_role_definition(f"ACS SMTP rotation test role {number}", actions)
        state.assign_role(scope, sandbox.rotator.sp, role)


async def found(clients: Discovery, settings: Settings) -> set[str] | str:
    try:
        return {app.app_id for app in (await survey(settings, clients.arm, clients.entra)).apps}
    except RotationError as exc:
        return type(exc).__name__


async def test_custom_reader_role_on_the_subscription_finds_every_kind_of_sender(
    sandbox: Sandbox, settings: Settings, discovery: Discovery
) -> None:
    senders = [sandbox.add_sender(via=via) for via in ("role", "smtp-username", "both")]
    give_rotator_only(sandbox, (READER_ACTIONS, f"/subscriptions/{sandbox.subscription_id}"))

    assert await found(discovery, settings) == {s.app_id for s in senders}


@pytest.mark.parametrize("missing", READER_ACTIONS)
async def test_every_reader_action_is_needed(
    sandbox: Sandbox, settings: Settings, discovery: Discovery, missing: str
) -> None:
    senders = [sandbox.add_sender(via=via) for via in ("role", "smtp-username")]
    fewer = [a for a in READER_ACTIONS if a != missing]
    give_rotator_only(sandbox, (fewer, f"/subscriptions/{sandbox.subscription_id}"))

    assert await found(discovery, settings) != {s.app_id for s in senders}


async def test_reader_on_named_acs_resources_plus_definition_reader_finds_their_senders(
    sandbox: Sandbox, discovery: Discovery
) -> None:
    sender = sandbox.add_sender()
    by_username = sandbox.add_sender(via="smtp-username", role=None)
    give_rotator_only(
        sandbox,
        (READER_ACTIONS, sender.resource.id),
        (DEFINITION_READER_ACTIONS, f"/subscriptions/{sandbox.subscription_id}"),
    )
    settings = load_settings(
        sandbox.env(subscription_ids=None, acs_resource_ids=sender.resource.id)
    )

    assert await found(discovery, settings) == {sender.app_id, by_username.app_id}


def test_secret_writer_data_actions_are_exactly_the_vault_operations_the_rotator_makes() -> None:
    assert list(VAULT_DATA_ACTIONS) == SECRET_WRITER_DATA_ACTIONS  # one source: the code's
    assert all(a.startswith(SECRETS_PREFIX) for a in SECRET_WRITER_DATA_ACTIONS)
    granted = {VAULT_OPERATIONS[a.removeprefix(SECRETS_PREFIX)] for a in SECRET_WRITER_DATA_ACTIONS}
    assert granted == ALL_OPERATIONS
    assert len(SECRET_WRITER_DATA_ACTIONS) == len(ALL_OPERATIONS)


async def test_the_secret_writer_role_can_tell_a_soft_deleted_name_from_a_free_one(
    sandbox: Sandbox, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetDeletedSecret needs secrets/get (the spec) or secrets/list (the SDK docs), and
    GetDeletedSecrets secrets/list; no separate deleted-secret data action exists, and the
    writer role holds both."""
    for key, value in sandbox.env().items():
        if key.startswith("AZURE_"):
            monkeypatch.setenv(key, value)
    granted = {VAULT_OPERATIONS[a.removeprefix(SECRETS_PREFIX)] for a in SECRET_WRITER_DATA_ACTIONS}
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset(granted)
    sandbox.state.soft_delete_secret("acs-smtp-deleted")
    credential = build_credential(settings)
    vault = VaultAdapter.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        deleted = await vault.deleted("acs-smtp-deleted")
        free = await vault.deleted("acs-smtp-free")
        listed = await vault.deleted_names()
    finally:
        await vault.close()
        await credential.close()

    assert deleted is not None
    assert deleted.name == "acs-smtp-deleted"
    assert free is None
    assert list(listed) == ["acs-smtp-deleted"]


# ----- consumer sites: the consumer checker role ----------------------------------------

CONSUMER_CHECKER_ACTIONS: list[str] = bicep.variable(ROLES, "consumerCheckerActions")
SECRET = "acs-smtp-least-privilege"


async def consumer_calls(sandbox: Sandbox, settings: Settings, site_ids: list[str]) -> str:
    """Scans for sites, then reads and refreshes each: "ok" or the error's class name."""
    from rotation.azure.app_service import WebSiteReader

    credential = build_credential(settings)
    reader = WebSiteReader.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        listed = await reader.list_sites(sandbox.subscription_id)
        for site_id in list(listed):
            listed += await reader.list_slots(site_id)
        assert sorted(listed) == sorted(site_ids)
        for site_id in site_ids:
            assert await reader.references(site_id)
            await reader.refresh(site_id)
    except RotationError as exc:
        return type(exc).__name__
    finally:
        await reader.close()
        await credential.close()
    return "ok"


@pytest.fixture
def sites(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for key, value in sandbox.env().items():
        if key.startswith("AZURE_"):
            monkeypatch.setenv(key, value)
    site = sandbox.add_consumer_site("mailer", SECRET, grant_rotator=False)
    slot = sandbox.add_consumer_site("mailer", SECRET, slot="staging", grant_rotator=False)
    return [site.id, slot.id]


#: The two calls no published Microsoft.Web operation names, as the sandbox's Resource
#: Manager checks them (sandbox/web_api.py): no custom role can hold these names, only a
#: wildcard such as Website Contributor's Microsoft.Web/sites/*.
UNPUBLISHED_CALLS = [
    web_api.READ_CS_REFERENCES,
    web_api.SLOT_READ_CS_REFERENCES,
    web_api.REFRESH_REFERENCES,
    web_api.SLOT_REFRESH_REFERENCES,
]


async def test_the_consumer_checker_role_with_website_contributor_makes_every_call(
    sandbox: Sandbox, settings: Settings, sites: list[str]
) -> None:
    subscription = f"/subscriptions/{sandbox.subscription_id}"
    give_rotator_only(sandbox, (CONSUMER_CHECKER_ACTIONS, subscription))
    alone = await consumer_calls(sandbox, settings, sites)
    sandbox.state.assign_role(subscription, sandbox.rotator.sp, "Website Contributor")

    assert alone == "PermissionDenied"  # the connection-string references and the refresh
    assert await consumer_calls(sandbox, settings, sites) == "ok"


@pytest.mark.parametrize("missing", CONSUMER_CHECKER_ACTIONS)
async def test_every_consumer_checker_action_is_needed(
    sandbox: Sandbox, settings: Settings, sites: list[str], missing: str
) -> None:
    subscription = f"/subscriptions/{sandbox.subscription_id}"
    fewer = [a for a in CONSUMER_CHECKER_ACTIONS if a != missing]
    give_rotator_only(sandbox, (fewer + UNPUBLISHED_CALLS, subscription))
    enough = [*CONSUMER_CHECKER_ACTIONS, *UNPUBLISHED_CALLS]

    refused = await consumer_calls(sandbox, settings, sites)
    give_rotator_only(sandbox, (enough, subscription))

    assert refused == "PermissionDenied"
    assert await consumer_calls(sandbox, settings, sites) == "ok"


def test_the_consumer_checker_cannot_read_setting_values_or_change_a_site() -> None:
    granted = [a.lower() for a in CONSUMER_CHECKER_ACTIONS]
    assert all(a.startswith("microsoft.web/sites/") for a in granted)
    assert not any("*" in a or a.endswith(("/write", "/delete")) for a in granted)
    assert "microsoft.web/sites/config/list/action" not in granted
