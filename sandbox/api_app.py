"""The rotator's own API as an Entra app registration: app roles, assignments, and the tokens
Entra issues for it, to users (what Azure CLI gets) and to workloads (client credentials).

Modelled on what infra/modules/api-app.bicep registers and on Entra's documented behaviour:

- The app has an application ID URI (``api://<tenant id>/<name>``, a form the identifier URI
  restrictions allow), three app roles, the delegated scope ``user_impersonation`` with Azure
  CLI pre-authorized for it (the way `az account get-access-token --resource` gets a token for
  a custom API without a consent prompt, Azure/azure-cli#29071), and asks for v2.0 tokens.
- Its service principal requires assignment (``appRoleAssignmentRequired``): Entra refuses a
  token to a principal holding none of its roles, directly or through a group (AADSTS50105:
  for users, microsoftgraph/microsoft-graph-explorer-v4#1333; for applications,
  Azure-Samples/active-directory-dotnet-daemon#10).
- ``roles`` lists the values of the roles the principal holds, directly or through its groups
  (access token claims reference: for user tokens, "the assigned roles of the user on the
  target application").
- A user's token carries ``scp``; a client that is neither pre-authorized nor consented gets
  AADSTS65001 (Azure/azure-cli#15056). The sandbox knows no consent, so only pre-authorized
  clients get user tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sandbox import tokens
from sandbox.state import Application, SandboxState, ServicePrincipal, new_guid

#: Azure CLI's client id (a first-party public client: Azure/azure-cli#22775,
#: azure-cli-core auth/identity.py).
AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ROLES = ("Rotation.Read", "Rotation.Rotate", "Rotation.Emergency")
SCOPE = "user_impersonation"
TOKEN_LIFETIME = timedelta(hours=1)


class TokenRefused(Exception):
    """Entra would not issue the token: `status`, OAuth `error` and the AADSTS text."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass
class User:
    object_id: str
    user_principal_name: str
    display_name: str
    tenant_id: str


@dataclass
class ProtectedApi:
    """The API's registration, its service principal and who holds which of its roles."""

    app: Application
    sp: ServicePrincipal
    identifier_uri: str
    role_ids: dict[str, str]  # role value -> app role id
    scope_id: str = field(default_factory=new_guid)
    pre_authorized: set[str] = field(default_factory=lambda: {AZURE_CLI_APP_ID})
    assignment_required: bool = True
    #: appRoleAssignedTo: (principal object id: a user, group or service principal, role id)
    assignments: list[tuple[str, str]] = field(default_factory=list)

    @property
    def client_id(self) -> str:
        return self.app.app_id

    def assign(self, principal_object_id: str, role: str) -> None:
        """Assigns `role` (a role the app no longer defines cannot be assigned: skipped)."""
        if role in self.role_ids:
            self.assignments.append((principal_object_id, self.role_ids[role]))

    def roles_of(self, state: SandboxState, principal_object_id: str) -> list[str]:
        """The role values `principal` holds, directly or through a group it is in."""
        via = {principal_object_id} | {
            g.object_id for g in state.groups.values() if principal_object_id in g.members
        }
        by_id = {role_id: value for value, role_id in self.role_ids.items()}
        return sorted({by_id[r] for p, r in self.assignments if p in via and r in by_id})


def add_protected_api(state: SandboxState, tenant_id: str, name: str) -> ProtectedApi:
    app = state.add_application(tenant_id, name)
    sp = state.add_service_principal(app)
    api = ProtectedApi(
        app,
        sp,
        identifier_uri=f"api://{tenant_id}/{name}",
        role_ids={role: new_guid() for role in ROLES},
    )
    state.apis[app.app_id] = api
    state.add_resource(api.identifier_uri, "api")
    state.add_resource(app.app_id, "api")
    return api


def api_for(state: SandboxState, resource: str) -> ProtectedApi | None:
    """The protected API a token request names (its application ID URI or client id)."""
    wanted = resource.rstrip("/").lower()
    return next(
        (
            a
            for a in state.apis.values()
            if wanted in (a.identifier_uri.lower(), a.client_id.lower())
        ),
        None,
    )


def issuer(base_url: str, tenant_id: str) -> str:
    return f"{base_url}/{tenant_id}/v2.0"


def app_token(
    state: SandboxState, api: ProtectedApi, client: ServicePrincipal, base_url: str
) -> str:
    """What the token endpoint issues a workload (client credentials) for the API."""
    roles = api.roles_of(state, client.object_id)
    if api.assignment_required and not roles:
        raise TokenRefused(
            400,
            "invalid_grant",
            f"AADSTS50105: Application '{client.app_id}'({client.display_name}) is not "
            f"assigned to a role for the application '{api.identifier_uri}'"
            f"({api.app.display_name}).",
        )
    return _signed(state, api, base_url, client.object_id, client.app_id, roles, None)


def user_token(
    state: SandboxState,
    api: ProtectedApi,
    user: User,
    base_url: str,
    client_id: str = AZURE_CLI_APP_ID,
) -> str:
    """What Entra issues `client_id` (Azure CLI by default) signing `user` in for the API's
    scope: what `az account get-access-token --resource <application ID URI>` prints."""
    if client_id.lower() not in {c.lower() for c in api.pre_authorized}:
        raise TokenRefused(
            400,
            "invalid_grant",
            f"AADSTS65001: The user or administrator has not consented to use the application "
            f"with ID '{client_id}'. Send an interactive authorization request for this user "
            "and resource.",
        )
    roles = api.roles_of(state, user.object_id)
    if api.assignment_required and not roles:
        raise TokenRefused(
            400,
            "invalid_grant",
            f"AADSTS50105: The signed in user '{user.user_principal_name}' is not assigned to "
            f"a role for the application '{api.client_id}'({api.app.display_name}).",
        )
    return _signed(
        state,
        api,
        base_url,
        user.object_id,
        client_id,
        roles,
        (user.user_principal_name, user.display_name),
    )


def _signed(
    state: SandboxState,
    api: ProtectedApi,
    base_url: str,
    object_id: str,
    client_id: str,
    roles: list[str],
    user: tuple[str, str] | None,
) -> str:
    payload = tokens.api_claims(
        issuer=issuer(base_url, api.app.tenant_id),
        audience=api.client_id,
        tenant_id=api.app.tenant_id,
        object_id=object_id,
        client_id=client_id,
        roles=roles,
        issued=datetime.now(UTC),
        lifetime=TOKEN_LIFETIME,
        user=user,
        scope=SCOPE if user is not None else None,
    )
    token = tokens.encode(payload, key=state.signing_key)
    state.issued_secrets.append(token)  # for leak scans: a bearer token is a credential
    return token
