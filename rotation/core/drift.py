"""Drift: a current Key Vault version of a managed secret that the rotator did not write.

Somebody (a person, a pipeline) set a new version by hand. Consumers now read a password
that nobody proved by SMTP AUTH, held by an Entra credential the rotator cannot name (the
version carries no `key-id`, or one copied from a promotion's tags: see
VaultEntry.written_by_rotator). Rotating over it would hide it, and retiring "the other
credentials" after the grace period could remove the very credential it holds. So, until an
operator resolves it:

- the app is *blocked*: no new secret, no promotion over it, nothing retired (`blocked`);
- the version is checked read-only by SMTP AUTH when its event arrives, and the verdict is
  written as tags on that version (model.DRIFT_SEEN_TAG, DRIFT_SMTP_TAG).

Why tags on the version: Key Vault is the one store every instance, run and `status` already
reads, the tags travel with the version they describe (a newer version, ours or not, leaves
them behind), writing them makes no new version (so no new event), and they need no
permission beyond what promotion already holds. A second store (a blob, a table) could
disagree with the vault; the version's own tags cannot.

An operator resolves drift with a named, forced rotation of the app (HTTP ``POST
/api/rotations`` ``{"appIds": [...], "mode": "force"}``, or ``python -m rotation run --app
<id> --force``): the rotator proves a new password and promotes it over the hand-written
one, whose credential then keeps the grace period like any superseded one. Runs started by
the timer or by a Key Vault event never resolve it. Disabling the hand-written version (to
reject it) also ends the drift: a disabled current version serves nobody, so the next run
replaces it.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from rotation.model import (
    DRIFT_SEEN_TAG,
    DRIFT_SMTP_TAG,
    Blocked,
    Drift,
    SmtpCheck,
    VaultEntry,
    VaultVersion,
)

RESOLVE = (
    "prove and promote a password of the rotator's own with a named, forced rotation of this app "
    '(POST /api/rotations {"appIds": ["<app id>"], "mode": "force"}, or python -m rotation '
    "run --app <app id> --force); until then nothing is rotated over it or retired"
)


def drift(vault: VaultEntry) -> Drift | None:
    """The drift the app's current version is, or None when the rotator wrote it (or there
    is none), or when the rotator never wrote this secret at all.

    The last is adoption, not drift: an operator who stored the app's password by hand
    before deploying the rotator (the walkthrough's way) gets it rotated over on the first
    run, as before. Only a hand-written version over a secret the rotator manages is
    drift. (A current version that is not settled makes the run read every version, so
    the history is there whenever the current one is not the rotator's: policy.needs_versions.)"""
    current = vault.current
    if current is None or vault.written_by_rotator(current) or not current.enabled:
        return None  # a disabled one serves nobody: the next run replaces it (policy)
    if not any(vault.written_by_rotator(v) for v in vault.versions):
        return None  # adoption: nothing of the rotator's was ever here
    return Drift(current.version, current.created, _seen(current), _smtp(current))


def before(vault: VaultEntry) -> VaultEntry:
    """The entry as it stood at the rotator's last proven version (the newest it wrote; the
    hand-written ones above it left out): that version's credential may still expire, and an
    app about to lose it must warn whatever blocks its rotation."""
    versions = vault.versions
    first = next((i for i, v in enumerate(versions) if vault.written_by_rotator(v)), len(versions))
    return VaultEntry(vault.name, versions[first:])


def blocked(found: Drift) -> Blocked:
    smtp = {
        SmtpCheck.ACCEPTED: "SMTP AUTH accepted its password",
        SmtpCheck.REFUSED: "SMTP AUTH REFUSED its password: consumers are failing",
        SmtpCheck.UNVERIFIED: "its password is not verified yet",
    }[found.smtp]
    appeared = found.appeared.isoformat(timespec="seconds")
    return Blocked(
        f"Key Vault's current version {found.version} (created {appeared}) was not written by "
        f"the rotator (drift; {smtp})",
        RESOLVE,
    )


def drift_tags(version: VaultVersion, seen: datetime, smtp: SmtpCheck) -> dict[str, str]:
    """The version's tags with the drift verdict added (Key Vault replaces tags whole)."""
    return {
        **version.tags,
        DRIFT_SEEN_TAG: seen.isoformat(timespec="seconds"),
        DRIFT_SMTP_TAG: smtp.value,
    }


class Verdict(enum.StrEnum):
    """What a Key Vault event asks of the rotator."""

    ROTATE = "rotate"  # near expiry / expired, on the current version: rotate the app now
    CHECK_DRIFT = "check_drift"  # a hand-written current version nobody checked yet
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str


def on_new_version(version: str, vault: VaultEntry) -> Decision:
    """SecretNewVersionCreated. Idempotent: a replay, or an event that arrives after later
    versions, finds the version marked, or no longer current, and is ignored."""
    found = next((v for v in vault.versions if v.version == version), None)
    if found is None:
        return Decision(Verdict.IGNORE, "the version is not in Key Vault (deleted since)")
    if vault.written_by_rotator(found):
        return Decision(Verdict.IGNORE, "written by the rotator (its own promotion)")
    current = vault.current
    if current is not None and current.version != version:
        newer = "the rotator's" if vault.written_by_rotator(current) else "another hand-written"
        return Decision(Verdict.IGNORE, f"superseded by {newer} version {current.version}")
    if not found.enabled:
        return Decision(Verdict.IGNORE, "the version is disabled")
    if drift(vault) is None:
        return Decision(Verdict.IGNORE, "the rotator never wrote this secret (adoption)")
    if DRIFT_SEEN_TAG in found.tags:
        return Decision(Verdict.IGNORE, "drift already caught and checked (a repeated event)")
    return Decision(Verdict.CHECK_DRIFT, "a version the rotator did not write")


def on_expiry(version: str, vault: VaultEntry, what: str) -> Decision:
    """SecretNearExpiry / SecretExpired (`what` names it). Only the current version
    matters: once a rotation has promoted a newer one, a repeat of the event is stale."""
    current = vault.current
    if current is None:
        return Decision(Verdict.IGNORE, "the secret has no version in Key Vault")
    if current.version != version:
        return Decision(Verdict.IGNORE, f"not the current version ({current.version} is)")
    return Decision(Verdict.ROTATE, f"Key Vault event {what} for current version {version}")


def _seen(version: VaultVersion) -> datetime | None:
    raw = version.tags.get(DRIFT_SEEN_TAG)
    try:
        seen = datetime.fromisoformat(raw) if raw else None
    except ValueError:  # a tag edited by hand: drift still, just not when
        return None
    if seen is not None and seen.tzinfo is None:
        # Hand-edited without an offset: the rotator writes UTC, so read it as UTC (never
        # naive: status sends it as an OpenAPI date-time, which needs the offset).
        seen = seen.replace(tzinfo=UTC)
    return seen


def _smtp(version: VaultVersion) -> SmtpCheck:
    try:
        return SmtpCheck(version.tags.get(DRIFT_SMTP_TAG, SmtpCheck.UNVERIFIED))
    except ValueError:
        return SmtpCheck.UNVERIFIED
