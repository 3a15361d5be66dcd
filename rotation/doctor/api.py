"""doctor's look at the HTTP API's own app registration (infra/modules/api-app.bicep): that
it exists in the tenant, requires assignment, defines the three app roles, and that somebody
holds each. The timer never needs any of it; the API refuses every call without it.
"""

from __future__ import annotations

from rotation.auth import Role
from rotation.doctor.shared import Check, Clients, Facts, Site
from rotation.errors import RotationError, describe
from rotation.model import ApiRoles
from rotation.settings import Settings

#: What nobody can do over the API while nobody holds the role (the CLI still can).
WITHOUT = {
    Role.READ: "read status, run doctor or dry runs",
    Role.ROTATE: "start due or forced rotations",
    Role.EMERGENCY: "start emergency rotations",
}


def api_checks(
    settings: Settings, site: Site, found: ApiRoles | RotationError | None, me: str
) -> list[Check]:
    """`found`: what Graph said of the API's service principal (None: there is none; an
    error: it could not be read). `me`: the rotator's object id, for the fixes."""
    client_id = settings.api_client_id
    if client_id is None:
        return [
            Check(
                "api",
                "fail",
                "ROTATION_API_CLIENT_ID is not set: the HTTP API refuses every call but health",
                site.set_setting(["ROTATION_API_CLIENT_ID"]),
            )
        ]
    if isinstance(found, RotationError):
        return [
            Check(
                "api",
                "warn",
                f"the API's registration could not be read: {describe(found)}",
                f"az ad app owner add --id {client_id} --owner-object-id {me}   # lets the "
                "rotator's Application.ReadWrite.OwnedBy read it (or grant Application.Read.All)",
            )
        ]
    if found is None:
        return [
            Check(
                "api",
                "fail",
                f"the tenant has no service principal for the API's client id {client_id} "
                "(ROTATION_API_CLIENT_ID): nobody can get a token for the API",
                "azd provision   # registers it (infra/modules/api-app.bicep); or set "
                "ROTATION_API_CLIENT_ID to the client id of the API's app registration",
            )
        ]
    return [_registration(found), *(_role(settings, found, role) for role in Role)]


def _registration(api: ApiRoles) -> Check:
    missing = [r.value for r in Role if r.value not in api.role_ids]
    if missing:
        return Check(
            "api",
            "fail",
            f"{api.display_name} ({api.client_id}) defines no enabled app role "
            f"{', '.join(missing)}: no token can carry it",
            "azd provision   # restores the roles (infra/modules/api-app.bicep)",
        )
    if not api.assignment_required:
        return Check(
            "api",
            "warn",
            f"{api.display_name} ({api.client_id}) does not require assignment: Entra issues "
            "tokens for the API to anyone in the tenant (calls without a role still get 403)",
            f"az ad sp update --id {api.client_id} --set appRoleAssignmentRequired=true",
        )
    return Check(
        "api",
        "ok",
        f"{api.display_name} ({api.client_id}): assignment required, roles "
        f"{', '.join(r.value for r in Role)}",
    )


def _role(settings: Settings, api: ApiRoles, role: Role) -> Check:
    name = f"api role {role.value}"
    if role.value not in api.role_ids:
        return Check(name, "fail", "not defined (see api)")
    holders = api.holders.get(role.value, ())
    if holders:
        shown = ", ".join(holders[:10]) + (f" and {len(holders) - 10} more" if holders[10:] else "")
        return Check(name, "ok", f"held by {shown}")
    body = (
        '{"principalId": "<object id of a user, group or service principal>", '
        f'"resourceId": "{api.object_id}", "appRoleId": "{api.role_ids[role.value]}"}}'
    )
    return Check(
        name,
        "warn",
        f"nobody holds it: nobody can {WITHOUT[role]} over the API (the CLI still can)",
        f"az rest --method post --url {settings.graph_endpoint}/v1.0/servicePrincipals/"
        f"{api.object_id}/appRoleAssignedTo --body '{body}'",
    )


async def api(facts: Facts, clients: Clients) -> list[Check]:
    """Reads the API's service principal and role assignments (Graph), then judges them."""
    client_id = facts.settings.api_client_id
    found: ApiRoles | RotationError | None = None
    if client_id is not None:
        try:
            found = await clients.entra.api_roles(client_id)
        except RotationError as exc:
            found = exc
    return api_checks(facts.settings, facts.site, found, facts.me)
