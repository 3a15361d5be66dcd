"""doctor's checks of each managed app: Entra ID's answer about it is readable and the
rotator's identity owns it, a role lets it send through ACS, and its Key Vault names are
readable, or absent and not soft-deleted, with no hand-written version over the rotator's
(drift). An app `status` calls unreadable or drift is never ok here.

The apps are the ones discovery found (the gathered survey); nothing here scans again.
The owner check uses ``GET /applications/{id}/owners``, which Application.ReadWrite.OwnedBy
may call (Graph's "List owners" permissions table), and compares it with the ``oid`` claim
of the rotator's own token.
"""

from __future__ import annotations

from rotation.core.concurrency import bounded
from rotation.core.drift import blocked, drift
from rotation.core.policy import password_rule, within_policy
from rotation.doctor.checks import sending_roles
from rotation.doctor.shared import GRAPH, RBAC_DELAY, READ_WRITE_ALL, Check, Clients, Facts
from rotation.errors import PermissionDenied, RotationError, SecretNameDeleted, describe
from rotation.model import (
    USERNAME_SUFFIX,
    AppManagementPolicy,
    AppRecord,
    ManagedApp,
    PasswordPolicies,
    Rotate,
)
from rotation.permissions import SENDER_ACTIONS, VAULT_GET, VAULT_READ_METADATA, listed, short
from rotation.run.discovery import grants_smtp, lacks

#: Ownership is read from the directory when Graph is called, not from the token.
OWNER_DELAY = "an owner added now counts at the next call (no new token needed)"


async def apps(facts: Facts, clients: Clients) -> list[Check]:
    inventory = facts.survey.inventory
    managed = inventory.apps
    skipped = (
        f"; {len(inventory.skipped)} sender(s) skipped, never rotated (managed identities, "
        "other tenants' apps; GET /api/status says why)"
        if inventory.skipped
        else ""
    )
    records = facts.records
    if isinstance(records, RotationError):
        exc = records
        head = Check(
            "apps",
            "fail",
            f"{len(managed)} managed app(s){skipped}; could not read them from Entra ID: "
            f"{describe(exc)}",
            facts.grant_graph_fix(),
        )
        per_app = await bounded(
            facts.settings.max_concurrency, [_app_unread(facts, clients, a) for a in managed]
        )
        return [head] + [c for checks in per_app for c in checks]
    head = Check("apps", "ok", f"{len(managed)} managed app(s){skipped}")
    if facts.survey.unread:  # some senders may be missing: the acs checks say why
        head = Check("apps", "warn", f"{head.detail} found so far: discovery could not read all")
    per_app = await bounded(
        facts.settings.max_concurrency,
        [_app(facts, clients, a, records.get(a.app_id)) for a in managed],
    )
    return [head] + [c for checks in per_app for c in checks]


async def _app(
    facts: Facts, clients: Clients, app: ManagedApp, record: AppRecord | None
) -> list[Check]:
    return [
        await _owner(facts, clients, app, record),
        sender_role(facts, app),
        await _vault_names(facts, clients, app),
    ]


async def _app_unread(facts: Facts, clients: Clients, app: ManagedApp) -> list[Check]:
    """An app whose record Graph would not give: its ownership cannot be read either."""
    owner = Check(f"owner {app.app_id}", "warn", "not checked: the apps could not be read")
    return [owner, sender_role(facts, app), await _vault_names(facts, clients, app)]


async def _owner(
    facts: Facts, clients: Clients, app: ManagedApp, record: AppRecord | None
) -> Check:
    name = f"owner {app.app_id}"
    if record is None:
        return Check(
            name,
            "fail",
            f"no application with app id {app.app_id} in tenant {facts.settings.tenant_id}",
            facts.site.set_setting(["ROTATION_EXCLUDE_APP_IDS"]),
        )
    if record.problem is not None:  # status shows it unreadable
        return Check(
            name,
            "fail",
            f"what Entra ID answered about the app cannot be read ({record.problem}): every "
            "run fails it before any write, until Graph answers it readably",
            f"az ad app show --id {app.app_id}",
        )
    if facts.token(GRAPH).claims is None:
        return Check(name, "warn", "not checked: no Graph token (see token graph)")
    if READ_WRITE_ALL in facts.graph_roles:
        return Check(name, "ok", f"{record.display_name}: Application.ReadWrite.All covers it")
    try:
        owners = await clients.entra.owner_ids(record)
    except RotationError as exc:
        return Check(name, "fail", describe(exc), facts.grant_graph_fix())
    if facts.me.lower() in owners:
        return Check(name, "ok", f"{record.display_name}: the rotator's identity owns it")
    return Check(
        name,
        "fail",
        f"pending: {record.display_name} does not list the rotator's identity as an owner, "
        f"so Graph refuses to add or remove its passwords; {OWNER_DELAY}",
        f"az ad app owner add --id {app.app_id} --owner-object-id {facts.me}",
    )


def sender_role(facts: Facts, app: ManagedApp) -> Check:
    """A role on each of the app's ACS resources allows what ACS asks of an SMTP sender
    (`SENDER_ACTIONS`), as discovery read the roles."""
    name = f"sender role {app.app_id}"
    if not app.acs_resource_ids:
        return Check(name, "warn", "allow-listed without an ACS resource: role not checked")
    survey = facts.survey
    principals = {p for p, e in survey.principals.items() if e.app_id == app.app_id}
    found: list[str] = []
    for resource_id in app.acs_resource_ids:
        scan = survey.scan_of(resource_id)
        short_name = resource_id.rsplit("/", 1)[-1]
        if scan is None:
            return Check(name, "warn", f"not checked: {short_name} could not be read (see acs)")
        holders = sending_roles(survey, scan)
        roles = [r for p in principals for r in holders.get(p, ())]
        if not any(grants_smtp(r) for r in roles):
            held = "/".join(sorted({r.role_name for r in roles}))
            closest = min(roles, key=lambda r: len(lacks(r)), default=None)
            short_of = (
                f"{held} on {short_name} lacks {listed(lacks(closest))}"
                if closest is not None
                else f"no role on {short_name} lets it send mail"
            )
            return Check(
                name,
                "fail",
                f"{short_of}: ACS asks an SMTP sender's role for {listed()}, and refuses "
                "this app's SMTP AUTH without them",
                f'az role assignment create --assignee {app.app_id} --role "Communication and '
                f'Email Service Owner" --scope {resource_id}',
            )
        complete = sorted({r.role_name for r in roles if grants_smtp(r)})
        found.append(f"{'/'.join(complete)} on {short_name}")
    allowed = ", ".join(short(a) for a in SENDER_ACTIONS)
    return Check(name, "ok", f"{'; '.join(found)} allows {allowed}")


async def _vault_names(facts: Facts, clients: Clients, app: ManagedApp) -> Check:
    """Each of the app's two secret names is readable, or absent and not soft-deleted
    (Key Vault refuses to write a name a deleted secret holds)."""
    name = f"vault {app.app_id}"
    found, unsure = [], []
    for secret in (app.secret_name, app.secret_name + USERNAME_SUFFIX):
        try:
            entry = await clients.vault.read(secret)
        except PermissionDenied as exc:
            return Check(name, "fail", _refused(facts, exc), facts.vault_fix())
        except RotationError as exc:
            return Check(name, "fail", describe(exc), facts.vault_fix())
        hand_written = drift(entry) if secret == app.secret_name else None
        if hand_written is not None:  # status shows drift: every run leaves the app blocked
            why = blocked(hand_written)
            return Check(name, "fail", why.reason, why.fix.replace("<app id>", app.app_id))
        if entry.versions:
            found.append(f"{secret} {len(entry.versions)} version(s)")
            continue
        found.append(f"{secret} absent")
        try:
            deleted = await clients.vault.deleted(secret)
        except RotationError:  # may not read deleted secrets: the first write will tell
            unsure.append(secret)
            continue
        if deleted is not None:
            held = SecretNameDeleted(
                facts.settings.key_vault_url, secret, purge_on=deleted.purge_on
            )
            return Check(name, "fail", str(held), held.fix)
    if unsure:
        return Check(
            name,
            "warn",
            f"readable: {', '.join(found)}; whether {', '.join(unsure)} is soft-deleted is "
            "checked at first write (the identity may not read deleted secrets)",
            facts.vault_fix(),
        )
    return Check(name, "ok", f"readable, none soft-deleted: {', '.join(found)}")


def _refused(facts: Facts, exc: PermissionDenied) -> str:
    """Key Vault's 403, and whether ARM already shows the role (then it is pending)."""
    held = facts.vault_actions
    reads = (VAULT_GET, VAULT_READ_METADATA)
    if isinstance(held, frozenset) and all(a in held for a in reads):
        return (
            f"pending: {describe(exc)}; ARM already shows the identity's role on "
            f"{facts.vault_name}, so it was assigned and is not effective yet: {RBAC_DELAY}, "
            "run doctor again then"
        )
    return f"{describe(exc)}; {RBAC_DELAY} of its being made"


# ----- the tenant's app-management policies -------------------------------------------------


async def policies(facts: Facts, clients: Clients) -> list[Check]:
    """What the tenant's app-management policies let the rotator do to each managed app:
    the same decision a run makes (`policy.within_policy`), read the same way."""
    if facts.token(GRAPH).claims is None:
        return [Check("policies", "warn", "not checked: no Graph token (see token graph)")]
    try:
        found = await clients.entra.password_policies()
    except RotationError as exc:  # Graph failing: say so, the rotation does without them
        found = PasswordPolicies(unread=describe(exc))
    if found.default is None:
        return [
            Check(
                "policies",
                "warn",
                f"the tenant's app-management policies could not be read ({found.unread}): a "
                "cap on a password's lifetime, or a ban on passwords, shows only when Graph "
                "refuses a new one",
                facts.grant_graph_fix(),
            )
        ]
    records = facts.records if not isinstance(facts.records, RotationError) else {}
    rules = facts.settings.rules()
    lines: list[Check] = []
    capped: list[str] = []
    for app in facts.survey.inventory.apps:
        record = records.get(app.app_id)
        if record is None:
            continue
        plan = within_policy(
            Rotate(app, "", lifetime=rules.lifetime), password_rule(found, record), rules
        )
        if plan.blocked is not None:
            lines.append(
                Check(f"policy {app.app_id}", "fail", plan.blocked.reason, plan.blocked.fix)
            )
        elif plan.lifetime != rules.lifetime:
            capped.append(f"{app.app_id} ({plan.reason.removeprefix('; ')})")
    head = _policies_head(found.default, found, capped)
    if found.unread is not None:
        head = Check("policies", "warn", f"{head.detail}; {found.unread}", facts.grant_graph_fix())
    return [head, *lines]


def _policies_head(
    default: AppManagementPolicy, found: PasswordPolicies, capped: list[str]
) -> Check:
    state = "enabled" if default.enabled else "disabled"
    restricting = len({p.id for p in found.assigned.values()})
    detail = (
        f"tenant default policy {state}; {restricting} app-specific policy(ies) restrict "
        "passwords of apps here"
    )
    if capped:
        detail += "; new secrets capped: " + "; ".join(capped)
    return Check("policies", "ok", detail)
