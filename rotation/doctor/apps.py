"""doctor's checks of each managed app: the rotator's identity owns it, a role lets it send
through ACS, and its Key Vault names are readable, or absent and not soft-deleted.

The owner check uses ``GET /applications/{id}/owners``, which Application.ReadWrite.OwnedBy
may call (Graph's "List owners" permissions table), and compares it with the ``oid`` claim
of the rotator's own Graph token.
"""

from __future__ import annotations

from rotation.core.concurrency import bounded
from rotation.doctor.shared import Check, Probe
from rotation.errors import RotationError, SecretNameDeleted
from rotation.model import AppRecord, ManagedApp
from rotation.run.discovery import survey
from rotation.settings import USERNAME_SUFFIX

READ_WRITE_ALL = "Application.ReadWrite.All"


async def check_apps(probe: Probe) -> list[Check]:
    try:
        inventory = await survey(probe.settings, probe.arm, probe.entra)
        apps = inventory.apps
        records = await probe.entra.read_apps([a.app_id for a in apps])
    except RotationError as exc:  # the token and ACS checks above say what to fix
        return [Check("apps", "fail", f"could not list the managed apps: {exc}")]
    limit = probe.settings.max_concurrency
    per_app = await bounded(limit, [_check_app(probe, a, records.get(a.app_id)) for a in apps])
    skipped = (
        f"; {len(inventory.skipped)} sender(s) skipped, never rotated (managed identities, "
        "other tenants' apps; GET /api/status says why)"
        if inventory.skipped
        else ""
    )
    return [Check("apps", "ok", f"{len(apps)} managed app(s){skipped}")] + [
        c for checks in per_app for c in checks
    ]


async def _check_app(probe: Probe, app: ManagedApp, record: AppRecord | None) -> list[Check]:
    return [
        await _check_owner(probe, app, record),
        _check_sender_role(probe, app),
        await _check_vault_names(probe, app),
    ]


async def _check_owner(probe: Probe, app: ManagedApp, record: AppRecord | None) -> Check:
    name = f"owner {app.app_id}"
    if record is None:
        return Check(
            name,
            "fail",
            f"no application with app id {app.app_id} in tenant {probe.settings.tenant_id}",
            probe.site.set_setting(["ROTATION_EXCLUDE_APP_IDS"]),
        )
    if READ_WRITE_ALL in (probe.claims.get("roles") or []):
        return Check(name, "ok", f"{record.display_name}: Application.ReadWrite.All covers it")
    try:
        owners = await probe.entra.owner_ids(record)
    except RotationError as exc:
        return Check(name, "fail", str(exc))
    if probe.me.lower() in owners:
        return Check(name, "ok", f"{record.display_name}: the rotator's identity owns it")
    return Check(
        name,
        "fail",
        f"{record.display_name}: the rotator's identity is not an owner, so Graph refuses to "
        "add or remove its passwords",
        f"az ad app owner add --id {app.app_id} --owner-object-id {probe.me}",
    )


def _check_sender_role(probe: Probe, app: ManagedApp) -> Check:
    name = f"sender role {app.app_id}"
    if not app.acs_resource_ids:
        return Check(name, "warn", "allow-listed without an ACS resource: role not checked")
    principals = {p for p, a in probe.sp_app_ids.items() if a == app.app_id}
    found: list[tuple[str, list[str]]] = []
    missing: list[tuple[str, list[str]]] = []
    for resource_id in app.acs_resource_ids:
        holders = probe.holders.get(resource_id.lower(), {})
        roles = sorted({r for p in principals for r in holders.get(p, ())})
        (found if roles else missing).append((resource_id, roles))
    if not missing:
        text = "; ".join(f"{'/'.join(r)} on {i.rsplit('/', 1)[-1]}" for i, r in found)
        return Check(name, "ok", f"{text} allows CommunicationServices/Read, EmailServices/write")
    resource_id = missing[0][0]
    return Check(
        name,
        "fail",
        f"no role on {resource_id.rsplit('/', 1)[-1]} allows "
        "Microsoft.Communication/CommunicationServices/Read and .../EmailServices/write: "
        "ACS refuses this app's SMTP AUTH",
        f'az role assignment create --assignee {app.app_id} --role "Communication and Email '
        f'Service Owner" --scope {resource_id}',
    )


async def _check_vault_names(probe: Probe, app: ManagedApp) -> Check:
    """Each of the app's two secret names is readable, or absent and not soft-deleted
    (Key Vault refuses to write a name a deleted secret holds)."""
    name = f"vault {app.app_id}"
    found, unsure = [], []
    for secret in (app.secret_name, app.secret_name + USERNAME_SUFFIX):
        try:
            entry = await probe.vault.read(secret)
        except RotationError as exc:
            return Check(name, "fail", str(exc), vault_fix(probe))
        if entry.versions:
            found.append(f"{secret} {len(entry.versions)} version(s)")
            continue
        found.append(f"{secret} absent")
        try:
            deleted = await probe.vault.deleted(secret)
        except RotationError:  # may not read deleted secrets: the first write will tell
            unsure.append(secret)
            continue
        if deleted is not None:
            held = SecretNameDeleted(
                probe.settings.key_vault_url, secret, purge_on=deleted.purge_on
            )
            return Check(name, "fail", str(held), held.fix)
    if unsure:
        return Check(
            name,
            "warn",
            f"readable: {', '.join(found)}; whether {', '.join(unsure)} is soft-deleted is "
            "checked at first write (the identity may not read deleted secrets)",
            vault_fix(probe),
        )
    return Check(name, "ok", f"readable, none soft-deleted: {', '.join(found)}")


def vault_fix(probe: Probe) -> str:
    return (
        f'az role assignment create --assignee {probe.me} --role "Key Vault Secrets Officer" '
        f"--scope {probe.vault_scope}"
    )
