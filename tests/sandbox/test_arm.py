"""The sandbox ARM, driven by azure-mgmt-communication 3.0 and azure-mgmt-authorization 4.0.

Only base_url, the credential scope and the CA trust differ from production use; the
clients build their own URLs and deserialize every answer into their own models.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.communication.aio import CommunicationServiceManagementClient

from sandbox.server import Sandbox
from sandbox.state import BUILTIN_ROLES, RoleAssignment
from sandbox.vault_api import challenge_resource

CONTRIBUTOR = BUILTIN_ROLES["Contributor"].name
READER = BUILTIN_ROLES["Reader"].name


def options(sandbox: Sandbox, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": sandbox.arm_url,
        "credential_scopes": [sandbox.arm_url + "/.default"],
        "connection_verify": str(sandbox.ca_path),
        "retry_backoff_factor": 0.01,
        **extra,
    }


@pytest.fixture
async def comm(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> AsyncIterator[CommunicationServiceManagementClient]:
    async with CommunicationServiceManagementClient(
        credential, sandbox.subscription_id, **options(sandbox)
    ) as client:
        yield client


@pytest.fixture
async def authz(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> AsyncIterator[AuthorizationManagementClient]:
    async with AuthorizationManagementClient(
        credential, sandbox.subscription_id, **options(sandbox)
    ) as client:
        yield client


def code(exc: HttpResponseError) -> str | None:
    return exc.error.code if exc.error else None


# ----- Microsoft.Communication -----------------------------------------------------------------


async def test_communication_services_list_and_get_deserialize_into_sdk_models(
    sandbox: Sandbox, comm: CommunicationServiceManagementClient
) -> None:
    first = sandbox.add_acs_resource("acs-one")
    second = sandbox.add_acs_resource("acs-two", resource_group="rg-other")
    sandbox.add_acs_resource("elsewhere", subscription_id=sandbox.state.add_subscription())

    in_sub = [r async for r in comm.communication_services.list_by_subscription()]
    in_group = [r async for r in comm.communication_services.list_by_resource_group("rg-other")]
    one = await comm.communication_services.get("rg-email", "acs-one")

    assert [r.id for r in in_sub] == sorted([first.id, second.id], key=str.lower)
    assert [r.name for r in in_group] == ["acs-two"]
    assert one.id == first.id
    assert one.name == "acs-one"
    assert one.type == "Microsoft.Communication/CommunicationServices"
    assert one.location == "global"
    assert one.data_location == "Europe"
    assert one.host_name == "acs-one.europe.communication.azure.com"
    assert one.provisioning_state == "Succeeded"


async def test_smtp_usernames_list_and_get(
    sandbox: Sandbox, comm: CommunicationServiceManagementClient
) -> None:
    sender = sandbox.add_sender(via="smtp-username")
    resource = sender.resource

    listed = [u async for u in comm.smtp_usernames.list(resource.resource_group, resource.name)]
    assert len(listed) == 1
    name = listed[0].name
    assert name is not None
    got = await comm.smtp_usernames.get(resource.resource_group, resource.name, name)

    for item in (listed[0], got):
        assert item.username == sender.username
        assert item.entra_application_id == sender.app_id
        assert item.tenant_id == sandbox.tenant_id
        assert item.id == f"{resource.id}/smtpUsernames/{name}"
        assert item.type == "Microsoft.Communication/CommunicationServices/SmtpUsernames"


async def test_unknown_subscription_group_resource_and_username_are_arm_not_found_errors(
    sandbox: Sandbox,
    credential: ClientSecretCredential,
    comm: CommunicationServiceManagementClient,
) -> None:
    resource = sandbox.default_resource
    async with CommunicationServiceManagementClient(
        credential, "00000000-0000-0000-0000-000000000001", **options(sandbox)
    ) as other:
        with pytest.raises(ResourceNotFoundError) as no_sub:
            _ = [r async for r in other.communication_services.list_by_subscription()]
    with pytest.raises(ResourceNotFoundError) as no_group:
        await comm.communication_services.get("rg-missing", resource.name)
    with pytest.raises(ResourceNotFoundError) as no_resource:
        await comm.communication_services.get(resource.resource_group, "missing")
    with pytest.raises(ResourceNotFoundError) as no_username:
        await comm.smtp_usernames.get(resource.resource_group, resource.name, "missing")

    assert code(no_sub.value) == "SubscriptionNotFound"
    assert code(no_group.value) == "ResourceGroupNotFound"
    assert code(no_resource.value) == "ResourceNotFound"
    assert code(no_username.value) == "ResourceNotFound"


# ----- Microsoft.Authorization -----------------------------------------------------------------


async def test_role_assignments_at_scope_include_inherited_ones_and_not_children(
    sandbox: Sandbox, authz: AuthorizationManagementClient
) -> None:
    sender = sandbox.add_sender()
    resource = sender.resource
    child = RoleAssignment("child", f"{resource.id}/smtpUsernames/x", "p", "User", f"/x/{READER}")
    sandbox.state.role_assignments.append(child)

    at_scope = [
        a async for a in authz.role_assignments.list_for_scope(resource.id, filter="atScope()")
    ]
    plain = [a async for a in authz.role_assignments.list_for_scope(resource.id)]
    by_principal = [
        a
        async for a in authz.role_assignments.list_for_scope(
            resource.id, filter=f"principalId eq '{sender.principal_id}'"
        )
    ]

    scopes = {a.scope: a for a in at_scope}
    assert set(scopes) == {f"/subscriptions/{sandbox.subscription_id}", resource.id}
    mine = scopes[resource.id]
    assert mine.principal_id == sender.principal_id
    assert mine.principal_type == "ServicePrincipal"
    assert mine.role_definition_id == (
        f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization"
        f"/roleDefinitions/{CONTRIBUTOR}"
    )
    assert {a.scope for a in plain} == set(scopes) | {child.scope}
    assert [a.principal_id for a in by_principal] == [sender.principal_id]


async def test_role_definitions_by_scope_and_by_full_id(
    sandbox: Sandbox, authz: AuthorizationManagementClient
) -> None:
    custom = sandbox.state.add_role_definition(
        "ACS SMTP sender",
        [
            "Microsoft.Communication/CommunicationServices/Read",
            "Microsoft.Communication/EmailServices/write",
        ],
    )
    resource = sandbox.default_resource
    full_id = f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}"

    contributor = await authz.role_definitions.get(resource.id, CONTRIBUTOR)
    by_id = await authz.role_definitions.get_by_id(full_id)
    tenant_level = await authz.role_definitions.get_by_id(custom.id)

    assert contributor.id == full_id
    assert contributor.role_name == "Contributor"
    assert contributor.role_type == "BuiltInRole"
    assert contributor.permissions is not None
    assert contributor.permissions[0].actions == ["*"]
    assert "Microsoft.Authorization/*/Write" in (contributor.permissions[0].not_actions or [])
    assert by_id.id == full_id
    assert tenant_level.role_name == "ACS SMTP sender"
    assert tenant_level.role_type == "CustomRole"
    assert tenant_level.permissions is not None
    assert tenant_level.permissions[0].actions == list(custom.actions)


async def test_unknown_role_definition_is_role_definition_does_not_exist(
    sandbox: Sandbox, authz: AuthorizationManagementClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        await authz.role_definitions.get(
            sandbox.default_resource.id, "0" * 8 + "-0000-0000-0000-" + "0" * 12
        )
    assert code(caught.value) == "RoleDefinitionDoesNotExist"


# ----- tokens, RBAC, faults ----------------------------------------------------------------------


async def test_token_for_another_audience_is_refused(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> None:
    vault_scope = challenge_resource(sandbox.vault_url) + "/.default"
    async with CommunicationServiceManagementClient(
        credential, sandbox.subscription_id, **options(sandbox, credential_scopes=[vault_scope])
    ) as client:
        with pytest.raises(ClientAuthenticationError) as caught:
            _ = [r async for r in client.communication_services.list_by_subscription()]
    assert caught.value.status_code == 401


async def test_caller_without_a_read_role_gets_authorization_failed(
    sandbox: Sandbox,
    comm: CommunicationServiceManagementClient,
    authz: AuthorizationManagementClient,
) -> None:
    resource = sandbox.default_resource
    rotator = sandbox.rotator.principal_id
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != rotator
    ]

    calls = [
        comm.communication_services.get(resource.resource_group, resource.name),
        authz.role_definitions.get(resource.id, CONTRIBUTOR),
    ]
    for call in calls:
        with pytest.raises(HttpResponseError) as caught:
            await call
        assert caught.value.status_code == 403
        assert code(caught.value) == "AuthorizationFailed"
        assert sandbox.rotator.client_id in str(caught.value)
    with pytest.raises(HttpResponseError) as listing:
        _ = [a async for a in authz.role_assignments.list_for_scope(resource.id)]
    assert code(listing.value) == "AuthorizationFailed"


async def test_reader_on_one_resource_group_lists_only_what_it_may_read(
    sandbox: Sandbox, comm: CommunicationServiceManagementClient
) -> None:
    visible = sandbox.add_acs_resource("visible", resource_group="rg-mine")
    sandbox.add_acs_resource("hidden", resource_group="rg-theirs")
    rotator = sandbox.rotator
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != rotator.principal_id
    ]
    sandbox.state.assign_role(
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-mine", rotator.sp, "Reader"
    )

    listed = [r.id async for r in comm.communication_services.list_by_subscription()]

    assert listed == [visible.id]


async def test_throttling_with_retry_after_is_retried_and_counted(
    sandbox: Sandbox, comm: CommunicationServiceManagementClient
) -> None:
    route = "arm GET /subscriptions/{sub}/providers/Microsoft.Communication/communicationServices"
    fault = sandbox.state.faults.inject(route, status=429, retry_after=0, times=1)
    sandbox.state.faults.inject(
        "arm GET /subscriptions/{sub}/resourceGroups/*", status=503, retry_after=0, times=1
    )
    resource = sandbox.default_resource

    listed = [r.name async for r in comm.communication_services.list_by_subscription()]
    got = await comm.communication_services.get(resource.resource_group, resource.name)

    assert listed == [resource.name]
    assert got.name == resource.name
    assert fault.hits == 1
    assert sandbox.state.requests[route] == 2
    get_route = (
        "arm GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Communication"
        "/communicationServices/{name}"
    )
    assert sandbox.state.requests[get_route] == 2


# ----- the caller's own permissions ------------------------------------------------------------


async def test_permissions_at_the_vault_list_the_callers_roles_and_key_vault_data_actions(
    sandbox: Sandbox, authz: AuthorizationManagementClient
) -> None:
    vault_id = sandbox.state.vault_resource_id
    assert vault_id is not None
    parts = vault_id.strip("/").split("/")
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"get", "set"})

    entries = [
        p
        async for p in authz.permissions.list_for_resource(
            parts[3], parts[5], "", parts[6], parts[7]
        )
    ]

    assert [(p.actions, p.data_actions) for p in entries] == [
        (["*/read"], []),  # Reader on the subscription
        (
            [],
            [
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            ],
        ),
    ]


async def test_permissions_need_permissions_read_at_the_scope(
    sandbox: Sandbox, authz: AuthorizationManagementClient
) -> None:
    rotator = sandbox.rotator.principal_id
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != rotator
    ]
    parts = (sandbox.state.vault_resource_id or "").strip("/").split("/")

    with pytest.raises(HttpResponseError) as caught:
        _ = [
            p
            async for p in authz.permissions.list_for_resource(
                parts[3], parts[5], "", parts[6], parts[7]
            )
        ]
    assert code(caught.value) == "AuthorizationFailed"
