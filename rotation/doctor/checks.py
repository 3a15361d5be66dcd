"""doctor's checks of the identity, the ACS scan, Key Vault access, the lease store, the
consumer sites and SMTP egress. Each is a function of the gathered facts (and the clients,
for what it reads or tries itself) that returns its findings; none depends on another.
"""

from __future__ import annotations

from collections.abc import Mapping

from rotation.doctor.shared import (
    GRAPH,
    OWNED_BY,
    RBAC_DELAY,
    READ_WRITE_ALL,
    Check,
    Clients,
    Facts,
    Token,
)
from rotation.errors import PermissionDenied, RotationError, VerificationFailed, describe
from rotation.model import AcsResource, RoleDefinitionEntry
from rotation.permissions import VAULT_DATA_ACTIONS, short
from rotation.run.discovery import Scan, Survey, Unread, definition_key, sends_mail

#: A managed identity's tokens are cached for up to 24 hours (Azure managed identities FAQ,
#: "Are managed identities tokens cached?"), and a Graph app role travels in the token.
CACHED_TOKENS = (
    "a managed identity's tokens are cached for up to 24 hours, so a new grant shows only "
    "in a token issued after it"
)

# ----- identity and tokens -------------------------------------------------------------------


async def tokens(facts: Facts, clients: Clients) -> list[Check]:
    return [_token_check(facts, token) for token in facts.tokens]


def _token_check(facts: Facts, token: Token) -> Check:
    name = f"token {token.service}"
    if token.claims is None:
        return Check(
            name,
            "fail",
            f"no token for {token.resource}: {token.error}",
            f"az functionapp identity assign -g {facts.site.resource_group} "
            f"-n {facts.site.function_app}   # and check {token.setting}",
        )
    tenant = token.claims.get("tid", "?")
    return Check(name, "ok", f"token for {token.resource} (tenant {tenant})")


async def graph_roles(facts: Facts, clients: Clients) -> list[Check]:
    """The Graph app role is in the token or nowhere: say when a new token will carry it."""
    token = facts.token(GRAPH)
    if token.claims is None:
        return [Check("graph roles", "warn", "not checked: no Graph token (see token graph)")]
    roles = facts.graph_roles
    if OWNED_BY in roles or READ_WRITE_ALL in roles:
        return [Check("graph roles", "ok", f"the Graph token carries {', '.join(roles)}")]
    return [
        Check(
            "graph roles",
            "fail",
            f"pending: the Graph token carries {', '.join(roles) or 'no app roles'}, not "
            f"{OWNED_BY}, so Graph refuses every read and write of the sender apps and nothing "
            f"rotates. Grant it (fix below); {CACHED_TOKENS}: {_token_window(token)}",
            facts.grant_graph_fix(),
        )
    ]


def _token_window(token: Token) -> str:
    issued, expires = token.moment("iat"), token.moment("exp")
    if issued is None or expires is None:
        return "run doctor again after the grant"
    return (
        f"this token was issued {issued:%Y-%m-%d %H:%M} UTC and is used until "
        f"{expires:%Y-%m-%d %H:%M} UTC; run doctor again after that"
    )


# ----- ACS resources and their senders -------------------------------------------------------


async def acs(facts: Facts, clients: Clients) -> list[Check]:
    """What discovery found on each ACS resource, and each read it could not make."""
    survey, settings = facts.survey, facts.settings
    checks = [_unread_check(facts, u) for u in survey.unread if u.kind != "acs resource"]
    if (
        not survey.resources
        and not checks
        and (settings.subscription_ids or settings.acs_resource_ids)
    ):
        checks.append(Check("acs", "warn", "no ACS resource found where the rotator looks"))
    unread = {u.scope.lower(): u for u in survey.unread if u.kind == "acs resource"}
    for resource in survey.resources:
        scan = survey.scan_of(resource.id)
        if scan is None:
            problem = unread.get(resource.id.lower())
            error = problem.error if problem else RotationError("not read")
            checks.append(_resource_unread(facts, resource, error))
        else:
            checks.append(_resource_check(survey, scan))
    return checks


def _unread_check(facts: Facts, unread: Unread) -> Check:
    """A read of discovery's that failed, with the grant that fixes it."""
    if unread.kind == "service principals":
        return Check(
            "acs role holders",
            "fail",
            f"could not tell which apps hold the sending roles: {describe(unread.error)}",
            facts.grant_graph_fix(),
        )
    settings = facts.settings
    scopes = [f"/subscriptions/{i}" for i in settings.subscription_ids]
    scope = (scopes or list(settings.acs_resource_ids) or ["/subscriptions/<subscription id>"])[0]
    if unread.kind == "role definitions":
        subscription = unread.scope.split("/providers/")[0] or scope
        return Check("acs roles", "fail", describe(unread.error), facts.reader_fix(subscription))
    return Check("acs", "fail", describe(unread.error), facts.reader_fix(scope))


def _resource_unread(facts: Facts, resource: AcsResource, error: RotationError) -> Check:
    return Check(f"acs {resource.name}", "fail", describe(error), facts.reader_fix(resource.id))


def _resource_check(survey: Survey, scan: Scan) -> Check:
    names = ", ".join(u.username for u in scan.usernames) or "none"
    holders = sending_roles(survey, scan)
    app_ids = {p: e.app_id for p, e in survey.principals.items()}
    listed = ", ".join(
        f"{app_ids.get(p, p)} ({'/'.join(sorted(r.role_name for r in roles))})"
        for p, roles in sorted(holders.items())
    )
    return Check(
        f"acs {scan.resource.name}",
        "ok",
        f"SMTP Usernames: {names}; role holders: {listed or 'none'}",
    )


def sending_roles(survey: Survey, scan: Scan) -> Mapping[str, list[RoleDefinitionEntry]]:
    """Principal id (lower) -> its roles on the resource that are for sending mail."""
    holders: dict[str, list[RoleDefinitionEntry]] = {}
    for assignment in scan.assignments:
        role = survey.definitions.get(definition_key(assignment.role_definition_id))
        if role is not None and sends_mail(role):
            held = holders.setdefault(assignment.principal_id.lower(), [])
            if role not in held:
                held.append(role)
    return holders


# ----- Key Vault: what ARM says the identity may do there ------------------------------------


async def vault_access(facts: Facts, clients: Clients) -> list[Check]:
    """Every data action the rotator performs in the vault, as ARM's permissions API sees
    the identity's roles there (nothing is written to find out)."""
    held = facts.vault_actions
    if held is None:
        return [
            Check(
                "vault access",
                "warn",
                "checked at first write (ROTATION_KEY_VAULT_RESOURCE_ID is not set)",
                facts.site.set_setting(["ROTATION_KEY_VAULT_RESOURCE_ID"]),
            )
        ]
    if isinstance(held, RotationError):
        return [
            Check(
                "vault access",
                "warn",
                f"checked at first write: ARM would not say ({describe(held)})",
                facts.reader_fix(facts.vault_scope),
            )
        ]
    missing = [short(a) for a in VAULT_DATA_ACTIONS if a not in held]
    if missing:
        return [
            Check(
                "vault access",
                "fail",
                f"the identity lacks {', '.join(missing)} on {facts.vault_name}; "
                f"{RBAC_DELAY} of its being made",
                facts.vault_fix(),
            )
        ]
    granted = ", ".join(short(a) for a in VAULT_DATA_ACTIONS)
    return [Check("vault access", "ok", f"the identity holds {granted} on {facts.vault_name}")]


# ----- the lease store, consumer sites and SMTP egress ---------------------------------------


async def lease_store(facts: Facts, clients: Clients) -> list[Check]:
    """The per-app lease container can be read (it is made at the first run if absent);
    without it, every run fails closed and nothing rotates."""
    leases = clients.blob_leases
    if leases is None:
        if not facts.site.in_azure:
            return []  # an operator's lone CLI run: in-process busy marks suffice
        return [
            Check(
                "lease store",
                "warn",
                "ROTATION_LEASE_BLOB_URL is not set: instances cannot see each other's "
                "rotations, so two at once each rotate the same app (safe, but wasteful)",
                facts.site.set_setting(["ROTATION_LEASE_BLOB_URL", "ROTATION_LEASE_CONTAINER"]),
            )
        ]
    try:
        exists = await leases.visible()
    except RotationError as exc:
        return [
            Check(
                "lease store",
                "fail",
                f"{describe(exc)}; {RBAC_DELAY} of its being made",
                f'az role assignment create --assignee {facts.me} --role "Storage Blob Data '
                f'Owner" --scope $(az storage account show -n {leases.account} --query id -o tsv)',
            )
        ]
    state = "exists" if exists else "is absent (the first run creates it)"
    return [Check("lease store", "ok", f"container {leases.container} {state}")]


async def consumers(facts: Facts, clients: Clients) -> list[Check]:
    """With consumer checks on: every candidate site (and slot) is read, and each site that
    references the vault is asked to refresh its references (harmless: it re-reads them from
    Key Vault), so a missing permission for any call the rotator makes shows here. A site
    that is gone is a warning: no app retires early while one cannot be read."""
    web = clients.web
    if web is None:
        return []
    from datetime import UTC, datetime

    from rotation.run.consumers import ConsumerTracker

    tracker = ConsumerTracker(facts.settings, web, clock=lambda: datetime.now(UTC))
    scan = await tracker.scan()  # never raises: what it cannot read is unreachable
    denied = list(scan.denied)
    gone = [u for u in scan.unreachable if u not in scan.denied]
    refreshed = 0
    for site_id in scan.references:
        try:
            await web.refresh(site_id)
            refreshed += 1
        except PermissionDenied as exc:
            denied.append(f"{site_id} (refresh): {describe(exc)}")
        except RotationError as exc:
            gone.append(f"{site_id} (refresh): {describe(exc)}")
    found = f"{len(scan.references)} site(s) reference {facts.vault_name}"
    if denied:
        return [
            Check(
                "consumers",
                "fail",
                f"{found}; the identity may not make these calls, so no app retires early: "
                f"{'; '.join(denied)}",
                f'az role assignment create --assignee {facts.me} --role "Website '
                'Contributor" --scope <the site>   # covers every call; the consumer checker '
                "role infra deploys covers listing and app-setting references only (no "
                "published operation names the connection-string references or the refresh)",
            )
        ]
    if gone:
        return [_consumers_unreachable(facts, gone)]
    tried = f"refreshed {refreshed}" if refreshed else "no refresh tried (no site references it)"
    return [Check("consumers", "ok", f"every candidate site was read; {found}; {tried}")]


def _consumers_unreachable(facts: Facts, unreachable: list[str]) -> Check:
    return Check(
        "consumers",
        "warn",
        f"unreadable, so no app retires early: {'; '.join(unreachable)}",
        facts.site.set_setting(["ROTATION_CONSUMER_SITES"])
        + "   # without the sites that are gone",
    )


async def smtp(facts: Facts, clients: Clients) -> list[Check]:
    verifier = clients.smtp
    try:
        version, mechanisms = await verifier.egress()
    except VerificationFailed as exc:
        return [
            Check(
                "smtp",
                "fail",
                describe(exc),
                f"openssl s_client -starttls smtp -connect {verifier.endpoint}   # from the "
                "Function App's network: allow outbound TCP to it",
            )
        ]
    offered = " ".join(mechanisms) or "none"
    if not {"LOGIN", "PLAIN"} & set(mechanisms):
        return [Check("smtp", "fail", f"{verifier.endpoint} {version}: AUTH offered: {offered}")]
    return [
        Check("smtp", "ok", f"{verifier.endpoint} STARTTLS {version}, AUTH {offered} (not tried)")
    ]
