"""One-call seeding of the things every test needs: the rotator's identity and ACS senders.

An *ACS sender* is what the product exists for: an Entra app (+ service principal) whose
client secret is an SMTP password, allowed to send through an ACS resource by a role
assignment and reachable under one or more SMTP usernames. `add_sender` builds one the
way an operator would in the portal, so tests read as scenarios, not as plumbing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sandbox.state import (
    GRAPH_APPLICATION_READ_ALL,
    GRAPH_POLICY_READ_ALL,
    GRAPH_READ_WRITE_OWNED_BY,
    AcsResource,
    Application,
    PasswordCredential,
    RoleDefinition,
    SandboxState,
    ServicePrincipal,
)

Via = Literal["role", "smtp-username", "both"]
DEFAULT_SENDER_ADDRESS = "DoNotReply@sandbox.example"
DEFAULT_RESOURCE_GROUP = "rg-email"


@dataclass(frozen=True)
class Principal:
    """An app registration with its service principal and one client secret."""

    app: Application
    sp: ServicePrincipal
    password: PasswordCredential

    @property
    def client_id(self) -> str:
        return self.app.app_id

    @property
    def client_secret(self) -> str:
        return self.password.secret_text

    @property
    def principal_id(self) -> str:
        """The service principal's object id (what owners and role assignments name)."""
        return self.sp.object_id


@dataclass(frozen=True)
class Sender(Principal):
    """An ACS sender: a Principal allowed on `resource`, known under `usernames`."""

    resource: AcsResource
    usernames: tuple[str, ...]

    @property
    def app_id(self) -> str:
        return self.app.app_id

    @property
    def username(self) -> str:
        return self.usernames[0]


#: The Graph app roles `azd up` grants the rotator (infra/modules/graph-permission.bicep).
ROTATOR_GRAPH_ROLES = (GRAPH_READ_WRITE_OWNED_BY, GRAPH_POLICY_READ_ALL, GRAPH_APPLICATION_READ_ALL)


def add_rotator(
    state: SandboxState,
    tenant_id: str,
    subscription_id: str,
    graph_roles: Iterable[str] = ROTATOR_GRAPH_ROLES,
) -> Principal:
    """The product's own identity: the Graph app roles infra grants (Application.ReadWrite.
    OwnedBy; Policy.Read.All and Application.Read.All to read app-management policies), ARM
    Reader on the subscription (to list ACS resources, SMTP usernames and role assignments)."""
    app = state.add_application(tenant_id, "acs-smtp-rotator")
    sp = state.add_service_principal(app, set(graph_roles))
    password = state.add_password(app, timedelta(days=365), "rotator")
    state.assign_role(f"/subscriptions/{subscription_id}", sp, "Reader")
    return Principal(app, sp, password)


def add_acs_resource(
    state: SandboxState,
    subscription_id: str,
    name: str | None = None,
    *,
    resource_group: str = DEFAULT_RESOURCE_GROUP,
    senders: Iterable[str] = (DEFAULT_SENDER_ADDRESS,),
) -> AcsResource:
    """An ACS resource with the MAIL FROM addresses its connected domains allow."""
    name = name or f"acs-sandbox-{len(state.acs_resources) + 1}"
    return state.add_acs_resource(subscription_id, resource_group, name, set(senders))


def add_sender(
    state: SandboxState,
    resource: AcsResource,
    *,
    tenant_id: str,
    owner: ServicePrincipal | None,
    via: Via = "role",
    role: str | RoleDefinition | None = "Contributor",
    lifetime: timedelta = timedelta(days=180),
    name: str | None = None,
    senders: Iterable[str] = (),
) -> Sender:
    """Seeds an ACS sender in one call.

    - ``via="role"``: the username is ``<resource>.<appId>.<tenantId>``.
    - ``via="smtp-username"``: an ACS SMTP Username resource maps a custom username to the app.
    - ``via="both"``: both usernames (the custom one first).

    `role` is assigned at the resource's scope whatever `via` is (ACS needs it to send;
    pass None to seed a sender that will be refused). `owner` (normally the rotator's
    service principal) becomes an owner of the app. `senders` adds MAIL FROM addresses
    to the resource. The app's one client secret is already propagated and lasts
    `lifetime` from now.
    """
    index = len(state.applications) + 1
    display_name = name or f"acs-sender-{index}"
    app = state.add_application(tenant_id, display_name)
    sp = state.add_service_principal(app)
    if owner is not None:
        app.owners.add(owner.object_id)
    password = state.add_password(app, lifetime, "initial secret")
    resource.senders.update(senders)
    if role is not None:
        state.assign_role(resource.id, sp, role)
    usernames: list[str] = []
    if via in ("smtp-username", "both"):
        custom = f"{display_name}@{resource.name}.sandbox.example"
        state.add_smtp_username(resource, custom, app)
        usernames.append(custom)
    if via in ("role", "both"):
        usernames.append(f"{resource.name}.{app.app_id}.{tenant_id}")
    return Sender(app, sp, password, resource, tuple(usernames))


def add_managed_identity_holder(
    state: SandboxState,
    resource: AcsResource,
    *,
    tenant_id: str,
    role: str | RoleDefinition = "Contributor",
    name: str | None = None,
) -> ServicePrincipal:
    """A Function App's managed identity holding `role` on the ACS resource, as templates
    that let an app send through the ACS SDK often grant it. It has no client secret."""
    identity = state.add_managed_identity(tenant_id, name or "func-mailer")
    state.assign_role(resource.id, identity, role)
    return identity


def add_other_tenant_holder(
    state: SandboxState,
    resource: AcsResource,
    *,
    tenant_id: str,
    role: str | RoleDefinition = "Contributor",
    name: str | None = None,
) -> Principal:
    """A multi-tenant app registered in another tenant, whose service principal in
    `tenant_id` holds `role` on the ACS resource; its secrets live in its home tenant."""
    home = state.add_tenant()
    app = state.add_application(home, name or "partner-mailer")
    state.add_service_principal(app)  # in its home tenant
    sp = state.add_service_principal(app, tenant_id=tenant_id)
    password = state.add_password(app, timedelta(days=180), "partner secret")
    state.assign_role(resource.id, sp, role)
    return Principal(app, sp, password)
