"""The checks `doctor` runs, each a small function that reads and never writes.

Order matters only for what later checks learn from earlier ones: the Graph token's claims
give the rotator's object id (``oid``, named in every fix command) and its app roles
(``roles``); the ACS scan gives the role holders the per-app checks look up.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from rotation.doctor.apps import READ_WRITE_ALL, check_apps, vault_fix
from rotation.doctor.shared import Check, Probe
from rotation.errors import RotationError, VerificationFailed
from rotation.model import AcsResource
from rotation.run.discovery import action_allowed, definition_key, grants_smtp
from rotation.telemetry import redaction

OWNED_BY = "Application.ReadWrite.OwnedBy"
VAULT_WRITES = (
    "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "Microsoft.KeyVault/vaults/secrets/update/action",
)
SLOW_GRANTS = (
    "a new grant can take hours to reach a managed identity's tokens (Azure managed "
    "identity FAQ); run doctor again later"
)


# ----- identity and tokens -------------------------------------------------------------------


def vault_audience(vault_url: str) -> str:
    """Key Vault's token resource: its host minus the vault's own label (vault.azure.net)."""
    parts = urlsplit(vault_url)
    host = parts.hostname or ""
    domain = host.partition(".")[2] or host
    port = f":{parts.port}" if parts.port and parts.port != 443 else ""
    return f"https://{domain}{port}"


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: the rotator reads its own token's claims only."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return decoded if isinstance(decoded, dict) else {}


async def check_token(probe: Probe, name: str, resource: str, setting: str) -> Check:
    try:
        token = await probe.credential.get_token(f"{resource}/.default")
    except Exception as exc:  # any credential failure is this check's finding
        return Check(
            f"token {name}",
            "fail",
            f"no token for {resource}: {_token_reason(exc)}",
            f"az functionapp identity assign -g {probe.site.resource_group} "
            f"-n {probe.site.function_app}   # and check {setting}",
        )
    claims = token_claims(token.token)
    if name == "graph":
        probe.claims = claims
    tenant = claims.get("tid", "?")
    return Check(f"token {name}", "ok", f"token for {resource} (tenant {tenant})")


def _token_reason(exc: Exception) -> str:
    """Entra's own words (the AADSTS line) when the credential chain passed them on; else
    the first line. DefaultAzureCredential puts its summary first and the cause below."""
    text = redaction.scrub(str(exc))
    found = re.search(r"AADSTS\d+:[^\r\n]*", text)
    lines = text.strip().splitlines()
    reason = found.group(0) if found else (lines[0] if lines else type(exc).__name__)
    return f"{type(exc).__name__}: {reason[:300]}"


def check_graph_roles(probe: Probe) -> Check:
    roles = sorted(probe.claims.get("roles") or [])
    if OWNED_BY in roles or READ_WRITE_ALL in roles:
        return Check("graph roles", "ok", f"the Graph token carries {', '.join(roles)}")
    return Check(
        "graph roles",
        "fail",
        f"the Graph token carries {roles or 'no app roles'}, not {OWNED_BY}; {SLOW_GRANTS}",
        f"infra/scripts/grant-graph-permission.sh --principal-id {probe.me}",
    )


# ----- ACS resources and their senders -------------------------------------------------------


async def check_acs(probe: Probe) -> list[Check]:
    settings, arm = probe.settings, probe.arm
    try:
        resources = await arm.acs_resources(settings.subscription_ids, settings.acs_resource_ids)
    except RotationError as exc:
        scopes = [f"/subscriptions/{i}" for i in settings.subscription_ids]
        scope = (scopes or settings.acs_resource_ids or ["/subscriptions/<subscription id>"])[0]
        return [Check("acs", "fail", str(exc), _reader_fix(probe, scope))]
    if not resources and (settings.subscription_ids or settings.acs_resource_ids):
        return [Check("acs", "warn", "no ACS resource found where the rotator looks")]
    checks = [await _check_resource(probe, r) for r in resources]
    principals = {p for h in probe.holders.values() for p in h}
    if principals:
        probe.sp_app_ids = await probe.entra.service_principal_app_ids(sorted(principals))
    return [_describe_holders(probe, r, c) for r, c in zip(resources, checks, strict=True)]


async def _check_resource(probe: Probe, resource: AcsResource) -> Check:
    arm = probe.arm
    try:
        usernames = await arm.smtp_usernames(resource)
        assignments = await arm.role_assignments(resource)
        ids = {definition_key(a.role_definition_id): a.role_definition_id for a in assignments}
        roles = {key: await arm.role_definition(full) for key, full in ids.items()}
    except RotationError as exc:
        return Check(f"acs {resource.name}", "fail", str(exc), _reader_fix(probe, resource.id))
    holders: dict[str, set[str]] = {}
    for assignment in assignments:
        role = roles.get(definition_key(assignment.role_definition_id))
        if role is not None and grants_smtp(role):
            holders.setdefault(assignment.principal_id, set()).add(role.role_name)
    probe.holders[resource.id.lower()] = holders
    names = ", ".join(u.username for u in usernames) or "none"
    return Check(f"acs {resource.name}", "ok", f"SMTP Usernames: {names}")


def _describe_holders(probe: Probe, resource: AcsResource, check: Check) -> Check:
    if check.status != "ok":
        return check
    holders = probe.holders.get(resource.id.lower(), {})
    listed = ", ".join(
        f"{probe.sp_app_ids.get(p, p)} ({'/'.join(sorted(r))})" for p, r in sorted(holders.items())
    )
    return Check(check.name, "ok", f"{check.detail}; role holders: {listed or 'none'}")


def _reader_fix(probe: Probe, scope: str) -> str:
    return f'az role assignment create --assignee {probe.me} --role "Reader" --scope {scope}'


# ----- Key Vault write permission and SMTP egress --------------------------------------------


async def check_vault_write(probe: Probe) -> Check:
    resource_id = probe.settings.key_vault_resource_id
    if resource_id is None:
        return Check(
            "vault write",
            "warn",
            "checked at first write (ROTATION_KEY_VAULT_RESOURCE_ID is not set)",
            probe.site.set_setting(["ROTATION_KEY_VAULT_RESOURCE_ID"]),
        )
    try:
        entries = await probe.arm.my_permissions(resource_id)
    except RotationError as exc:
        return Check("vault write", "warn", f"checked at first write: ARM would not say ({exc})")
    allowed = [
        action
        for action in VAULT_WRITES
        if any(action_allowed(action, e.data_actions, e.not_data_actions) for e in entries)
    ]
    if len(allowed) == len(VAULT_WRITES):
        return Check(
            "vault write",
            "ok",
            f"the identity may set secrets and update versions in {probe.vault_name}",
        )
    missing = ", ".join(a.rsplit("/", 2)[-2] + "/action" for a in VAULT_WRITES if a not in allowed)
    return Check(
        "vault write",
        "fail",
        f"the identity lacks {missing} on {probe.vault_name}",
        vault_fix(probe),
    )


async def check_smtp(probe: Probe) -> Check:
    verifier = probe.verifier
    try:
        version, mechanisms = await verifier.egress()
    except VerificationFailed as exc:
        return Check(
            "smtp",
            "fail",
            str(exc),
            f"openssl s_client -starttls smtp -connect {verifier.endpoint}   # from the "
            "Function App's network: allow outbound TCP to it",
        )
    offered = " ".join(mechanisms) or "none"
    if not {"LOGIN", "PLAIN"} & set(mechanisms):
        return Check("smtp", "fail", f"{verifier.endpoint} {version}: AUTH offered: {offered}")
    return Check(
        "smtp", "ok", f"{verifier.endpoint} STARTTLS {version}, AUTH {offered} (not tried)"
    )


async def check_lease_store(probe: Probe) -> list[Check]:
    """The per-app lease container can be read (it is made at the first run if absent);
    without it, every run fails closed and nothing rotates."""
    if probe.leases is None:
        if not probe.site.in_azure:
            return []  # an operator's lone CLI run: in-process busy marks suffice
        return [
            Check(
                "lease store",
                "warn",
                "ROTATION_LEASE_BLOB_URL is not set: instances cannot see each other's "
                "rotations, so two at once each rotate the same app (safe, but wasteful)",
                probe.site.set_setting(["ROTATION_LEASE_BLOB_URL", "ROTATION_LEASE_CONTAINER"]),
            )
        ]
    try:
        exists = await probe.leases.visible()
    except RotationError as exc:
        account = probe.leases.account
        return [
            Check(
                "lease store",
                "fail",
                str(exc),
                f'az role assignment create --assignee {probe.me} --role "Storage Blob Data '
                f'Owner" --scope $(az storage account show -n {account} --query id -o tsv)',
            )
        ]
    state = "exists" if exists else "is absent (the first run creates it)"
    return [Check("lease store", "ok", f"container {probe.leases.container} {state}")]


async def check_consumers(probe: Probe) -> list[Check]:
    """With consumer checks on: every candidate site (and slot) can be read, and which
    of them reference our vault. An unreadable site never breaks a rotation, but no app
    retires early while one lasts, so it is a warning with the grant that fixes it."""
    if probe.web is None:
        return []
    from rotation.run.consumers import ConsumerTracker

    tracker = ConsumerTracker(probe.settings, probe.web, clock=lambda: datetime.now(UTC))
    scan = await tracker.scan()  # never raises: what it cannot read is `unreachable`
    found = f"{len(scan.references)} site(s) reference {probe.vault_name}"
    if not scan.unreachable:
        return [Check("consumers", "ok", f"every candidate site was read; {found}")]
    return [
        Check(
            "consumers",
            "warn",
            f"{found}; unreadable, so no app retires early: {'; '.join(scan.unreachable)}",
            f"az role assignment create --assignee {probe.me} --role "
            '"ACS SMTP rotation consumer checker (<token>)" --scope <the site>   # the '
            "least-privilege role infra deploys (Website Contributor without custom roles); "
            "or drop a deleted site from ROTATION_CONSUMER_SITES",
        )
    ]


# ----- the run -------------------------------------------------------------------------------


async def run_checks(probe: Probe) -> list[Check]:
    """Every check, in the order an operator fixes things: identity, ACS, apps, vault, SMTP."""
    checks = [Check("settings", "ok", "every ROTATION_* setting is valid")]
    settings = probe.settings
    for name, resource, setting in (
        ("graph", settings.graph_endpoint, "ROTATION_CLOUD / ROTATION_GRAPH_URL"),
        ("arm", settings.arm_endpoint, "ROTATION_CLOUD / ROTATION_ARM_URL"),
        ("keyvault", vault_audience(settings.key_vault_url), "ROTATION_KEY_VAULT_URL"),
    ):
        checks.append(await check_token(probe, name, resource, setting))
    checks.append(check_graph_roles(probe))
    checks += await check_acs(probe)
    checks += await check_apps(probe)
    checks.append(await check_vault_write(probe))
    checks += await check_lease_store(probe)
    checks += await check_consumers(probe)
    checks.append(await check_smtp(probe))
    return checks
