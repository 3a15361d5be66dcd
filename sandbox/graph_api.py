"""The sandbox's Microsoft Graph v1.0: the applications and service principals subset.

Routes (all under ``/v1.0``; route keys leave the prefix out, e.g.
``"graph POST /applications/{id}/addPassword"``):

- ``GET /applications`` with ``$filter`` (``appId``/``id``/``displayName`` ``eq '..'`` or
  ``in ('..', ..)``, at most 15 values as in Graph), ``$select``, ``$top`` (1..999, default
  100) and ``@odata.nextLink`` paging through ``$skiptoken``;
- ``GET /applications/{id}`` and ``GET /applications(appId='{appId}')``;
- ``POST .../addPassword`` and ``POST .../removePassword`` on both addresses;
- ``GET /servicePrincipals`` (same query options) and ``GET /servicePrincipals/{id}``.

- ``GET /policies/defaultAppManagementPolicy``, ``GET /policies/appManagementPolicies``
  (and one by id) and ``GET /policies/appManagementPolicies/{id}/appliesTo``: the tenant's
  app-management policies (sandbox/app_policies.py has the rules and their sources).

Permissions, as Graph applies them to app-only tokens: reading needs one of
Application.Read.All, Application.ReadWrite.All, Application.ReadWrite.OwnedBy or
Directory.Read(Write).All. OwnedBy reads *every* application of the tenant (Microsoft's
documented behaviour: the ownership limit applies to writes only). Writing needs
``SandboxState.may_manage_application``; otherwise 403 ``Authorization_RequestDenied``.
The policy that governs an application (its own, else the tenant default) refuses a
password it forbids with Graph's 400 ``CredentialTypeNotAllowedAsPerAppPolicy`` and one
that outlives its cap with 400 ``CredentialInvalidLifetimeAsPerAppPolicy``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from yarl import URL

from sandbox.app_policies import APPLICATION_READ, POLICY_READ, AppPolicy
from sandbox.http_common import BASE_URL, STATE, ApiError, counted_app, json_body, require_token
from sandbox.state import (
    GRAPH_READ_WRITE_ALL,
    GRAPH_READ_WRITE_OWNED_BY,
    Application,
    IssuedToken,
    PasswordCredential,
    SandboxState,
    ServicePrincipal,
)

#: Audiences a Graph token may carry besides the sandbox's own URL.
GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
READ_ROLES = frozenset(
    {
        "Application.Read.All",
        GRAPH_READ_WRITE_ALL,
        GRAPH_READ_WRITE_OWNED_BY,
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
MAX_IN_VALUES = 15
MAX_PAGE = 999
DEFAULT_PAGE = 100
DEFAULT_SECRET_LIFETIME = timedelta(days=730)  # Graph's default: startDateTime + 2 years
DENIED = "Insufficient privileges to complete the operation."

APP_PROPERTIES = (
    "id",
    "appId",
    "displayName",
    "signInAudience",
    "passwordCredentials",
    "keyCredentials",
    "createdDateTime",
)
SP_PROPERTIES = (
    "id",
    "appId",
    "displayName",
    "servicePrincipalType",
    "appOwnerOrganizationId",
    "accountEnabled",
    "appRoleAssignmentRequired",
    "appRoles",
)
#: An appRoleAssignment's properties (Graph v1.0 "appRoleAssignment resource type").
ASSIGNMENT_PROPERTIES = (
    "id",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
)
_FILTERABLE = {"id", "appid", "displayname"}


def build_app(state: SandboxState) -> web.Application:
    """The Graph service (the server sets BASE_URL once its port is known)."""
    app = counted_app("graph", state, key_prefix="/v1.0")
    r = app.router
    r.add_get("/v1.0/applications", list_applications)
    r.add_get("/v1.0/applications/{id}", get_application)
    r.add_get("/v1.0/applications(appId='{appId}')", get_application)
    for base in ("/v1.0/applications/{id}", "/v1.0/applications(appId='{appId}')"):
        r.add_post(f"{base}/addPassword", add_password)
        r.add_post(f"{base}/removePassword", remove_password)
    r.add_get("/v1.0/applications/{id}/owners", list_owners)
    r.add_get("/v1.0/applications(appId='{appId}')/owners", list_owners)
    r.add_get("/v1.0/servicePrincipals", list_service_principals)
    r.add_get("/v1.0/servicePrincipals/{id}", get_service_principal)
    r.add_get("/v1.0/policies/defaultAppManagementPolicy", default_policy)
    r.add_get("/v1.0/policies/appManagementPolicies", list_policies)
    r.add_get("/v1.0/policies/appManagementPolicies/{id}", get_policy)
    r.add_get("/v1.0/policies/appManagementPolicies/{id}/appliesTo", policy_applies_to)
    # The alternate key ("Get servicePrincipal": GET /servicePrincipals(appId='{appId}')) and
    # the resource's role assignments ("List appRoleAssignments granted for a service
    # principal": Application.Read.All, or Application.ReadWrite.OwnedBy and up).
    r.add_get("/v1.0/servicePrincipals(appId='{appId}')", get_service_principal)
    r.add_get("/v1.0/servicePrincipals/{id}/appRoleAssignedTo", list_app_role_assigned_to)
    return app


# ----- callers and permissions -----------------------------------------------------------


def _caller(request: web.Request) -> tuple[IssuedToken, ServicePrincipal]:
    token = require_token(request, (request.app[BASE_URL], *GRAPH_AUDIENCES))
    sp = request.app[STATE].service_principal_by_app_id(token.client_id)
    if sp is None:
        raise ApiError(403, "Authorization_RequestDenied", DENIED)
    return token, sp


def _reader(request: web.Request) -> tuple[IssuedToken, ServicePrincipal]:
    token, sp = _caller(request)
    roles = sp.graph_roles if token.roles is None else token.roles
    if not roles & READ_ROLES:
        raise ApiError(403, "Authorization_RequestDenied", DENIED)
    return token, sp


def _not_found(key: str) -> ApiError:
    return ApiError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def _application(request: web.Request, token: IssuedToken) -> Application:
    """The application addressed by id or appId, within the caller's tenant."""
    state = request.app[STATE]
    if "appId" in request.match_info:
        key = request.match_info["appId"]
        app = state.application_by_app_id(key)
    else:
        key = request.match_info["id"]
        app = next(
            (a for a in state.applications.values() if a.object_id.lower() == key.lower()), None
        )
    if app is None or app.tenant_id.lower() != token.tenant_id.lower():
        raise _not_found(key)
    return app


# ----- rendering ------------------------------------------------------------------------


def graph_time(moment: datetime) -> str:
    """Graph's timestamp format: UTC with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _password_json(cred: PasswordCredential, *, with_secret: bool = False) -> dict[str, Any]:
    return {
        "customKeyIdentifier": None,
        "displayName": cred.display_name,
        "endDateTime": graph_time(cred.end),
        "hint": cred.hint,
        "keyId": cred.key_id,
        "secretText": cred.secret_text if with_secret else None,
        "startDateTime": graph_time(cred.start),
    }


def _app_json(app: Application) -> dict[str, Any]:
    return {
        "id": app.object_id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "signInAudience": "AzureADMyOrg",
        "passwordCredentials": [_password_json(p) for p in app.passwords],
        "keyCredentials": [],
        "createdDateTime": graph_time(app.created),
    }


def _sp_json(sp: ServicePrincipal) -> dict[str, Any]:
    # servicePrincipalType: Application, ManagedIdentity, Legacy or SocialIdp;
    # appOwnerOrganizationId: the tenant the application is registered in, null for a
    # principal with no application behind it (msgraph-sdk models/service_principal.py).
    return {
        "id": sp.object_id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "servicePrincipalType": sp.kind,
        "appOwnerOrganizationId": sp.owner_tenant_id,
        "accountEnabled": True,
        "appRoleAssignmentRequired": False,
        "appRoles": [],
    }


def _with_api(state: SandboxState, sp: ServicePrincipal, body: dict[str, Any]) -> dict[str, Any]:
    """The API's roles and assignment rule on its own service principal (sandbox/api_app.py)."""
    api = state.apis.get(sp.app_id)
    if api is None or api.sp.object_id != sp.object_id:
        return body
    roles = [
        {
            "allowedMemberTypes": ["User", "Application"],
            "description": value,
            "displayName": value,
            "id": role_id,
            "isEnabled": True,
            "origin": "Application",
            "value": value,
        }
        for value, role_id in api.role_ids.items()
    ]
    return body | {"appRoleAssignmentRequired": api.assignment_required, "appRoles": roles}


def _select(request: web.Request, allowed: Sequence[str], type_name: str) -> list[str] | None:
    raw = request.query.get("$select")
    if not raw:
        return None
    chosen = [p.strip() for p in raw.split(",") if p.strip()]
    by_lower = {p.lower(): p for p in allowed}
    for prop in chosen:
        if prop.lower() not in by_lower:
            raise ApiError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{prop}' on type 'microsoft.graph.{type_name}'.",
            )
    return [by_lower[p.lower()] for p in chosen]


def _project(item: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    return item if select is None else {k: item[k] for k in select}


def _context(request: web.Request, entity_set: str, select: list[str] | None) -> str:
    suffix = f"({','.join(select)})" if select else ""
    return f"{request.app[BASE_URL]}/v1.0/$metadata#{entity_set}{suffix}"


# ----- $filter, $top, $skiptoken -----------------------------------------------------------

_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_IN = re.compile(r"^\s*(\w+)\s+in\s+\((.*)\)\s*$", re.IGNORECASE)
_QUOTED = re.compile(r"\s*'((?:[^']|'')*)'\s*(?:,|$)")


def parse_filter(raw: str, resource: str) -> tuple[str, set[str]] | None:
    """``prop eq 'v'`` or ``prop in ('a', 'b')`` -> (lower-case prop, lower-case values)."""
    if not raw.strip():
        return None
    match = _EQ.match(raw)
    if match:
        prop, values = match.group(1), [match.group(2)]
    else:
        match = _IN.match(raw)
        if match is None:
            raise ApiError(400, "BadRequest", f"Invalid filter clause: {raw}")
        prop, body = match.group(1), match.group(2)
        values = [m.group(1) for m in _QUOTED.finditer(body)]
        if not values or _QUOTED.sub("", body).strip():
            raise ApiError(400, "BadRequest", f"Invalid filter clause: {raw}")
        if len(values) > MAX_IN_VALUES:
            raise ApiError(
                400,
                "Request_UnsupportedQuery",
                "Too many child clauses specified in search filter expression containing 'OR' "
                f"operators: {len(values)}. Max allowed: {MAX_IN_VALUES}.",
            )
    if prop.lower() not in _FILTERABLE:
        raise ApiError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported or invalid query filter clause specified for property '{prop}' of "
            f"resource '{resource}'.",
        )
    return prop.lower(), {v.replace("''", "'").lower() for v in values}


def _page_size(request: web.Request) -> int:
    raw = request.query.get("$top", str(DEFAULT_PAGE))
    try:
        top = int(raw)
    except ValueError:
        top = 0
    if not 1 <= top <= MAX_PAGE:
        raise ApiError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.",
        )
    return top


def _offset(request: web.Request) -> int:
    raw = request.query.get("$skiptoken")
    if raw is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(raw.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "Request_BadRequest", "Invalid paging token.") from None
    if not isinstance(offset, int) or offset < 0:
        raise ApiError(400, "Request_BadRequest", "Invalid paging token.")
    return offset


def _skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _paged(
    request: web.Request,
    items: list[Any],
    render: Callable[[Any], dict[str, Any]],
    entity_set: str,
    select: list[str] | None,
) -> web.Response:
    """One page of `items` (rendered only for this page) with its @odata.nextLink."""
    top, offset = _page_size(request), _offset(request)
    page = items[offset : offset + top]
    body: dict[str, Any] = {
        "@odata.context": _context(request, entity_set, select),
        "value": [_project(render(i), select) for i in page],
    }
    if offset + top < len(items):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = _skiptoken(offset + top)
        url = URL(request.app[BASE_URL] + request.path).with_query(query)
        body["@odata.nextLink"] = str(url)
    return web.json_response(body)


def _matching(
    objects: Iterable[Any],
    clause: tuple[str, set[str]] | None,
    fields: dict[str, Callable[[Any], str]],
) -> list[Any]:
    if clause is None:
        return list(objects)
    prop, values = clause
    get = fields[prop]
    return [o for o in objects if get(o).lower() in values]


_APP_FIELDS: dict[str, Callable[[Any], str]] = {
    "id": lambda a: a.object_id,
    "appid": lambda a: a.app_id,
    "displayname": lambda a: a.display_name,
}


# ----- applications ----------------------------------------------------------------------


async def list_applications(request: web.Request) -> web.Response:
    token, _ = _reader(request)
    state = request.app[STATE]
    select = _select(request, APP_PROPERTIES, "application")
    clause = parse_filter(request.query.get("$filter", ""), "application")
    tenant_apps = (
        a for a in state.applications.values() if a.tenant_id.lower() == token.tenant_id.lower()
    )
    apps = _matching(tenant_apps, clause, _APP_FIELDS)
    return _paged(request, apps, _app_json, "applications", select)


async def get_application(request: web.Request) -> web.Response:
    token, _ = _reader(request)
    select = _select(request, APP_PROPERTIES, "application")
    app = _application(request, token)
    body = {"@odata.context": _context(request, "applications/$entity", select)}
    return web.json_response(body | _project(_app_json(app), select))


async def list_owners(request: web.Request) -> web.Response:
    """An application's owners as directoryObjects ("List owners": Application.Read.All or
    Application.ReadWrite.OwnedBy and up may call it). Owners here are service principals;
    each item carries ``@odata.type`` whatever ``$select`` says, as Graph's do."""
    token, _ = _reader(request)
    state = request.app[STATE]
    app = _application(request, token)
    select = _select(request, SP_PROPERTIES, "directoryObject")
    owners = [
        state.service_principals[o] for o in sorted(app.owners) if o in state.service_principals
    ]

    def render(sp: ServicePrincipal) -> dict[str, Any]:
        return {"@odata.type": "#microsoft.graph.servicePrincipal"} | _project(_sp_json(sp), select)

    return _paged(request, owners, render, "directoryObjects", None)


def _writable(request: web.Request) -> tuple[SandboxState, Application]:
    token, sp = _caller(request)
    app = _application(request, token)
    state = request.app[STATE]
    if not state.may_manage_application(sp, app, token.roles):
        raise ApiError(403, "Authorization_RequestDenied", DENIED)
    return state, app


def _parse_time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "Request_BadRequest", f"Invalid value specified for property '{name}'."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def add_password(request: web.Request) -> web.Response:
    """Creates a client secret; it starts to work only after the propagation delay."""
    state, app = _writable(request)
    body = await json_body(request)
    spec = body.get("passwordCredential") or {}
    if not isinstance(spec, dict):
        raise ApiError(400, "Request_BadRequest", "Invalid passwordCredential.")
    now = state.clock.now()
    start = _parse_time(spec.get("startDateTime"), "startDateTime") or now
    end = _parse_time(spec.get("endDateTime"), "endDateTime") or start + DEFAULT_SECRET_LIFETIME
    if end <= start:
        raise ApiError(
            400,
            "Request_BadRequest",
            "Key credential end date time must be greater than start date time.",
        )
    refusal = state.policy_of(app).refusal(app.created, end - start)
    if refusal is not None:
        code, message = refusal
        target = "EndDate" if code == "CredentialInvalidLifetimeAsPerAppPolicy" else "Type"
        raise ApiError(
            400,
            code,
            message,
            extra={"details": [{"code": code, "message": message, "target": target}]},
        )
    display_name = spec.get("displayName")
    cred = state.add_password(
        app,
        lifetime=end - start,
        display_name=str(display_name) if display_name is not None else None,
        propagated=False,
        start=start,
    )
    context = {
        "@odata.context": f"{request.app[BASE_URL]}/v1.0/$metadata#microsoft.graph.passwordCredential"
    }
    return web.json_response(context | _password_json(cred, with_secret=True))


async def remove_password(request: web.Request) -> web.Response:
    """Removes a client secret at once (ACS stops accepting it immediately)."""
    _, app = _writable(request)
    body = await json_body(request)
    key_id = str(body.get("keyId") or "")
    for cred in app.passwords:
        if cred.key_id.lower() == key_id.lower():
            app.passwords.remove(cred)
            return web.Response(status=204)
    # Graph documents only the 204 (learn.microsoft.com/graph/api/application-removepassword);
    # for an unknown keyId it uses its documented error shape (learn.microsoft.com/graph/errors)
    # with the directory's Request_BadRequest, the code the directory gives keyId problems
    # on credentials (a body quoted in Azure/active-directory-dotnet-graphapi-b2bportal-web
    # issue #8). Nothing documents the wording, so the rotator never reads it: it re-reads
    # the application instead.
    raise ApiError(
        400,
        "Request_BadRequest",
        f"Invalid value specified for property 'keyId' of resource 'Application': {key_id}.",
    )


# ----- app-management policies ------------------------------------------------------------


def _policy_reader(request: web.Request, *, applies_to: bool = False) -> IssuedToken:
    """Policy.Read.All (or higher); for appliesTo, Application.Read.All too."""
    token, sp = _caller(request)
    roles = sp.graph_roles if token.roles is None else token.roles
    if not roles & POLICY_READ or (applies_to and not roles & APPLICATION_READ):
        raise ApiError(403, "Authorization_RequestDenied", DENIED)
    return token


async def default_policy(request: web.Request) -> web.Response:
    token = _policy_reader(request)
    policy = request.app[STATE].tenants[token.tenant_id]
    context = f"{request.app[BASE_URL]}/v1.0/$metadata#policies/defaultAppManagementPolicy/$entity"
    return web.json_response({"@odata.context": context} | policy.to_json())


async def list_policies(request: web.Request) -> web.Response:
    _policy_reader(request)
    policies = list(request.app[STATE].app_policies.values())
    return _paged(request, policies, AppPolicy.to_json, "policies/appManagementPolicies", None)


def _app_policy(request: web.Request) -> AppPolicy:
    key = request.match_info["id"]
    policy = request.app[STATE].app_policies.get(key)
    if policy is None:
        raise _not_found(key)
    return policy


async def get_policy(request: web.Request) -> web.Response:
    _policy_reader(request)
    return web.json_response(_app_policy(request).to_json())


async def policy_applies_to(request: web.Request) -> web.Response:
    """The applications (directoryObjects) a policy is assigned to."""
    _policy_reader(request, applies_to=True)
    state = request.app[STATE]
    policy = _app_policy(request)
    apps = [state.applications[o] for o in sorted(policy.applies_to) if o in state.applications]

    select = _select(request, APP_PROPERTIES, "directoryObject")

    def render(app: Application) -> dict[str, Any]:
        # Each item names its type, whatever $select says (as the owners listing does).
        return {"@odata.type": "#microsoft.graph.application"} | _project(_app_json(app), select)

    return _paged(request, apps, render, "directoryObjects", None)


# ----- service principals ------------------------------------------------------------------


async def list_service_principals(request: web.Request) -> web.Response:
    token, _ = _reader(request)
    state = request.app[STATE]
    select = _select(request, SP_PROPERTIES, "servicePrincipal")
    clause = parse_filter(request.query.get("$filter", ""), "servicePrincipal")
    tenant_sps = (
        s
        for s in state.service_principals.values()
        if s.tenant_id.lower() == token.tenant_id.lower()
    )
    sps = _matching(tenant_sps, clause, _APP_FIELDS)

    def render(sp: ServicePrincipal) -> dict[str, Any]:
        return _with_api(state, sp, _sp_json(sp))

    return _paged(request, sps, render, "servicePrincipals", select)


async def get_service_principal(request: web.Request) -> web.Response:
    token, _ = _reader(request)
    state = request.app[STATE]
    select = _select(request, SP_PROPERTIES, "servicePrincipal")
    sp = _service_principal(request, token)
    body = {"@odata.context": _context(request, "servicePrincipals/$entity", select)}
    return web.json_response(body | _project(_with_api(state, sp, _sp_json(sp)), select))


def _service_principal(request: web.Request, token: IssuedToken) -> ServicePrincipal:
    """The service principal the path names, by object id or by appId; 404 otherwise."""
    state = request.app[STATE]
    if "appId" in request.match_info:
        key = request.match_info["appId"]
        sp = state.service_principal_by_app_id(key)
    else:
        key = request.match_info["id"]
        sp = next(
            (s for s in state.service_principals.values() if s.object_id.lower() == key.lower()),
            None,
        )
    if sp is None or sp.tenant_id.lower() != token.tenant_id.lower():
        raise _not_found(key)
    return sp


async def list_app_role_assigned_to(request: web.Request) -> web.Response:
    """Who holds the app roles of a resource service principal: users, groups and service
    principals, each with its display name and type."""
    token, _ = _reader(request)
    state = request.app[STATE]
    sp = _service_principal(request, token)
    select = _select(request, ASSIGNMENT_PROPERTIES, "appRoleAssignment")
    api = state.apis.get(sp.app_id)
    assignments = api.assignments if api is not None and api.sp is sp else []

    def render(assignment: tuple[str, str]) -> dict[str, Any]:
        principal, role_id = assignment
        name, kind = _principal_name(state, principal)
        return {
            "id": f"{principal}-{role_id}",
            "appRoleId": role_id,
            "createdDateTime": "2026-01-01T00:00:00Z",
            "principalDisplayName": name,
            "principalId": principal,
            "principalType": kind,
            "resourceDisplayName": sp.display_name,
            "resourceId": sp.object_id,
        }

    return _paged(
        request, assignments, render, "servicePrincipals('{id}')/appRoleAssignedTo", select
    )


def _principal_name(state: SandboxState, object_id: str) -> tuple[str, str]:
    if object_id in state.users:
        return state.users[object_id].display_name, "User"
    if object_id in state.groups:
        return state.groups[object_id].display_name, "Group"
    sp = state.service_principals.get(object_id)
    return (sp.display_name if sp else object_id), "ServicePrincipal"
