"""The sandbox's Azure Resource Manager: the reads the rotator's discovery makes.

Routes (any ``api-version``), with the request URLs azure-mgmt-communication 3.0 and
azure-mgmt-authorization 4.0 (API 2022-04-01) send and the JSON their models read:

- ``GET /subscriptions/{sub}/providers/Microsoft.Communication/communicationServices``
- ``GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Communication/communicationServices``
- ``GET .../communicationServices/{name}``, ``.../smtpUsernames`` and ``.../smtpUsernames/{username}``
- ``GET {scope}/providers/Microsoft.Authorization/roleAssignments`` with ``$filter``
  ``atScope()`` (at and above the scope), ``principalId eq '<id>'`` / ``assignedTo('<id>')``,
  or none (at, above and below the scope, as ARM lists them); pages of
  ``state.arm_page_size`` with a ``nextLink`` (``$skiptoken``), as the spec marks it pageable
- ``GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}`` (which is also the
  URL of ``get_by_id`` with a full role definition id) and the tenant-level
  ``/providers/Microsoft.Authorization/roleDefinitions/{id}``
- ``PUT {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}``: a custom role, as
  Bicep and ``az role definition create`` make one; refused with 400
  ``InvalidActionOrNotAction`` when any action names no published operation
  (sandbox/operations.py)

Errors are ARM's ``{"error": {"code", "message"}}``: ``SubscriptionNotFound``,
``ResourceGroupNotFound``, ``ResourceNotFound``, ``RoleDefinitionDoesNotExist``. Tokens must
be issued for ARM: this app's own base URL (what ``ROTATION_ARM_URL`` points at) or the
public cloud's ARM audiences.

Reads are checked with Azure RBAC against the sandbox's own role assignments: the caller's
service principal needs a role at or above the scope that allows the read action
(Reader does), else 403 ``AuthorizationFailed``; a subscription or group listing shows only
the resources the caller may read. The sandbox's rotator holds Reader on its subscription.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from yarl import URL

from sandbox import operations, vault_api
from sandbox.http_common import BASE_URL, STATE, ApiError, counted_app, json_body, require_token
from sandbox.state import (
    AcsResource,
    IssuedToken,
    RoleAssignment,
    RoleDefinition,
    SandboxState,
    SmtpUsername,
)

ACS = "/providers/Microsoft.Communication/communicationServices"
AUTHZ = "/providers/Microsoft.Authorization"
ACS_TYPE = "Microsoft.Communication/CommunicationServices"
PUBLIC_ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
READ_ACS = "Microsoft.Communication/communicationServices/read"
READ_SMTP_USERNAMES = "Microsoft.Communication/communicationServices/smtpUsernames/read"
READ_ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments/read"
READ_ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions/read"
_FILTER_TERM = re.compile(
    r"^(?:(?P<at>atScope\(\))|principalId\s+eq\s+'(?P<pid>[^']+)'|assignedTo\('(?P<to>[^']+)'\))$",
    re.IGNORECASE,
)


def build_app(state: SandboxState) -> web.Application:
    """The ARM app. The server sets BASE_URL once the port is known."""
    app = counted_app("arm", state)
    sub = "/subscriptions/{sub}"
    rg = sub + "/resourceGroups/{rg}"
    app.router.add_get(sub + ACS, list_by_subscription)
    app.router.add_get(rg + ACS, list_by_resource_group)
    app.router.add_get(rg + ACS + "/{name}", get_resource)
    app.router.add_get(rg + ACS + "/{name}/smtpUsernames", list_smtp_usernames)
    app.router.add_get(rg + ACS + "/{name}/smtpUsernames/{username}", get_smtp_username)
    app.router.add_get("/{scope:.+}" + AUTHZ + "/roleAssignments", list_role_assignments)
    app.router.add_get(AUTHZ + "/roleDefinitions/{id}", get_role_definition)
    app.router.add_get("/{scope:.+}" + AUTHZ + "/permissions", list_permissions)
    app.router.add_get("/{scope:.+}" + AUTHZ + "/roleDefinitions/{id}", get_role_definition)
    app.router.add_put("/{scope:.+}" + AUTHZ + "/roleDefinitions/{id}", put_role_definition)
    return app


# ----- Microsoft.Communication -------------------------------------------------------------


async def list_by_subscription(request: web.Request) -> web.Response:
    """The ACS resources of a subscription the caller may read (403 if none at all)."""
    state, token = _authorized(request)
    sub = _subscription(request)
    scope = f"/subscriptions/{sub}"
    found = [
        r
        for r in state.acs_resources.values()
        if r.subscription_id.lower() == sub and _may(state, token, READ_ACS, r.id)
    ]
    if not found:
        _require(state, token, READ_ACS, scope)
    return _page([_resource_json(r) for r in _sorted(found)])


async def list_by_resource_group(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    found = _group_resources(request, state)
    visible = [r for r in found if _may(state, token, READ_ACS, r.id)]
    if not visible:
        _require(state, token, READ_ACS, _group_scope(request))
    return _page([_resource_json(r) for r in _sorted(visible)])


async def get_resource(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    resource = _resource(request, state)
    _require(state, token, READ_ACS, resource.id)
    # ARM answers a resource's GET with its ETag (azure-sdk-assets, net/sdk/communication/
    # Azure.ResourceManager.Communication CommunicationServiceTests/Get.json, @1d87bffc).
    etag = f'"{uuid.uuid5(uuid.NAMESPACE_URL, resource.id.lower())}"'
    return web.json_response(_resource_json(resource), headers={"ETag": etag})


async def list_smtp_usernames(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    resource = _resource(request, state)
    _require(state, token, READ_SMTP_USERNAMES, resource.id + "/smtpUsernames")
    entries = [u for u in state.smtp_usernames if u.acs_resource_id.lower() == resource.id.lower()]
    return _page([_smtp_username_json(u) for u in entries])


async def get_smtp_username(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    resource = _resource(request, state)
    wanted = request.match_info["username"].lower()
    _require(state, token, READ_SMTP_USERNAMES, f"{resource.id}/smtpUsernames/{wanted}")
    entry = next(
        (
            u
            for u in state.smtp_usernames
            if u.acs_resource_id.lower() == resource.id.lower() and u.name.lower() == wanted
        ),
        None,
    )
    if entry is None:
        raise _resource_not_found(
            f"{ACS_TYPE}/smtpUsernames",
            f"{resource.name}/{request.match_info['username']}",
            resource.resource_group,
        )
    return web.json_response(_smtp_username_json(entry))


# ----- Microsoft.Authorization -------------------------------------------------------------


async def list_role_assignments(request: web.Request) -> web.Response:
    """Role assignments as ARM lists them for a scope: inherited ones included."""
    state, token = _authorized(request)
    scope = _scope(request)
    _require(state, token, READ_ROLE_ASSIGNMENTS, scope)
    at_scope, principal = _role_assignment_filter(request.query.get("$filter"))
    # The scope's ancestors (and itself) as a set: one look-up per assignment instead of
    # string prefix tests, since every page of a 10,000-sender listing filters them all.
    target = scope.rstrip("/").lower()
    above = _ancestors_or_self(target)
    found = [
        a
        for a in state.role_assignments
        if (
            (mine := a.scope.rstrip("/").lower()) in above
            or (not at_scope and mine.startswith(target + "/"))
        )
        and (principal is None or a.principal_id.lower() == principal)
    ]
    found.sort(key=lambda a: a.id.lower())
    return _paged(request, found, _role_assignment_json, state.arm_page_size)


async def get_role_definition(request: web.Request) -> web.Response:
    """A role definition; built-in and custom roles are readable by every signed-in caller
    at the tenant root, and with roleDefinitions/read at a subscription scope."""
    state, token = _authorized(request)
    scope = _scope(request) if "scope" in request.match_info else ""
    if scope:
        _require(state, token, READ_ROLE_DEFINITIONS, scope)
    wanted = request.match_info["id"]
    role = state.role_definition(wanted)
    if role is None:
        raise ApiError(
            404,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{wanted}' does not exist.",
        )
    return web.json_response(_role_definition_json(role, _subscription_of(scope)))


async def put_role_definition(request: web.Request) -> web.Response:
    """Creates or updates a custom role (Authorization 2022-04-01 RoleDefinitions_
    CreateOrUpdate) after ARM's check that each of its actions, notActions, dataActions
    and notDataActions names a published operation."""
    state, token = _authorized(request)
    scope = _scope(request)
    _require(state, token, "Microsoft.Authorization/roleDefinitions/write", scope)
    body = await json_body(request)
    properties = body.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("permissions"), list):
        raise ApiError(400, "InvalidRoleDefinition", "The role definition has no permissions.")
    actions: list[str] = []
    not_actions: list[str] = []
    for permission in properties["permissions"]:
        if not isinstance(permission, dict):
            raise ApiError(400, "InvalidRoleDefinition", "A permission is not an object.")
        actions += _checked(permission, "actions")
        not_actions += _checked(permission, "notActions")
        _checked(permission, "dataActions", data=True)
        _checked(permission, "notDataActions", data=True)
    role = RoleDefinition(
        request.match_info["id"],
        str(properties.get("roleName") or request.match_info["id"]),
        actions,
        not_actions,
        "CustomRole",
        str(properties.get("description") or ""),
    )
    state.role_definitions[role.name] = role
    return web.json_response(_role_definition_json(role, _subscription_of(scope)), status=201)


def _checked(permission: dict[str, Any], key: str, *, data: bool = False) -> list[str]:
    values = permission.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ApiError(400, "InvalidRoleDefinition", f"'{key}' must be a list of strings.")
    for value in values:
        refusal = operations.published().refusal(value, data=data)
        if refusal is not None:
            raise ApiError(400, "InvalidActionOrNotAction", refusal)
    return list(values)


async def list_permissions(request: web.Request) -> web.Response:
    """What the caller may do at a scope (Authorization 2022-04-01 ``Permissions_ListFor
    Resource``/``ListForResourceGroup``): one entry per role assigned to it at or above the
    scope, plus, at the sandbox vault's scope, the Key Vault data actions its RBAC model
    gives the caller. Unsure whether ARM checks ``permissions/read`` here, the sandbox
    does (the stricter reading); Reader covers it."""
    state, token = _authorized(request)
    scope = re.sub(r"/{2,}", "/", _scope(request))
    _require(state, token, "Microsoft.Authorization/permissions/read", scope)
    caller = state.service_principal_by_app_id(token.client_id)
    entries: list[dict[str, Any]] = []
    for assignment in state.assignments_covering(scope):
        role = state.role_definition(assignment.role_definition_id)
        if caller is None or assignment.principal_id != caller.object_id or role is None:
            continue
        entries.append(_permission_json(role.actions, role.not_actions, []))
    vault = state.vault_resource_id
    if vault is not None and scope.lower() == vault.lower():
        entries.append(_permission_json([], [], vault_api.data_actions(state, token.client_id)))
    return _page(entries)


def _permission_json(actions: list[str], not_actions: list[str], data: list[str]) -> dict[str, Any]:
    return {
        "actions": actions,
        "notActions": not_actions,
        "dataActions": data,
        "notDataActions": [],
    }


# ----- checks ------------------------------------------------------------------------------


def _authorized(request: web.Request) -> tuple[SandboxState, IssuedToken]:
    """A live ARM token, or 401 in ARM's shape."""
    token = require_token(request, [_base_url(request), *PUBLIC_ARM_AUDIENCES])
    return request.app[STATE], token


def _may(state: SandboxState, token: IssuedToken, action: str, scope: str) -> bool:
    """Azure RBAC: a role assigned to the caller at or above `scope` allows `action`."""
    caller = state.service_principal_by_app_id(token.client_id)
    if caller is None:
        return False
    # The caller's own assignments, stopping at the first that allows: at 10,000 senders,
    # matching every assignment's scope on each request made the sandbox, not the rotator,
    # the slow part of discovery.
    for assignment in state.role_assignments:
        if assignment.principal_id != caller.object_id:
            continue
        if not _is_ancestor_or_self(assignment.scope, scope):
            continue
        role = state.role_definition(assignment.role_definition_id)
        if role is not None and role.allows(action):
            return True
    return False


def _require(state: SandboxState, token: IssuedToken, action: str, scope: str) -> None:
    if _may(state, token, action, scope):
        return
    caller = state.service_principal_by_app_id(token.client_id)
    object_id = caller.object_id if caller else token.client_id
    raise ApiError(
        403,
        "AuthorizationFailed",
        f"The client '{token.client_id}' with object id '{object_id}' does not have "
        f"authorization to perform action '{action}' over scope '{scope}' or the scope is "
        "invalid. If access was recently granted, please refresh your credentials.",
    )


def _group_scope(request: web.Request) -> str:
    return f"/subscriptions/{request.match_info['sub']}/resourceGroups/{request.match_info['rg']}"


def _subscription(request: web.Request) -> str:
    if "api-version" not in request.query:
        raise ApiError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    sub = request.match_info["sub"].lower()
    _require_subscription(request.app[STATE], sub)
    return sub


def _require_subscription(state: SandboxState, sub: str) -> None:
    if sub not in {s.lower() for s in state.subscriptions}:
        raise ApiError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


def _group_resources(request: web.Request, state: SandboxState) -> list[AcsResource]:
    sub = _subscription(request)
    rg = request.match_info["rg"].lower()
    in_sub = [r for r in state.acs_resources.values() if r.subscription_id.lower() == sub]
    if not any(r.resource_group.lower() == rg for r in in_sub):
        # The sandbox knows a resource group only through the resources in it.
        raise ApiError(
            404,
            "ResourceGroupNotFound",
            f"Resource group '{request.match_info['rg']}' could not be found.",
        )
    return [r for r in in_sub if r.resource_group.lower() == rg]


def _resource(request: web.Request, state: SandboxState) -> AcsResource:
    _group_resources(request, state)
    name = request.match_info["name"]
    rid = (
        f"/subscriptions/{request.match_info['sub']}/resourceGroups/{request.match_info['rg']}"
        f"{ACS}/{name}"
    )
    resource = state.acs_resources.get(rid.lower())
    if resource is None:
        raise _resource_not_found(
            "Microsoft.Communication/communicationServices", name, request.match_info["rg"]
        )
    return resource


def _resource_not_found(kind: str, name: str, group: str) -> ApiError:
    return ApiError(
        404,
        "ResourceNotFound",
        f"The Resource '{kind}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _scope(request: web.Request) -> str:
    """The scope of an authorization route ("/subscriptions/..."); its subscription must exist."""
    if "api-version" not in request.query:
        raise ApiError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    scope = "/" + request.match_info["scope"].strip("/")
    sub = _subscription_of(scope)
    if sub is None:
        raise ApiError(400, "InvalidScope", f"The scope '{scope}' is not valid for this request.")
    _require_subscription(request.app[STATE], sub)
    return scope


def _role_assignment_filter(text: str | None) -> tuple[bool, str | None]:
    """(atScope() given, principal id or None) from a roleAssignments $filter."""
    at_scope, principal = False, None
    if not text:
        return at_scope, principal
    for term in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _FILTER_TERM.match(term.strip())
        if match is None:
            raise ApiError(
                400,
                "UnsupportedQuery",
                f"The filter '{text}' is not supported. Supported filters are atScope(), "
                "principalId eq '{id}' and assignedTo('{id}').",
            )
        at_scope = at_scope or bool(match["at"])
        principal = (match["pid"] or match["to"] or principal or "").lower() or None
    return at_scope, principal


def _ancestors_or_self(scope: str) -> set[str]:
    """Every scope containing `scope` (lower-case, no trailing '/'), the root ('') too."""
    parts = scope.strip("/").split("/")
    return {""} | {"/" + "/".join(parts[:n]) for n in range(1, len(parts) + 1)}


def _is_ancestor_or_self(ancestor: str, scope: str) -> bool:
    a, s = ancestor.rstrip("/").lower(), scope.rstrip("/").lower()
    return s == a or s.startswith(a + "/")


def _subscription_of(scope: str) -> str | None:
    parts = scope.strip("/").split("/")
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return None


# ----- shapes ------------------------------------------------------------------------------


def _base_url(request: web.Request) -> str:
    return request.app.get(BASE_URL) or f"{request.scheme}://{request.host}"


def _page(items: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"value": items})


def _paged(
    request: web.Request,
    items: list[Any],
    render: Callable[[Any], dict[str, Any]],
    size: int,
) -> web.Response:
    """One page of `items` and, when more follow, a ``nextLink``: the same URL plus a
    ``$skiptoken`` (RoleAssignmentListResult in azure-rest-api-specs
    .../authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json is
    pageable with nextLinkName "nextLink")."""
    offset = _skip(request.query.get("$skiptoken"))
    body: dict[str, Any] = {"value": [render(i) for i in items[offset : offset + size]]}
    if offset + size < len(items):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(offset + size)
        body["nextLink"] = str(URL(_base_url(request) + request.path).with_query(query))
    return web.json_response(body)


def _skip(token: str | None) -> int:
    if token is None:
        return 0
    if not token.isdigit():
        raise ApiError(400, "BadRequest", f"The skip token '{token}' is not valid.")
    return int(token)


def _sorted(resources: list[AcsResource]) -> list[AcsResource]:
    return sorted(resources, key=lambda r: r.id.lower())


#: Who "created" seeded objects, in their systemData and createdBy fields: a fixed id,
#: since the sandbox's seeding stands for an administrator nobody reads the id of.
SEEDED_BY = str(uuid.uuid5(uuid.NAMESPACE_URL, "sandbox-administrator"))
SEEDED_AT = "2024-01-01T00:00:00.0000000Z"


def _system_data() -> dict[str, str]:
    """ARM's systemData on a tracked resource, as the recorded GET and list of an ACS
    resource carry it (azure-sdk-assets CommunicationServiceTests/Get.json, @1d87bffc)."""
    return {
        "createdBy": SEEDED_BY,
        "createdByType": "Application",
        "createdAt": SEEDED_AT,
        "lastModifiedBy": SEEDED_BY,
        "lastModifiedByType": "Application",
        "lastModifiedAt": SEEDED_AT,
    }


def _resource_json(resource: AcsResource) -> dict[str, Any]:
    return {
        "id": resource.id,
        "name": resource.name,
        "type": ACS_TYPE,
        "location": resource.location,
        "tags": {},
        "systemData": _system_data(),
        "properties": {
            "provisioningState": "Succeeded",
            "hostName": f"{resource.name}.{resource.data_location.lower()}.communication.azure.com",
            "dataLocation": resource.data_location,
            "immutableResourceId": str(uuid.uuid5(uuid.NAMESPACE_URL, resource.id.lower())),
            "version": "0.2.0",
            "linkedDomains": [],
            "publicNetworkAccess": "Enabled",
            "disableLocalAuth": False,
        },
    }


def _smtp_username_json(entry: SmtpUsername) -> dict[str, Any]:
    return {
        "id": entry.id,
        "name": entry.name,
        "type": f"{ACS_TYPE}/SmtpUsernames",
        "properties": {
            "username": entry.username,
            "entraApplicationId": entry.entra_app_id,
            "tenantId": entry.tenant_id,
        },
    }


def _role_definition_id(definition_id: str, subscription: str | None) -> str:
    """ARM names role definitions under the subscription it answers for."""
    name = definition_id.rstrip("/").rsplit("/", 1)[-1]
    prefix = f"/subscriptions/{subscription}" if subscription else ""
    return f"{prefix}{AUTHZ}/roleDefinitions/{name}"


def _role_assignment_json(assignment: RoleAssignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "name": assignment.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "scope": assignment.scope,
            "roleDefinitionId": _role_definition_id(
                assignment.role_definition_id, _subscription_of(assignment.scope)
            ),
            "principalId": assignment.principal_id,
            "principalType": assignment.principal_type,
            "condition": None,
            "conditionVersion": None,
            # Audit fields every listed assignment carries (azure-sdk-assets, java/sdk/
            # resourcemanager/azure-resourcemanager-authorization RoleAssignmentTests.
            # canCRUDRoleAssignment.json, @290e4820).
            "createdOn": SEEDED_AT,
            "updatedOn": SEEDED_AT,
            "createdBy": SEEDED_BY,
            "updatedBy": SEEDED_BY,
            "delegatedManagedIdentityResourceId": None,
            "description": None,
        },
    }


def _role_definition_json(role: RoleDefinition, subscription: str | None) -> dict[str, Any]:
    return {
        "id": _role_definition_id(role.id, subscription),
        "name": role.name,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.role_name,
            "type": role.role_type,
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": [],
                    "notDataActions": [],
                }
            ],
            # Audit fields as a recorded Contributor carries them, nobody named for a
            # built-in role (azure-sdk-assets, java/sdk/resourcemanager/azure-resourcemanager-
            # authorization RoleAssignmentTests.canCRUDRoleAssignment.json, @290e4820).
            "createdOn": SEEDED_AT,
            "updatedOn": SEEDED_AT,
            "createdBy": None if role.role_type == "BuiltInRole" else SEEDED_BY,
            "updatedBy": None if role.role_type == "BuiltInRole" else SEEDED_BY,
        },
    }
