"""Which Entra apps are ACS email senders, and by which SMTP usernames.

Three sources, merged so that each app appears once with every username it is known by:

- ``smtp-username``: ACS *SMTP Username* resources (a custom username bound to an app);
- ``role``: service principals holding, on an ACS resource, a role that lets them send
  mail (its actions cover ``Microsoft.Communication/EmailServices/write``: Contributor,
  Owner, Communication and Email Service Owner or a custom role); their username is
  ``<resource>.<appId>.<tenantId>``. ACS asks more of a sender's role
  (`rotation.permissions.SENDER_ACTIONS`, all three of its current docs' actions); a role
  short of them still makes its holders senders, so that such an app is rotated and fails
  verification loudly (with the hint naming every action) and `doctor` names what its role
  lacks, instead of the app silently going unrotated;
- ``allow-list``: ``ROTATION_APP_IDS`` entries, ``<appId>`` or ``<appId>=<username>``.

Decisions, and why:

- A role assigned *on the ACS resource itself* makes an app a sender. A role inherited from
  the subscription or resource group counts only when it is email-specific (its actions
  name the two ACS actions rather than a bare ``*``): Owner and Contributor at those
  scopes are held by admins and deployment pipelines, whose client secrets are not SMTP
  passwords and must not be rotated behind their owners' backs. Allow-listing such an app
  makes it a sender, with the usernames its inherited role gives it.
- The first username is the one the rotator proves each new secret with and publishes
  (tag and ``<name>-username`` secret). Order: an allow-list username (the operator said
  so), then SMTP Username resources (a name someone chose for consumers), then the
  ``<resource>.<appId>.<tenantId>`` forms; alphabetical within each, so it is stable.
- SMTP Username resources of apps in another tenant are skipped (the rotator can only
  manage its own tenant's apps); so are allow-listed apps without any known username.
  Both are logged as ``discovery.skipped`` with the fix.
- Role holders count only when their service principal is an ``Application`` registered
  in ``ROTATION_TENANT_ID`` (Graph's servicePrincipalType and appOwnerOrganizationId).
  Templates often give a Function App's managed identity a role on the ACS resource, and
  a multi-tenant app's service principal has no application object here: neither has a
  client secret this rotator could add, so both are skipped with the reason (shown in
  status, never failed, never alerting).
- Role assignments to groups are not followed (the members of a group can change without
  a trace in ARM). One that would let members send is logged as ``discovery.group_ignored``;
  apps that send through a group need the allow-list (``<appId>=<username>``).

The decisions are pure functions below, tested directly; :func:`discover` is the thin
I/O shell around them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rotation.core.concurrency import bounded
from rotation.core.ports import AcsReader, ServicePrincipalDirectory
from rotation.errors import MalformedAnswer, NotFound, RotationError, describe
from rotation.model import (
    AcsResource,
    ManagedApp,
    PrincipalEntry,
    RoleAssignmentEntry,
    RoleDefinitionEntry,
    SmtpUsernameEntry,
    UsernameSource,
)
from rotation.permissions import EMAIL_WRITE, SENDER_ACTIONS
from rotation.settings import Settings
from rotation.telemetry import logs, skipped_items
from rotation.telemetry.redaction import echo

log = logs.get_logger("rotation.discovery")

SOURCE_SMTP_USERNAME: UsernameSource = "smtp-username"
SOURCE_ROLE: UsernameSource = "role"
SOURCE_ALLOW_LIST: UsernameSource = "allow-list"
_SOURCE_ORDER = (SOURCE_SMTP_USERNAME, SOURCE_ROLE, SOURCE_ALLOW_LIST)

# Username ranks: lower comes first (see the module docstring).
RANK_ALLOW_LIST, RANK_SMTP_USERNAME, RANK_ROLE, RANK_INHERITED = 0, 1, 2, 3


#: Graph's servicePrincipalType of a service principal backed by an app registration.
APPLICATION = "Application"
GROUP_HINT = (
    "role assignments to groups are not followed: list each app that sends through this "
    "group in ROTATION_APP_IDS as <appId>=<smtp username>"
)


# ----- pure decisions ------------------------------------------------------------------------


def action_allowed(action: str, actions: Iterable[str], not_actions: Iterable[str]) -> bool:
    """Azure RBAC's rule: some action pattern matches and no notAction pattern does.

    Patterns are case-insensitive and ``*`` matches any run of characters, ``/`` included.
    """
    return _matches_any(action, actions) and not _matches_any(action, not_actions)


def grants_smtp(role: RoleDefinitionEntry) -> bool:
    """Whether a role gives an app everything ACS asks of an SMTP sender."""
    return not lacks(role)


def sends_mail(role: RoleDefinitionEntry) -> bool:
    """Whether a role is one for sending mail through ACS (it allows EmailServices/write);
    its holders are senders even when it lacks another action ACS asks for (`lacks`)."""
    return action_allowed(EMAIL_WRITE, role.actions, role.not_actions)


def lacks(role: RoleDefinitionEntry) -> tuple[str, ...]:
    """The actions ACS asks of an SMTP sender that `role` does not allow."""
    return tuple(a for a in SENDER_ACTIONS if not action_allowed(a, role.actions, role.not_actions))


def is_broad(role: RoleDefinitionEntry) -> bool:
    """A role that allows everything (``*``), such as Owner or Contributor."""
    return any(pattern.strip() == "*" for pattern in role.actions)


def definition_key(definition_id: str) -> str:
    """Role definitions compare by GUID: ARM names one role under many scopes."""
    return definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def dotted_username(resource_name: str, app_id: str, tenant_id: str) -> str:
    return f"{resource_name}.{app_id}.{tenant_id}"


@dataclass(frozen=True, slots=True)
class RoleHolder:
    """A service principal whose role on an ACS resource allows SMTP."""

    resource: AcsResource
    principal_id: str
    automatic: bool  # False: inherited broad role, a sender only if allow-listed


def role_holders(
    resource: AcsResource,
    assignments: Iterable[RoleAssignmentEntry],
    definitions: Mapping[str, RoleDefinitionEntry],
) -> list[RoleHolder]:
    """The service principals that may send through `resource`, each once.

    `definitions` is keyed by :func:`definition_key`; an assignment whose role is missing
    from it (deleted, unreadable) grants nothing.
    """
    # Thousands of assignments share a handful of roles: judge each role once (profiled:
    # matching every assignment's role again was a fifth of discovery at 10,000 apps).
    sending = {key: not is_broad(role) for key, role in definitions.items() if sends_mail(role)}
    found: dict[str, RoleHolder] = {}
    for assignment in assignments:
        if assignment.principal_type.lower() != "serviceprincipal":
            continue
        narrow = sending.get(definition_key(assignment.role_definition_id))
        if narrow is None:
            continue
        direct = _same_scope(assignment.scope, resource.id)
        holder = RoleHolder(resource, assignment.principal_id.lower(), direct or narrow)
        previous = found.get(holder.principal_id)
        if previous is None or (holder.automatic and not previous.automatic):
            found[holder.principal_id] = holder
    return sorted(found.values(), key=lambda h: h.principal_id)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One reason to believe an app sends mail, with the username it implies (if any)."""

    app_id: str
    source: UsernameSource
    rank: int
    username: str | None = None
    resource_id: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    app_id: str  # a service principal's object id when `by_principal` (its app id is unknown)
    reason: str
    by_principal: bool = False  # never an app id a named run may ask for (review finding 12)


@dataclass(frozen=True, slots=True)
class Inventory:
    apps: list[ManagedApp]
    skipped: list[Skipped] = field(default_factory=list)


def smtp_username_sightings(
    entries: Iterable[SmtpUsernameEntry], tenant_id: str
) -> tuple[list[Sighting], list[Skipped]]:
    sightings, skipped = [], []
    for entry in entries:
        app_id = entry.app_id.lower()
        if entry.tenant_id.lower() != tenant_id.lower():
            skipped.append(
                Skipped(
                    app_id,
                    f"SMTP username {echo(entry.username)} on {entry.resource_id} belongs to tenant "
                    f"{entry.tenant_id}; this rotator manages tenant {tenant_id} only",
                )
            )
            continue
        sightings.append(
            Sighting(
                app_id, SOURCE_SMTP_USERNAME, RANK_SMTP_USERNAME, entry.username, entry.resource_id
            )
        )
    return sightings, skipped


def role_sightings(
    holders: Iterable[RoleHolder], principals: Mapping[str, PrincipalEntry], tenant_id: str
) -> tuple[list[Sighting], list[Skipped]]:
    """Sightings from role holders that are app registrations of `tenant_id`; the other
    holders that Graph knows (managed identities, other tenants' apps) are skipped."""
    by_id = {k.lower(): v for k, v in principals.items()}
    sightings, skipped = [], []
    for holder in holders:
        principal = by_id.get(holder.principal_id)
        unknown = _unknown_principal(holder, principal)
        if unknown is not None or principal is None:
            # Never silently: a sender whose service principal Graph did not answer readably
            # is shown, keyed by its object id (its app id is what could not be read).
            if unknown is not None and holder.automatic:
                skipped.append(Skipped(holder.principal_id, unknown, by_principal=True))
            continue
        app_id = principal.app_id.lower()
        reason = not_ours(principal, tenant_id)
        if reason is not None:
            if holder.automatic:  # an inherited Owner/Contributor is no sender of ours either
                skipped.append(Skipped(app_id, f"{reason}; holds a role on {holder.resource.id}"))
            continue
        sightings.append(
            Sighting(
                app_id,
                SOURCE_ROLE,
                RANK_ROLE if holder.automatic else RANK_INHERITED,
                dotted_username(holder.resource.name, app_id, tenant_id.lower()),
                holder.resource.id,
            )
        )
    return sightings, skipped


def _unknown_principal(holder: RoleHolder, principal: PrincipalEntry | None) -> str | None:
    """Why a role holder's app cannot be known: Graph answered its service principal
    unreadably, or not at all (deleted since the assignment was made)."""
    where = f"holds a role on {holder.resource.id}"
    if principal is None:
        return (
            f"service principal {holder.principal_id} {where}, but Microsoft Graph does not "
            "return it (deleted since the role was assigned?): remove the role assignment, "
            "or list its app in ROTATION_APP_IDS"
        )
    if principal.problem is not None:
        return f"{principal.problem}; it {where}, so its app cannot be known or rotated"
    return None


def not_ours(principal: PrincipalEntry, tenant_id: str) -> str | None:
    """Why this rotator cannot rotate `principal`'s SMTP password, or None if it can.

    Only an app registration of our own tenant has client secrets we may add. An
    Application principal whose owner tenant Graph leaves out is kept: if it is not
    ours after all, reading its application fails loudly rather than being hidden.
    """
    if principal.kind.lower() == "managedidentity":
        return (
            f"managed identity (service principal {principal.object_id}): it signs in without "
            "a client secret, so there is nothing to rotate"
        )
    if principal.kind.lower() != APPLICATION.lower():
        return (
            f"service principal {principal.object_id} is of type {echo(principal.kind)}, not an "
            "app registration: it has no client secret to rotate"
        )
    owner = principal.owner_tenant_id
    if owner is not None and owner.lower() != tenant_id.lower():
        return (
            f"app of tenant {owner} (multi-tenant, service principal {principal.object_id} "
            f"here): its client secrets are managed in that tenant, not in {tenant_id}"
        )
    return None


def group_grants(
    resource: AcsResource,
    assignments: Iterable[RoleAssignmentEntry],
    definitions: Mapping[str, RoleDefinitionEntry],
) -> list[RoleAssignmentEntry]:
    """Assignments to groups whose role would let the group's members send via `resource`."""
    found = []
    for assignment in assignments:
        if assignment.principal_type.lower() != "group":
            continue
        role = definitions.get(definition_key(assignment.role_definition_id))
        direct = _same_scope(assignment.scope, resource.id)
        if role is not None and sends_mail(role) and (direct or not is_broad(role)):
            found.append(assignment)
    return found


def allow_list_sightings(entries: Iterable[str]) -> list[Sighting]:
    """``<appId>`` or ``<appId>=<username>`` (settings has already checked the GUID)."""
    sightings = []
    for entry in entries:
        app_id, _, username = entry.partition("=")
        sightings.append(
            Sighting(
                app_id.strip().lower(), SOURCE_ALLOW_LIST, RANK_ALLOW_LIST, username.strip() or None
            )
        )
    return sightings


def build_inventory(
    settings: Settings, sightings: Iterable[Sighting], skipped: Iterable[Skipped] = ()
) -> Inventory:
    """Merges sightings into one ManagedApp per app, minus the excluded ones. `skipped`
    (found elsewhere) is kept once per app, unless the app is managed after all."""
    excluded = {a.lower() for a in settings.exclude_app_ids}
    skipped_elsewhere = list(skipped)
    by_app: dict[str, list[Sighting]] = {}
    for sighting in sightings:
        if sighting.app_id not in excluded:
            by_app.setdefault(sighting.app_id, []).append(sighting)
    apps: list[ManagedApp] = []
    skipped = []
    for app_id in sorted(by_app):
        merged = _merge(settings, app_id, by_app[app_id])
        if isinstance(merged, ManagedApp):
            apps.append(merged)
        elif merged is not None:
            skipped.append(merged)
    managed = {a.app_id for a in apps}
    for skip in skipped_elsewhere:
        if skip.app_id not in managed and skip.app_id not in excluded:
            skipped.append(skip)
    return Inventory(apps, _once_per_app(skipped))


def _merge(settings: Settings, app_id: str, seen: list[Sighting]) -> ManagedApp | Skipped | None:
    """One app from its sightings: managed, skipped with the fix, or not a sender at all."""
    allow_listed = any(s.source == SOURCE_ALLOW_LIST for s in seen)
    # An inherited broad role alone does not make a sender (see the module docstring).
    kept = [s for s in seen if s.rank != RANK_INHERITED or allow_listed]
    if not kept:
        return None
    named = _ordered_usernames(kept)
    if not named:
        return Skipped(
            app_id,
            "allow-listed but no SMTP username is known for it: give one as "
            "<appId>=<username> in ROTATION_APP_IDS, or grant the app a role on an "
            "ACS resource in ROTATION_SUBSCRIPTION_IDS / ROTATION_ACS_RESOURCE_IDS",
        )
    sources = {s.source for s in kept}
    return ManagedApp(
        app_id=app_id,
        tenant_id=settings.tenant_id,
        secret_name=settings.secret_name(app_id),
        usernames=tuple(u for u, _ in named),
        acs_resource_ids=tuple(
            sorted({s.resource_id for s in kept if s.resource_id}, key=str.lower)
        ),
        sources=tuple(s for s in _SOURCE_ORDER if s in sources),
        username_sources=tuple(source for _, source in named),
    )


def _ordered_usernames(sightings: Iterable[Sighting]) -> tuple[tuple[str, UsernameSource], ...]:
    """(username, source) pairs, best first; a username two sources give keeps the first."""
    ordered = sorted(
        (s for s in sightings if s.username),
        key=lambda s: (s.rank, (s.username or "").lower()),
    )
    unique: dict[str, tuple[str, UsernameSource]] = {}
    for sighting in ordered:
        assert sighting.username is not None
        unique.setdefault(sighting.username.lower(), (sighting.username, sighting.source))
    return tuple(unique.values())


def _once_per_app(skipped: Iterable[Skipped]) -> list[Skipped]:
    first: dict[str, Skipped] = {}
    for skip in skipped:
        first.setdefault(skip.app_id, skip)
    return sorted(first.values(), key=lambda s: s.app_id)


def _matches_any(action: str, patterns: Iterable[str]) -> bool:
    return any(_pattern(p).fullmatch(action) for p in patterns)


def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.strip().split("*")), re.I)


def _same_scope(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


# ----- the I/O shell ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scan:
    """What one ACS resource holds: its SMTP Usernames and the role assignments on it."""

    resource: AcsResource
    usernames: tuple[SmtpUsernameEntry, ...]
    assignments: tuple[RoleAssignmentEntry, ...]


#: What an unread read was reading.
UnreadKind = Literal["acs resources", "acs resource", "role definitions", "service principals"]


@dataclass(frozen=True, slots=True)
class Unread:
    """A read discovery could not make, and why: `scope` names what it was reading (the
    scanned subscriptions, an ACS resource id, a role definition id)."""

    kind: UnreadKind
    scope: str
    error: RotationError


@dataclass(frozen=True, slots=True)
class Survey:
    """Everything discovery read and decided, and what it could not read.

    A run needs all of it (`survey` raises the first `unread`); `doctor` reports it as it
    is, each check a function of these findings rather than a second scan.
    """

    inventory: Inventory
    resources: tuple[AcsResource, ...] = ()
    scans: tuple[Scan, ...] = ()
    #: Role definitions of the assignments, by :func:`definition_key`.
    definitions: Mapping[str, RoleDefinitionEntry] = field(default_factory=dict)
    holders: tuple[RoleHolder, ...] = ()
    #: The holders' service principals, by object id (lower-case).
    principals: Mapping[str, PrincipalEntry] = field(default_factory=dict)
    unread: tuple[Unread, ...] = ()

    def scan_of(self, resource_id: str) -> Scan | None:
        return next((s for s in self.scans if _same_scope(s.resource.id, resource_id)), None)


async def survey(settings: Settings, arm: AcsReader, entra: ServicePrincipalDirectory) -> Inventory:
    """The managed apps, and the senders this rotator cannot manage with the reason. A read
    that failed fails the whole: a run must not rotate from a partial picture."""
    found = await explore(settings, arm, entra)
    if found.unread:
        raise found.unread[0].error
    return found.inventory


async def explore(settings: Settings, arm: AcsReader, entra: ServicePrincipalDirectory) -> Survey:
    """Reads everything discovery reads and keeps going past a read that fails (recorded in
    `unread`, in the order found), so that one missing permission hides nothing else."""
    sightings = allow_list_sightings(settings.app_ids)
    skipped: list[Skipped] = []
    unread: list[Unread] = []
    if not (settings.subscription_ids or settings.acs_resource_ids):
        return Survey(_inventory(settings, sightings, skipped))
    resources = await _resources(settings, arm, unread)
    limit = settings.max_concurrency  # discovery's ARM reads at once
    results = await bounded(limit, [_scan(arm, r) for r in resources])
    scans = tuple(r for r in results if isinstance(r, Scan))
    unread += [r for r in results if isinstance(r, Unread)]
    for scan in scans:
        found, skips = smtp_username_sightings(scan.usernames, settings.tenant_id)
        sightings += found
        skipped += skips
    definitions = await _definitions(arm, limit, scans, unread)
    holders = [
        h for scan in scans for h in role_holders(scan.resource, scan.assignments, definitions)
    ]
    principals = await _principals(entra, holders, unread)
    found, skips = role_sightings(holders, principals, settings.tenant_id)
    sightings += found
    skipped += skips
    _log_group_grants(scans, definitions)
    log.info("discovery.scanned", resources=len(resources), role_holders=len(holders))
    return Survey(
        _inventory(settings, sightings, skipped),
        tuple(resources),
        scans,
        definitions,
        tuple(holders),
        principals,
        tuple(unread),
    )


def _inventory(
    settings: Settings, sightings: Iterable[Sighting], skipped: Iterable[Skipped]
) -> Inventory:
    inventory = build_inventory(settings, sightings, skipped)
    for skip in inventory.skipped:
        log.warning("discovery.skipped", app_id=skip.app_id, reason=skip.reason)
    log.info("discovery.finished", apps=len(inventory.apps), skipped=len(inventory.skipped))
    return inventory


async def _resources(settings: Settings, arm: AcsReader, unread: list[Unread]) -> list[AcsResource]:
    try:
        return await arm.acs_resources(settings.subscription_ids, settings.acs_resource_ids)
    except RotationError as exc:
        scopes = [f"/subscriptions/{s}" for s in settings.subscription_ids]
        unread.append(
            Unread("acs resources", ", ".join(scopes + list(settings.acs_resource_ids)), exc)
        )
        return []


def _log_group_grants(
    scans: Sequence[Scan], definitions: Mapping[str, RoleDefinitionEntry]
) -> None:
    for scan in scans:
        for grant in group_grants(scan.resource, scan.assignments, definitions):
            log.warning(
                "discovery.group_ignored",
                group_id=grant.principal_id,
                resource_id=scan.resource.id,
                role=definitions[definition_key(grant.role_definition_id)].role_name,
                hint=GROUP_HINT,
            )


async def _scan(arm: AcsReader, resource: AcsResource) -> Scan | Unread:
    try:
        usernames, assignments = await asyncio.gather(
            arm.smtp_usernames(resource), arm.role_assignments(resource)
        )
    except RotationError as exc:
        return Unread("acs resource", resource.id, exc)
    return Scan(resource, tuple(usernames), tuple(assignments))


async def _definitions(
    arm: AcsReader, limit: int, scans: Sequence[Scan], unread: list[Unread]
) -> dict[str, RoleDefinitionEntry]:
    """The role definitions of assignments to service principals and groups, by GUID."""
    wanted = {
        definition_key(a.role_definition_id): a.role_definition_id
        for scan in scans
        for a in scan.assignments
        if a.principal_type.lower() in ("serviceprincipal", "group")
    }
    fetched = await bounded(limit, [_definition(arm, i) for i in wanted.values()])
    unread += [f for f in fetched if isinstance(f, Unread)][:1]  # one is enough to say why
    return {definition_key(d.id): d for d in fetched if isinstance(d, RoleDefinitionEntry)}


async def _definition(arm: AcsReader, definition_id: str) -> RoleDefinitionEntry | Unread | None:
    try:
        return await arm.role_definition(definition_id)
    except NotFound:
        log.warning("discovery.role_missing", role_definition_id=definition_id)
        return None
    except MalformedAnswer as exc:  # one unreadable role: its assignments grant nothing
        skipped_items.skip(
            "Azure Resource Manager", f"role definition {definition_id}", describe(exc)
        )
        return None
    except RotationError as exc:
        return Unread("role definitions", definition_id, exc)


async def _principals(
    entra: ServicePrincipalDirectory, holders: Sequence[RoleHolder], unread: list[Unread]
) -> dict[str, PrincipalEntry]:
    """The role holders' service principals; none when Graph would not say (recorded)."""
    if not holders:
        return {}
    wanted = sorted({h.principal_id for h in holders})
    try:
        return dict(await entra.service_principals(wanted))
    except RotationError as exc:
        unread.append(Unread("service principals", ", ".join(wanted), exc))
        return {}
