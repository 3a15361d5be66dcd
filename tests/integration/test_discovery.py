"""survey() against the sandbox: ArmReader and EntraAdapter as the service builds them.

Each scenario is seeded the way an operator sets senders up in the portal (a role on the
ACS resource, an SMTP Username resource, a custom email role, an allow-list entry) and
checks which apps come out, with which usernames, through the real management and Graph
SDKs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import structlog
from azure.core.credentials_async import AsyncTokenCredential

from rotation.azure.acs import ArmReader
from rotation.azure.entra import EntraAdapter
from rotation.azure.identity import build_credential
from rotation.errors import InvalidRequest, NotFound, PermissionDenied
from rotation.model import ManagedApp
from rotation.permissions import COMMUNICATION_READ, EMAIL_WRITE, SENDER_ACTIONS
from rotation.run.discovery import explore, survey
from rotation.settings import Settings, load_settings
from sandbox.server import Sandbox
from sandbox.state import RoleAssignment

FAST_RETRY = {"retry_total": 2, "retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}
SMTP_ACTIONS = list(SENDER_ACTIONS)


@dataclass
class Clients:
    credential: AsyncTokenCredential
    arm: ArmReader
    entra: EntraAdapter


@pytest.fixture
async def clients(
    sandbox: Sandbox, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Clients]:
    for key, value in sandbox.env().items():
        if key.startswith("AZURE_"):
            monkeypatch.setenv(key, value)
    credential = build_credential(settings)
    arm = ArmReader.from_settings(settings, credential, retry=FAST_RETRY)
    entra = EntraAdapter.from_settings(settings, credential)
    yield Clients(credential, arm, entra)
    await arm.close()
    await entra.close()
    await credential.close()


async def run(clients: Clients, settings: Settings) -> dict[str, ManagedApp]:
    return {a.app_id: a for a in (await survey(settings, clients.arm, clients.entra)).apps}


async def test_senders_by_role_and_by_smtp_username_each_appear_once(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    by_role = sandbox.add_sender(via="role")
    by_both = sandbox.add_sender(via="both")
    only_username = sandbox.add_sender(via="smtp-username", role=None)

    apps = await run(clients, settings)

    assert set(apps) == {by_role.app_id, by_both.app_id, only_username.app_id}
    assert apps[by_role.app_id].usernames == by_role.usernames
    assert apps[by_role.app_id].sources == ("role",)
    assert apps[by_both.app_id].usernames == by_both.usernames  # custom name first
    assert apps[by_both.app_id].sources == ("smtp-username", "role")
    assert apps[only_username.app_id].usernames == only_username.usernames
    for sender in (by_role, by_both, only_username):
        app = apps[sender.app_id]
        assert app.acs_resource_ids == (sender.resource.id,)
        assert app.secret_name == settings.secret_name(sender.app_id)
        assert app.tenant_id == sandbox.tenant_id


async def test_an_app_on_two_resources_is_known_by_both_usernames(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    sender = sandbox.add_sender()
    second = sandbox.add_acs_resource("acs-zeta", resource_group="rg-zeta")
    sandbox.state.assign_role(second.id, sender.sp, "Owner")

    apps = await run(clients, settings)

    assert apps[sender.app_id].usernames == (
        sender.username,
        f"acs-zeta.{sender.app_id}.{sandbox.tenant_id}",
    )
    assert apps[sender.app_id].acs_resource_ids == (sender.resource.id, second.id)


async def test_a_role_short_of_what_acs_asks_still_makes_a_sender_so_it_fails_loudly(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    """A custom role from the 2023 ACS docs (Read and EmailServices/write, no
    CommunicationServices/Write): its holder is rotated, and verification and doctor say
    what the role lacks, rather than the app going unrotated without a word."""
    older = sandbox.state.add_role_definition(
        "ACS SMTP sender (2023 docs)", [COMMUNICATION_READ, EMAIL_WRITE]
    )
    sender = sandbox.add_sender(role=older)

    apps = await run(clients, settings)

    assert list(apps) == [sender.app_id]


async def test_custom_email_role_counts_even_when_inherited_from_the_resource_group(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    email_role = sandbox.state.add_role_definition("ACS SMTP sender", SMTP_ACTIONS)
    sender = sandbox.add_sender(role=None)
    sandbox.state.assign_role(
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{sender.resource.resource_group}",
        sender.sp,
        email_role,
    )

    apps = await run(clients, settings)

    assert list(apps) == [sender.app_id]
    assert apps[sender.app_id].usernames == (sender.username,)


async def test_subscription_contributor_is_not_a_sender_until_allow_listed(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    pipeline = sandbox.add_sender(role=None, name="deploy-pipeline")
    sandbox.state.assign_role(
        f"/subscriptions/{sandbox.subscription_id}", pipeline.sp, "Contributor"
    )

    before = await run(clients, settings)
    allow_listed = load_settings(sandbox.env(app_ids=pipeline.app_id))
    after = await run(clients, allow_listed)

    assert before == {}
    assert after[pipeline.app_id].usernames == (pipeline.username,)
    assert after[pipeline.app_id].sources == ("role", "allow-list")


async def test_roles_that_do_not_send_mail_and_non_service_principals_are_ignored(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    read_only = sandbox.state.add_role_definition("ACS reader", [COMMUNICATION_READ])
    minus_write = sandbox.state.add_role_definition(
        "ACS minus email", ["Microsoft.Communication/*"], [EMAIL_WRITE]
    )
    for role in ("Reader", read_only, minus_write):
        sandbox.add_sender(role=role)
    user = sandbox.add_sender(role=None)
    sandbox.state.role_assignments.append(
        RoleAssignment(
            "u",
            sandbox.default_resource.id,
            user.principal_id,
            "User",
            "/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
        )
    )

    assert await run(clients, settings) == {}


async def test_allow_list_with_a_username_needs_no_resource_manager_at_all(
    sandbox: Sandbox, clients: Clients
) -> None:
    app_id = "0f0f0f0f-1111-4222-8333-444444444444"
    settings = load_settings(
        sandbox.env(subscription_ids=None, app_ids=f"{app_id}=mailer@contoso.com")
    )

    apps = await run(clients, settings)

    assert apps[app_id].usernames == ("mailer@contoso.com",)
    assert apps[app_id].sources == ("allow-list",)
    assert not any(k.startswith("arm ") for k in sandbox.state.requests)


async def test_excluded_apps_and_other_tenants_smtp_usernames_are_left_out(
    sandbox: Sandbox, clients: Clients
) -> None:
    kept = sandbox.add_sender()
    excluded = sandbox.add_sender()
    guest = sandbox.add_sender(via="smtp-username", role=None)
    sandbox.state.smtp_usernames[-1].tenant_id = "99999999-9999-4999-8999-999999999999"
    settings = load_settings(sandbox.env(exclude_app_ids=excluded.app_id))

    apps = await run(clients, settings)

    assert list(apps) == [kept.app_id]
    assert guest.app_id not in apps


async def test_named_resources_only_are_scanned(sandbox: Sandbox, clients: Clients) -> None:
    inside = sandbox.add_sender()
    elsewhere = sandbox.add_sender(sandbox.add_acs_resource("acs-elsewhere"))
    settings = load_settings(
        sandbox.env(subscription_ids=None, acs_resource_ids=inside.resource.id)
    )

    apps = await run(clients, settings)

    assert list(apps) == [inside.app_id]
    assert elsewhere.app_id not in apps


async def test_each_role_definition_is_read_once_per_run(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    for _ in range(4):
        sandbox.add_sender(sandbox.add_acs_resource())

    apps = await run(clients, settings)

    assert len(apps) == 4
    # Contributor (the senders) and Reader (the rotator's, inherited): two reads in all.
    assert (
        sandbox.state.requests[
            "arm GET /{scope}/providers/Microsoft.Authorization/roleDefinitions/{id}"
        ]
        == 2
    )


async def test_missing_named_resource_is_not_found_naming_the_setting(
    sandbox: Sandbox, clients: Clients
) -> None:
    missing = sandbox.default_resource.id.replace("acs-sandbox", "acs-gone")
    settings = load_settings(sandbox.env(subscription_ids=None, acs_resource_ids=missing))

    with pytest.raises(NotFound, match="ROTATION_ACS_RESOURCE_IDS"):
        await run(clients, settings)


async def test_rotator_without_reader_gets_permission_denied_with_the_fix(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    sandbox.add_sender()
    rotator = sandbox.rotator.principal_id
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != rotator
    ]

    with pytest.raises(PermissionDenied, match="Reader") as caught:
        await run(clients, settings)
    assert "AuthorizationFailed" in str(caught.value)


async def test_managed_identities_and_other_tenants_apps_are_skipped_not_managed(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    sender = sandbox.add_sender()
    identity = sandbox.add_managed_identity_holder()
    partner = sandbox.add_other_tenant_holder()

    inventory = await survey(settings, clients.arm, clients.entra)

    assert [a.app_id for a in inventory.apps] == [sender.app_id]
    reasons = {s.app_id: s.reason for s in inventory.skipped}
    assert set(reasons) == {identity.app_id, partner.client_id}
    assert "managed identity" in reasons[identity.app_id]
    assert partner.app.tenant_id in reasons[partner.client_id]
    assert sandbox.default_resource.id in reasons[partner.client_id]


async def test_group_role_assignments_are_not_followed_but_logged(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    member = sandbox.add_sender(role=None, name="group-member")
    group = sandbox.state.add_group("mail senders", {member.principal_id})
    sandbox.state.assign_role(sandbox.default_resource.id, group, "Contributor")

    with structlog.testing.capture_logs() as logs:
        apps = await run(clients, settings)
    allow_listed = load_settings(sandbox.env(app_ids=f"{member.app_id}={member.username}"))
    after = await run(clients, allow_listed)

    assert apps == {}
    (ignored,) = [e for e in logs if e["event"] == "discovery.group_ignored"]
    assert ignored["group_id"] == group.object_id
    assert ignored["resource_id"] == sandbox.default_resource.id
    assert "ROTATION_APP_IDS" in ignored["hint"]
    assert after[member.app_id].username_sources == ("allow-list",)


async def test_an_arm_url_entra_does_not_know_names_the_setting_and_aadsts500011(
    sandbox: Sandbox, credential: AsyncTokenCredential
) -> None:
    settings = load_settings(sandbox.env(arm_url="https://management.example.invalid"))
    arm = ArmReader.from_settings(settings, credential, retry=FAST_RETRY)
    try:
        with pytest.raises(InvalidRequest) as caught:
            await arm.acs_resources([sandbox.subscription_id])
    finally:
        await arm.close()
    assert "AADSTS500011" in str(caught.value)
    assert "check ROTATION_ARM_URL and ROTATION_CLOUD" in str(caught.value)


async def test_explore_keeps_going_past_a_refused_read_and_a_run_refuses_the_partial_picture(
    sandbox: Sandbox, settings: Settings, clients: Clients
) -> None:
    """Without the Graph permission the role holders cannot be looked up: `explore` records
    that (doctor reports it) and still returns what it read; `survey` (a run) raises it."""
    by_role = sandbox.add_sender()
    by_username = sandbox.add_sender(via="smtp-username", role=None)
    second = sandbox.add_acs_resource("acs-second")
    sandbox.add_sender(second)
    sandbox.state.role_assignments = [  # the second resource's assignments cannot be read
        a for a in sandbox.state.role_assignments if a.principal_id != sandbox.rotator.sp.object_id
    ]
    sandbox.state.assign_role(sandbox.default_resource.id, sandbox.rotator.sp, "Reader")
    sandbox.state.assign_role(
        f"/subscriptions/{sandbox.subscription_id}",
        sandbox.rotator.sp,
        sandbox.state.add_role_definition(
            "lists ACS and reads roles",
            [
                "Microsoft.Communication/CommunicationServices/read",
                "Microsoft.Authorization/roleDefinitions/read",
            ],
        ),
    )
    sandbox.rotator.sp.graph_roles.clear()

    found = await explore(settings, clients.arm, clients.entra)
    with pytest.raises(PermissionDenied):
        await survey(settings, clients.arm, clients.entra)

    assert [u.kind for u in found.unread] == ["acs resource", "service principals"]
    assert found.unread[0].scope == second.id
    assert [s.resource.id for s in found.scans] == [sandbox.default_resource.id]
    assert [h.principal_id for h in found.holders] == [by_role.principal_id.lower()]
    assert [a.app_id for a in found.inventory.apps] == [by_username.app_id]
