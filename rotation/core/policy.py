"""The rotator's decisions, as pure functions of what was observed.

No I/O and no clock: the caller passes `now`. Everything the engine does to an app
follows from `plan_app` (before any change) and `retirements` (after a promotion, on
the state the engine then knows). The invariants live here:

- I1: the credential the current Key Vault version points at is never retired, and
  nothing is retired while Key Vault has no working password to fall back on.
- I4: a credential that was ever promoted (or was made by a person) goes only once the
  grace period since the current promotion has passed, or at once in emergency mode.
- Early retirement (consumers): before the grace period ends, superseded credentials go
  only for an app the operator declared fully covered, and only once every consumer site
  confirmed the current version (`early_retirement`); an unreachable site, a reference
  that did not resolve or a pinned one keeps the grace.
- I5: a credential we made that never reached Key Vault is an orphan once it is older
  than the verify window; younger ones may belong to a run still verifying them.
- App-management policies (Entra): a new secret lasts no longer than the policy governing
  the app allows (the plan says so), and an app whose policy forbids new passwords is
  blocked before any write (`password_rule`, `plan_app`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from rotation.core import drift
from rotation.model import (
    DRIFT_SEEN_TAG,
    AppManagementPolicy,
    AppPlan,
    AppRecord,
    AppState,
    Blocked,
    ConsumerCheck,
    Credential,
    Keep,
    ManagedApp,
    Mode,
    PasswordPolicies,
    PasswordRule,
    Retire,
    Retirement,
    Rotate,
    Rules,
    VaultEntry,
    VaultVersion,
)

#: Kept under a policy's maximum lifetime: Graph measures it from its own clock.
POLICY_MARGIN = timedelta(minutes=5)
PASSWORD_ADDITION, PASSWORD_LIFETIME = "passwordAddition", "passwordLifetime"


def plan_app(
    app: ManagedApp,
    record: AppRecord,
    vault: VaultEntry,
    now: datetime,
    rules: Rules,
    mode: Mode = Mode.DUE,
    early: str | None = None,
    passwords: PasswordPolicies | None = None,
    *,
    requested: str | None = None,
    resolve_drift: bool = False,
) -> AppPlan:
    """What to do with one app now, and why. `early` (from `early_retirement`) lets
    superseded credentials go before the grace period ends; `passwords` (the tenant's
    app-management policies) may shorten a new secret's life or forbid it; `requested` is
    why a forced run was started (a Key Vault event names itself).

    A hand-written current version (drift, rotation/core/drift.py) blocks the app, with
    nothing written or retired, unless `resolve_drift` (an operator's named, forced run)."""
    found = drift.drift(vault)
    if found is not None and not resolve_drift:
        why = f"Key Vault's current version {found.version} was not written by the rotator"
        return Rotate(app, why, blocked=drift.blocked(found))
    reason = rotation_reason(record, vault, now, rules, mode, requested)
    if reason is not None:
        # Retirement after a rotation is decided again on the state after promotion.
        rotate = Rotate(app, reason, emergency=mode is Mode.EMERGENCY, lifetime=rules.lifetime)
        return within_policy(rotate, password_rule(passwords, record), rules, passwords)
    retire = retirement_plan(app, record, vault, now, rules, early=early)
    return retire or Keep(app, _healthy_reason(record, vault, now))


def password_rule(policies: PasswordPolicies | None, record: AppRecord) -> PasswordRule | None:
    """What the app-management policies say about a new password for this app: the one
    assigned to it, else the tenant default (only an enabled policy restricts anything,
    and each restriction only apps created after its date). None: nothing restricts it,
    or nothing is known."""
    if policies is None:
        return None
    assigned = policies.assigned.get(record.object_id.lower())
    policy = assigned or policies.default
    if policy is None or not policy.enabled:
        return None
    applicable = [r for r in policy.passwords if r.applies_to(record)]
    caps = [r.max_lifetime for r in applicable if r.kind == PASSWORD_LIFETIME and r.max_lifetime]
    blocked = any(r.kind == PASSWORD_ADDITION for r in applicable)
    if not blocked and not caps:
        return None
    source = _source(policy, assigned is not None)
    certain = assigned is not None or policies.assignments_known
    if not certain:
        source += " (unless a policy of the app's own, which could not be read, exempts it)"
    return PasswordRule(source, blocked and certain, min(caps, default=None), certain)


def within_policy(
    rotate: Rotate,
    rule: PasswordRule | None,
    rules: Rules,
    policies: PasswordPolicies | None = None,
) -> Rotate:
    """The rotation as the app's policy allows it: blocked, or with a shorter secret."""
    unread = policies.unread if policies is not None else None
    reason = rotate.reason
    if unread is not None:
        reason += (
            f"; the tenant's app-management policies could not be read ({unread}): a cap on "
            "the secret's lifetime or a ban on new passwords shows only when Graph refuses one"
        )
    if rule is None:
        return replace(rotate, reason=reason)
    if rule.blocked:
        return replace(rotate, reason=reason, blocked=_forbidden(rule))
    cap = rule.max_lifetime
    if cap is None or cap - POLICY_MARGIN >= rules.lifetime:
        return replace(rotate, reason=reason)
    lifetime = cap - POLICY_MARGIN
    if lifetime <= rules.rotate_before:
        if not rule.certain:  # perhaps exempt: let Graph say, rather than block on a guess
            return replace(rotate, reason=reason)
        return replace(rotate, reason=reason, blocked=_too_short(rule, cap, rules))
    return replace(
        rotate,
        reason=f"{reason}; the new secret lasts {_days(lifetime)}: {rule.source} allows at "
        f"most {_days(cap)} (ROTATION_SECRET_LIFETIME_DAYS is {rules.lifetime.days})",
        lifetime=lifetime,
    )


def _source(policy: AppManagementPolicy, assigned: bool) -> str:
    if not assigned:
        return "the tenant default app-management policy"
    return f"app-management policy '{policy.name}' ({policy.id})"


def _forbidden(rule: PasswordRule) -> Blocked:
    return Blocked(
        f"{rule.source} forbids adding a password to this app (restriction passwordAddition), "
        "so it cannot be rotated; nothing was written",
        "an administrator exempts it by assigning it an app-management policy without that "
        "restriction (Graph: POST /applications/<object id>/appManagementPolicies/$ref), or "
        "moves it off client secrets",
    )


def _too_short(rule: PasswordRule, cap: timedelta, rules: Rules) -> Blocked:
    return Blocked(
        f"{rule.source} caps a password's lifetime at {_days(cap)}, not more than "
        f"ROTATION_ROTATE_BEFORE_DAYS ({rules.rotate_before.days}): each new secret would be "
        "due at once; nothing was written",
        f"set ROTATION_ROTATE_BEFORE_DAYS below {_days(cap)}",
    )


def retirement_plan(
    app: ManagedApp,
    record: AppRecord,
    vault: VaultEntry,
    now: datetime,
    rules: Rules,
    *,
    emergency: bool = False,
    early: str | None = None,
) -> Retire | None:
    """Step 4 as it stands now: the credentials to remove and the Key Vault versions to
    disable (those of removed credentials), or None when there is nothing to do. Used
    before any change (`plan_app`) and again on the state after a promotion."""
    retire = retirements(record, vault, now, rules, emergency=emergency, early=early)
    stale = stale_versions(record, vault)
    if not retire and not stale:
        return None
    reasons = [f"{len(retire)} old credential(s) to remove"] if retire else []
    if stale:
        reasons.append(f"{len(stale)} Key Vault version(s) of removed credentials to disable")
    return Retire(app, "; ".join(reasons), retire, disable=stale)


def rotation_reason(
    record: AppRecord,
    vault: VaultEntry,
    now: datetime,
    rules: Rules,
    mode: Mode,
    requested: str | None = None,
) -> str | None:
    """Why the app needs a new secret now, or None when it does not."""
    if mode is Mode.EMERGENCY:
        return "emergency rotation requested: every other secret is removed at once"
    if mode is Mode.FORCE:
        return requested or "rotation forced by request"
    current = vault.current
    if current is None:
        return "Key Vault holds no SMTP password for this app yet"
    if not current.enabled:
        return f"the current Key Vault version {current.version} is disabled"
    credential = record.credential(current.key_id)
    if credential is None:
        return f"Key Vault points at credential {current.key_id}, which no longer exists"
    if credential.end is None:
        return None
    left = credential.end - now
    if left <= timedelta(0):
        return f"secret {credential.key_id} expired {_days(-left)} ago"
    if left <= rules.rotate_before:
        return (
            f"secret {credential.key_id} expires in {_days(left)} "
            f"(rotation starts {rules.rotate_before.days} days ahead)"
        )
    return None


def app_state(record: AppRecord | None, vault: VaultEntry, now: datetime, rules: Rules) -> AppState:
    """What `status` shows for an app, from the same decision a due run takes: the state is
    "due" or "no-password" exactly when `plan_app` (mode due) would rotate. One source of
    truth, so status, plan and the expiry warning cannot disagree."""
    if record is None:
        return "app-not-found"
    if record.problem is not None:
        return "unreadable"  # never "ok": what Graph said of it cannot be read
    if drift.drift(vault) is not None:
        return "drift"
    if rotation_reason(record, vault, now, rules, Mode.DUE) is None:
        return "ok"
    current = vault.current
    if current is None or record.credential(current.key_id) is None:
        return "no-password"
    return "due"  # expiring, expired, or its Key Vault version disabled


def retirements(
    record: AppRecord,
    vault: VaultEntry,
    now: datetime,
    rules: Rules,
    *,
    emergency: bool = False,
    early: str | None = None,
) -> tuple[Retirement, ...]:
    """The credentials that may be removed now, each with its reason. `early` is why the
    grace may be cut short (every consumer confirmed), or None to keep it."""
    current = vault.current
    if current is None or not current.enabled or record.credential(current.key_id) is None:
        return ()  # I1: keep everything until Key Vault holds a working password
    grace_ends = current.created + rules.grace
    out: list[Retirement] = []
    for credential in record.credentials:
        if credential.key_id == current.key_id:
            continue
        if credential.made_by_us and credential.key_id not in vault.known_key_ids:
            # Never promoted. Even in an emergency a young one is kept: it was never
            # handed out, and a concurrent run may be about to promote it.
            age = now - credential.start if credential.start else rules.verify_window
            if age >= rules.verify_window:
                out.append(
                    _retire(credential, "orphan: created by a run that never promoted it", vault)
                )
            continue
        if emergency:
            out.append(_retire(credential, "emergency: removed at once", vault))
        elif now >= grace_ends:
            ended = grace_ends.isoformat(timespec="seconds")
            reason = f"superseded by {current.key_id}; grace of {_hours(rules.grace)} ended {ended}"
            out.append(_retire(credential, reason, vault))
        elif early is not None:
            out.append(_retire(credential, f"superseded by {current.key_id}; {early}", vault))
    return tuple(out)


def _retire(credential: Credential, reason: str, vault: VaultEntry) -> Retirement:
    """A credential to remove, with the enabled Key Vault versions that hold it: they are
    disabled once it is gone (a version must not hand out a dead password)."""
    held = (v.version for v in vault.versions if v.enabled and v.key_id == credential.key_id)
    return Retirement(credential, reason, tuple(held))


def early_retirement(
    check: ConsumerCheck | None, vault: VaultEntry, fully_covered: bool
) -> str | None:
    """Why the old secrets of an app may go before its grace period ends, or None.

    Only for an app the operator declared fully covered (every consumer is a site we
    find: one reading Key Vault some other way would break), only when the check is about
    the version Key Vault serves now, and only when every consumer confirmed it.
    """
    current = vault.current
    if not fully_covered or check is None or current is None:
        return None
    if check.version != current.version or not check.confirmed:
        return None
    sites = len({r.site_id.lower() for r in check.password_references})
    return f"all {sites} consumer site(s) confirmed version {current.version} before grace ended"


def stale_versions(record: AppRecord, vault: VaultEntry) -> tuple[str, ...]:
    """Enabled Key Vault versions, other than the current one, whose credential is gone.

    Step 4 removes a credential and then disables its version; a run stopped in between
    (killed, timed out) leaves a version that would hand out a dead password to anyone
    reading it by version. Nothing else would ever disable it, so every run looks.
    """
    current = vault.current
    alive = {c.key_id for c in record.credentials}
    return tuple(
        v.version
        for v in vault.versions
        if v is not current and v.enabled and v.key_id and v.key_id not in alive
    )


def settled(record: AppRecord, vault: VaultEntry) -> bool:
    """Nothing is left to retire or disable, now or at the next rotation: the app's one
    credential is the one Key Vault serves, and every other version that names a
    credential is disabled (a second version of the current credential, left by a
    retried write, would otherwise outlive its removal).

    The engine then marks the current version, and until something outside changes (a
    credential added or removed in Entra, the version disabled or superseded), later runs
    skip the app's version history (see `needs_versions`).
    """
    current = vault.current
    if current is None or not current.enabled or current.key_id is None:
        return False
    if {c.key_id for c in record.credentials} != {current.key_id}:
        return False
    return not any(v.enabled and v.key_id for v in vault.versions if v is not current)


def needs_versions(record: AppRecord, current: VaultVersion | None) -> bool:
    """Whether the app's Key Vault version history is needed to plan and carry out its
    rotation, given only the current version (from one listing of the whole vault).

    Versions matter for two decisions: which credentials were ever promoted (orphans,
    I5) and which enabled versions name a removed credential. Neither can change the
    outcome when the secret does not exist, or when the current version is marked settled
    and the app has no credential besides it: every other version is then disabled or
    names that credential. So the plan, and after a rotation the retirements, come out the
    same from the current version alone (a property test checks it), and such an app,
    due or not, costs no Key Vault read of its own. Anything else reads every version.
    """
    if current is None:
        return False
    if current.unreadable is not None:
        return True  # the listing's item could not be read: the versions say it all
    if not current.settled:
        return True  # the last rotation was not seen to finish (or predates the mark)
    if DRIFT_SEEN_TAG in current.tags:
        # Caught by a Key Vault event as not the rotator's, yet "settled": a copy of a
        # settled version's tags, mark included. Only the history shows it (drift.drift).
        return True
    return {c.key_id for c in record.credentials} != {current.key_id}


def _healthy_reason(record: AppRecord, vault: VaultEntry, now: datetime) -> str:
    current = vault.current
    credential = record.credential(current.key_id if current else None)
    if credential is None or credential.end is None:
        return "current secret has no expiry"
    return f"current secret {credential.key_id} is valid for {_days(credential.end - now)}"


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"
