"""The sandbox's world: one in-memory directory, subscription and vault.

Every HTTP route and the SMTP relay read and change this state; tests seed it
through the methods below. It is a stand-in for Entra ID, Microsoft Graph, ARM,
Key Vault and ACS, so it keeps the rules those services apply (who may do what,
when a secret starts to work) and nothing more.
"""

from __future__ import annotations

import fnmatch
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandbox import builtin_roles
from sandbox.app_policies import AppPolicy, tenant_default
from sandbox.clock import Clock
from sandbox.faults import FaultInjector
from sandbox.tokens import PUBLIC_RESOURCES
from sandbox.web_sites import WebSite

if TYPE_CHECKING:
    from sandbox.api_app import ProtectedApi, User

GRAPH_READ_WRITE_ALL = "Application.ReadWrite.All"
GRAPH_READ_WRITE_OWNED_BY = "Application.ReadWrite.OwnedBy"
GRAPH_POLICY_READ_ALL = "Policy.Read.All"
GRAPH_APPLICATION_READ_ALL = "Application.Read.All"
#: What ACS asks of an app that authenticates to SMTP, per the current quickstart ("How to
#: assign a role to an Entra application for SMTP authentication", azure-docs
#: articles/communication-services/quickstarts/email/send-email-smtp/smtp-authentication.md):
#: CommunicationServices/Read, CommunicationServices/Write and EmailServices/write. Older
#: docs listed two; the sandbox asks for all three, the stricter reading.
SMTP_REQUIRED_ACTIONS = (
    "Microsoft.Communication/CommunicationServices/Read",
    "Microsoft.Communication/CommunicationServices/Write",
    "Microsoft.Communication/EmailServices/write",
)
#: Graph's servicePrincipalType values (msgraph-sdk models/service_principal.py).
SP_APPLICATION, SP_MANAGED_IDENTITY = "Application", "ManagedIdentity"


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass
class PasswordCredential:
    key_id: str
    display_name: str | None
    secret_text: str
    start: datetime
    end: datetime
    created: datetime  # when Entra accepted it; it works only after the propagation delay

    @property
    def hint(self) -> str:
        return self.secret_text[:3]


@dataclass
class Application:
    object_id: str
    app_id: str
    display_name: str
    tenant_id: str
    owners: set[str] = field(default_factory=set)  # service principal object ids
    passwords: list[PasswordCredential] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))  # createdDateTime


@dataclass
class ServicePrincipal:
    object_id: str
    app_id: str
    display_name: str
    tenant_id: str  # the tenant it lives in
    graph_roles: set[str] = field(default_factory=set)  # app roles granted on Microsoft Graph
    kind: str = SP_APPLICATION  # servicePrincipalType
    # appOwnerOrganizationId: the tenant where the application is registered. Graph documents
    # it for application-backed principals only; a managed identity has no application.
    owner_tenant_id: str | None = None


@dataclass
class Group:
    """An Entra security group; a role assigned to it applies to its members."""

    object_id: str
    display_name: str
    members: set[str] = field(default_factory=set)  # service principal object ids


@dataclass
class AcsResource:
    subscription_id: str
    resource_group: str
    name: str
    location: str = "global"
    data_location: str = "Europe"
    senders: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Communication/communicationServices/{self.name}"
        )


@dataclass
class SmtpUsername:
    acs_resource_id: str
    name: str  # ARM child resource name
    username: str
    entra_app_id: str
    tenant_id: str

    @property
    def id(self) -> str:
        return f"{self.acs_resource_id}/smtpUsernames/{self.name}"


@dataclass
class RoleDefinition:
    name: str  # a GUID
    role_name: str
    actions: list[str]
    not_actions: list[str] = field(default_factory=list)
    role_type: str = "BuiltInRole"
    description: str = ""

    @property
    def id(self) -> str:
        return f"/providers/Microsoft.Authorization/roleDefinitions/{self.name}"

    def allows(self, action: str) -> bool:
        def hit(patterns: list[str]) -> bool:
            return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)

        return hit(self.actions) and not hit(self.not_actions)


@dataclass
class RoleAssignment:
    name: str
    scope: str
    principal_id: str
    principal_type: str
    role_definition_id: str

    @property
    def id(self) -> str:
        return f"{self.scope}/providers/Microsoft.Authorization/roleAssignments/{self.name}"


@dataclass
class SecretVersion:
    name: str
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str]
    enabled: bool
    expires: datetime | None
    not_before: datetime | None
    created: datetime
    updated: datetime


@dataclass
class DeletedSecret:
    """A soft-deleted Key Vault secret: its versions wait here until recovered or purged.

    Deleting takes a while on the service side (no SLA; it grows with the number of
    versions, Azure/azure-powershell#24094); until `ready` the name is neither readable as
    deleted nor writable (Azure/azure-cli#12722, Azure/azure-sdk-for-net#26027).
    """

    name: str
    versions: list[SecretVersion]
    deleted: datetime
    ready: datetime  # when the deletion has finished
    scheduled_purge: datetime


@dataclass
class IssuedToken:
    tenant_id: str
    client_id: str
    audience: str
    expires: datetime
    # The caller's Microsoft Graph app roles when the token was issued: Graph reads them
    # from the token (the `roles` claim), so a permission granted later shows only in a
    # new token. Azure caches a managed identity's tokens for around 24 hours (managed
    # identities FAQ, "Are managed identities tokens cached?"). None: not recorded.
    roles: frozenset[str] | None = None


@dataclass
class AcceptedMessage:
    username: str
    acs_resource_id: str
    mail_from: str
    recipients: list[str]
    data: bytes


@dataclass
class LoginResult:
    ok: bool
    reason: str
    acs_resource: AcsResource | None = None


BUILTIN_ROLES = {
    r.role_name: RoleDefinition(
        r.name, r.role_name, list(r.actions), list(r.not_actions), description=r.description
    )
    for r in builtin_roles.ALL
}


class SandboxState:
    """All sandbox data plus the rules the real services apply to it."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.propagation_delay = timedelta(seconds=0)
        # Tenant id -> its default app-management policy (sandbox/app_policies.py).
        self.tenants: dict[str, AppPolicy] = {}
        self.app_policies: dict[str, AppPolicy] = {}  # app-specific policies, by id
        self.applications: dict[str, Application] = {}  # by object id
        self.service_principals: dict[str, ServicePrincipal] = {}  # by object id
        self.groups: dict[str, Group] = {}  # by object id
        self.acs_resources: dict[str, AcsResource] = {}  # by lower-case ARM id
        self.smtp_usernames: list[SmtpUsername] = []
        self.role_definitions: dict[str, RoleDefinition] = {
            r.name: r for r in BUILTIN_ROLES.values()
        }
        self.role_assignments: list[RoleAssignment] = []
        # ARM pages role-assignment lists (nextLink); tests shrink this to see paging.
        self.arm_page_size = 50
        #: Items on each successive page of a Key Vault listing; past the end (and when
        #: empty), pages hold maxresults. See vault_api._window for the recording.
        self.vault_page_sizes: tuple[int, ...] = ()
        self.subscriptions: set[str] = set()
        self.vault: dict[str, list[SecretVersion]] = {}  # name (lower) -> versions, oldest first
        # The vault's name as App Service references report it (the first label of its host).
        self.vault_name = "sandbox-vault"
        self.web_sites: dict[str, WebSite] = {}  # App Service sites and slots, by lower-case id
        # Key Vault RBAC: client id (lower) -> secret operations it may do ("get", "list",
        # "set", "update"). A client not listed may do all (a Secrets Officer); list one
        # with fewer to get Key Vault's 403 ForbiddenByRbac.
        self.vault_permissions: dict[str, frozenset[str]] = {}
        # client id (lower) -> when its vault role starts to count (sandbox clock): a role
        # assigned just now, which ARM lists and Key Vault does not enforce yet.
        self.vault_permissions_effective: dict[str, datetime] = {}
        # Soft delete (always on in Key Vault): name (lower) -> the deleted secret.
        self.deleted_secrets: dict[str, DeletedSecret] = {}
        self.soft_delete_retention = timedelta(days=90)
        # The vault's ARM id, for ARM's permissions API at the vault's scope.
        self.vault_resource_id: str | None = None
        self.tokens: dict[str, IssuedToken] = {}
        # Service principals (object ids) without a Storage Blob Data role on the storage
        # account: Azure Storage answers them 403 (AuthorizationPermissionMismatch). Azurite
        # has no RBAC, so the sandbox's Entra gives them a token Azurite refuses, with 403
        # too (AuthenticationFailed): the same refusal, a different code the rotator never
        # reads.
        self.storage_refused: set[str] = set()
        # The rotator's own API and its callers (sandbox/api_app.py), by client id / object id.
        self.apis: dict[str, ProtectedApi] = {}
        self.users: dict[str, User] = {}
        # Entra's token signing keys: indexes into sandbox.tokens' key pool. Tokens are signed
        # with `signing_key`; the JWKS lists `published` (the current key and earlier ones).
        self.signing_key = 0
        self.published_keys: list[int] = [0]
        # Resources Entra issues tokens for (application ID URI, lower-case, no trailing
        # slash -> "graph", "arm" or "vault"); anything else is AADSTS500011.
        self.resources: dict[str, str] = {k.lower(): v for k, v in PUBLIC_RESOURCES.items()}
        self.messages: list[AcceptedMessage] = []
        self.faults = FaultInjector()
        # A service's response time ("graph" -> 0.05): no answer leaves sooner after its
        # request arrived, the sandbox's own work included, as a real service's latency
        # includes its own processing. Latency faults, by contrast, add their delay.
        self.response_times: dict[str, float] = {}
        self.requests: Counter[str] = Counter()  # "service METHOD route" -> count
        self.issued_secrets: list[str] = []  # every secret text ever issued, for leak scans

    # ----- seeding -------------------------------------------------------------------

    def add_tenant(
        self, tenant_id: str | None = None, max_secret_lifetime: timedelta | None = None
    ) -> str:
        tenant_id = tenant_id or new_guid()
        self.tenants[tenant_id] = tenant_default(max_secret_lifetime)
        return tenant_id

    def add_application(
        self, tenant_id: str, display_name: str, app_id: str | None = None
    ) -> Application:
        app = Application(
            new_guid(), app_id or new_guid(), display_name, tenant_id, created=self.clock.now()
        )
        self.applications[app.object_id] = app
        return app

    def assign_policy(self, app: Application, policy: AppPolicy) -> None:
        """Assigns an app-specific policy to the application (one at most, as in Graph)."""
        for other in self.app_policies.values():
            other.applies_to.discard(app.object_id)
        self.app_policies[policy.id] = policy
        policy.applies_to.add(app.object_id)

    def policy_of(self, app: Application) -> AppPolicy:
        """The policy that governs the application: its own, else its tenant's default."""
        own = next((p for p in self.app_policies.values() if app.object_id in p.applies_to), None)
        return own or self.tenants.get(app.tenant_id) or tenant_default()

    def add_service_principal(
        self, app: Application, graph_roles: set[str] | None = None, tenant_id: str | None = None
    ) -> ServicePrincipal:
        """The app's service principal in `tenant_id` (default: the app's own tenant; another
        tenant's id makes it a multi-tenant app's principal there)."""
        sp = ServicePrincipal(
            new_guid(),
            app.app_id,
            app.display_name,
            tenant_id or app.tenant_id,
            set(graph_roles or ()),
            owner_tenant_id=app.tenant_id,
        )
        self.service_principals[sp.object_id] = sp
        return sp

    def add_managed_identity(self, tenant_id: str, display_name: str) -> ServicePrincipal:
        """A managed identity: a service principal with no application object behind it."""
        sp = ServicePrincipal(
            new_guid(), new_guid(), display_name, tenant_id, kind=SP_MANAGED_IDENTITY
        )
        self.service_principals[sp.object_id] = sp
        return sp

    def add_user(self, tenant_id: str, user_principal_name: str, display_name: str) -> User:
        from sandbox.api_app import User

        user = User(new_guid(), user_principal_name, display_name, tenant_id)
        self.users[user.object_id] = user
        return user

    def rotate_signing_key(self) -> int:
        """Entra rolls its signing key over: the next key of the pool is published and signs
        from now on; earlier keys stay listed, as Entra keeps several in its key set."""
        self.signing_key = max(self.published_keys) + 1
        self.published_keys.append(self.signing_key)
        return self.signing_key

    def add_group(self, display_name: str, members: set[str] | None = None) -> Group:
        group = Group(new_guid(), display_name, set(members or ()))
        self.groups[group.object_id] = group
        return group

    def add_password(
        self,
        app: Application,
        lifetime: timedelta = timedelta(days=180),
        display_name: str | None = None,
        *,
        propagated: bool = True,
        start: datetime | None = None,
    ) -> PasswordCredential:
        """Adds a client secret as addPassword would (or as a person did earlier)."""
        now = self.clock.now()
        start = start or now
        created = start - self.propagation_delay if propagated else now
        cred = PasswordCredential(
            key_id=new_guid(),
            display_name=display_name,
            secret_text=_secret_text(),
            start=start,
            end=start + lifetime,
            created=created,
        )
        app.passwords.append(cred)
        self.issued_secrets.append(cred.secret_text)
        return cred

    def add_subscription(self, subscription_id: str | None = None) -> str:
        subscription_id = subscription_id or new_guid()
        self.subscriptions.add(subscription_id)
        return subscription_id

    def add_acs_resource(
        self, subscription_id: str, resource_group: str, name: str, senders: set[str] | None = None
    ) -> AcsResource:
        self.subscriptions.add(subscription_id)
        res = AcsResource(subscription_id, resource_group, name, senders=set(senders or ()))
        self.acs_resources[res.id.lower()] = res
        return res

    def add_smtp_username(
        self, resource: AcsResource, username: str, app: Application
    ) -> SmtpUsername:
        entry = SmtpUsername(
            resource.id,
            username.replace("@", "-").replace(".", "-"),
            username,
            app.app_id,
            app.tenant_id,
        )
        self.smtp_usernames.append(entry)
        return entry

    def add_web_site(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        app_settings: dict[str, str],
        *,
        slot: str | None = None,
        kind: str = "app",
        connection_strings: dict[str, str] | None = None,
    ) -> WebSite:
        """An App Service / Functions site (or a slot of one) with these app settings and
        connection strings; its Key Vault references resolve at once, as on a real app's
        start."""
        self.subscriptions.add(subscription_id)
        site = WebSite(
            subscription_id,
            resource_group,
            name,
            slot,
            kind,
            app_settings=app_settings,
            connection_strings=dict(connection_strings or {}),
        )
        self.web_sites[site.id.lower()] = site
        site.resolutions(self.vault, self.vault_name, self.clock.now())
        site.resolutions(self.vault, self.vault_name, self.clock.now(), connection_strings=True)
        return site

    def add_role_definition(
        self, role_name: str, actions: list[str], not_actions: list[str] | None = None
    ) -> RoleDefinition:
        role = RoleDefinition(new_guid(), role_name, actions, list(not_actions or ()), "CustomRole")
        self.role_definitions[role.name] = role
        return role

    def assign_role(
        self, scope: str, principal: ServicePrincipal | Group, role: RoleDefinition | str
    ) -> RoleAssignment:
        definition = BUILTIN_ROLES[role] if isinstance(role, str) else role
        kind = "Group" if isinstance(principal, Group) else "ServicePrincipal"
        assignment = RoleAssignment(new_guid(), scope, principal.object_id, kind, definition.id)
        self.role_assignments.append(assignment)
        return assignment

    def soft_delete_secret(
        self, name: str, *, finishing_in: timedelta = timedelta(0)
    ) -> DeletedSecret:
        """Deletes a Key Vault secret as `az keyvault secret delete` does: every version
        moves to the deleted state, recoverable for the retention period. A name that never
        held a value gets one version first (someone created and deleted it). The deletion
        finishes after `finishing_in` on the sandbox clock."""
        now = self.clock.now()
        versions = self.vault.pop(name.lower(), [])
        if not versions:
            versions = [
                SecretVersion(
                    name,
                    new_guid().replace("-", ""),
                    "deleted",
                    None,
                    {},
                    True,
                    None,
                    None,
                    now,
                    now,
                )
            ]
        deleted = DeletedSecret(
            versions[0].name, versions, now, now + finishing_in, now + self.soft_delete_retention
        )
        self.deleted_secrets[name.lower()] = deleted
        return deleted

    def recover_secret(self, name: str) -> list[SecretVersion]:
        """`az keyvault secret recover`: the versions come back under the same name."""
        deleted = self.deleted_secrets.pop(name.lower())
        self.vault[name.lower()] = deleted.versions
        return deleted.versions

    def add_resource(self, uri: str, service: str) -> None:
        """Makes `uri` a resource tokens may be issued for, served by `service`."""
        self.resources[uri.rstrip("/").lower()] = service

    # ----- look-ups ------------------------------------------------------------------

    def resource_service(self, uri: str) -> str | None:
        """ "graph", "arm" or "vault" for a known token audience; None for any other."""
        return self.resources.get(uri.rstrip("/").lower())

    def application_by_app_id(self, app_id: str) -> Application | None:
        return next(
            (a for a in self.applications.values() if a.app_id.lower() == app_id.lower()), None
        )

    def service_principal_by_app_id(self, app_id: str) -> ServicePrincipal | None:
        return next(
            (s for s in self.service_principals.values() if s.app_id.lower() == app_id.lower()),
            None,
        )

    def role_definition(self, role_definition_id: str) -> RoleDefinition | None:
        return self.role_definitions.get(role_definition_id.rstrip("/").rsplit("/", 1)[-1])

    def resource_by_name(self, name: str) -> AcsResource | None:
        return next(
            (r for r in self.acs_resources.values() if r.name.lower() == name.lower()), None
        )

    def assignments_covering(self, resource_id: str) -> list[RoleAssignment]:
        """Role assignments whose scope contains the resource (subscription, group or itself)."""
        target = resource_id.lower()
        return [
            a
            for a in self.role_assignments
            if target == a.scope.lower() or target.startswith(a.scope.lower() + "/")
        ]

    # ----- rules ---------------------------------------------------------------------

    def check_client_secret(
        self, tenant_id: str, client_id: str, secret: str
    ) -> tuple[Application | None, str]:
        """The token endpoint's check; returns the app or an AADSTS-style reason."""
        app = self.application_by_app_id(client_id)
        if app is None or app.tenant_id.lower() != tenant_id.lower():
            return (
                None,
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant_id}'.",
            )
        now = self.clock.now()
        for cred in app.passwords:
            if not secrets.compare_digest(cred.secret_text, secret):
                continue
            if cred.end <= now:
                return (
                    None,
                    f"AADSTS7000222: The provided client secret keys for app '{client_id}' are expired.",
                )
            if now < cred.created + self.propagation_delay:
                break  # not yet replicated: Entra answers exactly as for a wrong secret
            return app, ""
        return (
            None,
            f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
        )

    def smtp_login(self, username: str, password: str) -> LoginResult:
        """ACS's SMTP AUTH rule: a live secret of the app, and the app allowed on the resource."""
        resolved = self._resolve_username(username)
        if resolved is None:
            return LoginResult(False, "unknown username")
        resource, app_id, tenant_id = resolved
        app, reason = self.check_client_secret(tenant_id, app_id, password)
        if app is None:
            return LoginResult(False, reason)
        sp = self.service_principal_by_app_id(app_id)
        if sp is None or not self._may_send(sp, resource):
            return LoginResult(
                False,
                f"app {app_id} has no role with {' and '.join(SMTP_REQUIRED_ACTIONS)} on {resource.name}",
            )
        return LoginResult(True, "", resource)

    def _resolve_username(self, username: str) -> tuple[AcsResource, str, str] | None:
        for sep in (".", "|"):
            parts = username.rsplit(sep, 2)
            if len(parts) == 3 and _is_guid(parts[1]) and _is_guid(parts[2]):
                resource = self.resource_by_name(parts[0])
                return (resource, parts[1], parts[2]) if resource else None
        for entry in self.smtp_usernames:
            if entry.username.lower() == username.lower():
                resource = self.acs_resources.get(entry.acs_resource_id.lower())
                return (resource, entry.entra_app_id, entry.tenant_id) if resource else None
        return None

    def _may_send(self, sp: ServicePrincipal, resource: AcsResource) -> bool:
        """Azure RBAC: a role assigned to the principal, or to a group it is a member of."""
        for assignment in self.assignments_covering(resource.id):
            group = self.groups.get(assignment.principal_id)
            member = group is not None and sp.object_id in group.members
            if assignment.principal_id != sp.object_id and not member:
                continue
            role = self.role_definition(assignment.role_definition_id)
            if role and all(role.allows(a) for a in SMTP_REQUIRED_ACTIONS):
                return True
        return False

    def may_manage_application(
        self, caller: ServicePrincipal, app: Application, roles: frozenset[str] | None = None
    ) -> bool:
        """Graph's rule for writing an application; `roles` are the token's (default: the
        caller's current grants). Ownership is read from the directory at request time."""
        held = caller.graph_roles if roles is None else roles
        if GRAPH_READ_WRITE_ALL in held:
            return True
        return GRAPH_READ_WRITE_OWNED_BY in held and caller.object_id in app.owners

    # ----- inspection ----------------------------------------------------------------

    def live_secret(self, secret_name: str) -> SecretVersion | None:
        """The newest enabled version of a Key Vault secret (what a consumer reads)."""
        versions = self.vault.get(secret_name.lower(), [])
        return versions[-1] if versions and versions[-1].enabled else None

    def snapshot(self) -> dict[str, object]:
        """A JSON-able view without any secret value."""
        return {
            "now": self.clock.now().isoformat(),
            "propagationDelaySeconds": self.propagation_delay.total_seconds(),
            "applications": [
                {
                    "objectId": a.object_id,
                    "appId": a.app_id,
                    "displayName": a.display_name,
                    "owners": sorted(a.owners),
                    "passwords": [
                        {
                            "keyId": p.key_id,
                            "displayName": p.display_name,
                            "hint": p.hint,
                            "start": p.start.isoformat(),
                            "end": p.end.isoformat(),
                        }
                        for p in a.passwords
                    ],
                }
                for a in self.applications.values()
            ],
            "vault": {
                name: [
                    {"version": v.version, "enabled": v.enabled, "tags": v.tags} for v in versions
                ]
                for name, versions in self.vault.items()
            },
            "deletedSecrets": sorted(d.name for d in self.deleted_secrets.values()),
            "acsResources": [r.id for r in self.acs_resources.values()],
            "messages": len(self.messages),
            "requests": dict(self.requests),
        }


def _secret_text() -> str:
    # Shaped like an Entra client secret: 40 characters with a '~' in it.
    body = secrets.token_urlsafe(30)[:36]
    return f"{body[:3]}8Q~{body[3:]}"


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
