"""What the rotator does when Key Vault tells it something (the Event Grid trigger's work).

- ``SecretNearExpiry`` / ``SecretExpired`` on a managed secret's current version: that app is
  rotated now, through the same service, lease and policy as a named forced run, with a
  reason naming the event (a hand-written current version still blocks it: drift).
- ``SecretNewVersionCreated`` the rotator did not write (drift, rotation/core/drift.py): its
  password is checked by SMTP AUTH, read-only (no Entra change), the verdict is logged
  (`vault.drift_detected`, which alerts) and written as tags on that version. Nothing is
  rotated over it and nothing retired until an operator resolves it.
- The rotator's own writes, repeats, events already superseded, other vaults and unmanaged
  secrets are ignored with a line saying why (an unmanaged secret at debug level only).

Event Grid delivers at least once and in no guaranteed order (learn.microsoft.com/azure/
event-grid/delivery-and-retry), so every decision is taken from Key Vault's state at the
time, never from the event alone: a repeat finds the version marked or superseded.

Nothing here raises for a bad event: the trigger must not answer a malformed delivery with an
error Event Grid would retry. A failure of Azure itself (Key Vault unreachable) does raise, so
that Event Grid retries the delivery later.
"""

from __future__ import annotations

import enum
from typing import Any
from urllib.parse import urlsplit

import structlog

from rotation.core import drift
from rotation.errors import FailureKind, RotationError, VerificationFailed, describe
from rotation.model import Mode, Requester, RunOptions, SmtpCheck, VaultEntry
from rotation.service import RotationService, Selection, UnknownApps
from rotation.settings import Settings
from rotation.telemetry import logs
from rotation.telemetry.redaction import echo
from rotation.vault_events import EventKind, SecretEvent, parse

log = logs.get_logger("rotation.vault_watch")

#: Seconds a drift check may try SMTP AUTH. Event Grid waits 30 s for a delivery's answer
#: before it queues a retry (learn.microsoft.com/azure/event-grid/delivery-and-retry), and a
#: hand-written version is usually minutes or more old, past Entra's propagation delay.
DRIFT_CHECK_SECONDS = 20.0


class Handled(enum.StrEnum):
    """What became of one delivered event; each is logged where it is decided
    (event.malformed, event.ignored, event.received, vault.drift_detected)."""

    DROPPED = "dropped"  # malformed
    IGNORED = "ignored"
    ROTATED = "rotated"  # a run was made for the app; its report says how it ended
    DRIFT = "drift"  # a hand-written version caught and checked


class VaultWatch:
    """Handles Key Vault events with one RotationService (kept by the HTTP API's `Api`)."""

    def __init__(self, service: RotationService) -> None:
        self.service = service
        self.settings: Settings = service.settings
        # Within Event Grid's 30 s, and no longer than an HTTP caller is made to wait.
        self.check_seconds = min(DRIFT_CHECK_SECONDS, self.settings.http_verify_timeout_seconds)

    async def handle(self, raw: Any) -> Handled:
        event = parse(raw)
        if event is None:
            return Handled.DROPPED
        with structlog.contextvars.bound_contextvars(trigger="event"):
            return await self._handle(event)

    async def _handle(self, event: SecretEvent) -> Handled:
        other = self._other_vault(event)
        if other is not None:
            return _ignored(event, other)
        app_id = self.settings.app_id_of(event.name)
        if app_id is None:
            log.debug("event.ignored", reason="not a managed secret", **event.log_fields())
            return Handled.IGNORED
        try:
            chosen = await self.service.choose([app_id])
        except UnknownApps:
            log.debug("event.ignored", reason="not a managed app", **event.log_fields())
            return Handled.IGNORED
        if not chosen.apps:  # a skipped sender (managed identity, another tenant's app)
            return _ignored(event, "the app is not one the rotator can rotate")
        app = chosen.apps[0]
        with structlog.contextvars.bound_contextvars(app_id=app.app_id):
            entry = await self.service.clients.vault.read(app.secret_name)
            if event.kind is EventKind.NEW_VERSION:
                decision = drift.on_new_version(event.version, entry)
            else:
                decision = drift.on_expiry(event.version, entry, event.kind.short)
            if decision.verdict is drift.Verdict.IGNORE:
                return _ignored(event, decision.reason)
            log.info(
                "event.received",
                verdict=decision.verdict.value,
                reason=decision.reason,
                **event.log_fields(),
            )
            if decision.verdict is drift.Verdict.ROTATE:
                await self._rotate(chosen, event, decision.reason)
                return Handled.ROTATED
            await self._check(app.smtp_username, entry, event)
            return Handled.DRIFT

    def _other_vault(self, event: SecretEvent) -> str | None:
        """Why the event is not about this rotator's vault, or None when it is (Key Vault's
        advice: "check the topic of the message"; event-grid-overview)."""
        host = urlsplit(self.settings.key_vault_url).hostname or ""
        ours = host.split(".", 1)[0].lower()
        if event.vault_name.lower() != ours:
            return f"another vault ({echo(event.vault_name, quoted=False)})"
        resource_id = self.settings.key_vault_resource_id
        if resource_id and event.topic.lower() != resource_id.lower():
            return "another topic than ROTATION_KEY_VAULT_RESOURCE_ID"
        return None

    async def _rotate(self, chosen: Selection, event: SecretEvent, reason: str) -> None:
        """The app's rotation now: a run of that one app, forced, as an operator's named run
        is, but one that can never resolve drift (`because` is set)."""
        options = RunOptions(
            (chosen.apps[0].app_id,),
            Mode.FORCE,
            because=reason,
            requested_by=Requester(type="event", name=event.kind.short),
        )
        await self.service.run(options, chosen=chosen)

    async def _check(self, username: str, entry: VaultEntry, event: SecretEvent) -> None:
        """SMTP AUTH with the hand-written password, read-only; the verdict logged and tagged."""
        version = next(v for v in entry.versions if v.version == event.version)
        smtp, error = await self._verify(username, entry.name, event.version)
        seen = self.service.engine.clock()
        marked = True
        try:
            tags = drift.drift_tags(version, seen, smtp)
            await self.service.clients.vault.tag(entry.name, event.version, tags)
        except RotationError as exc:  # still logged below, and status shows the drift
            untagged = f"not tagged: {describe(exc)}"
            marked, error = False, f"{error}; {untagged}" if error else untagged
        fields = {
            "secret_name": entry.name,
            "vault_version": event.version,
            "appeared": version.created.isoformat(timespec="seconds"),
            "smtp": smtp.value,
            "error": error,
            "marked": marked,
        }
        if smtp is SmtpCheck.ACCEPTED:  # unproven, but consumers are served: a warning
            log.warning("vault.drift_detected", **fields)
        else:  # consumers may be failing, or nobody could tell: an error (alerts)
            log.error("vault.drift_detected", **fields)

    async def _verify(self, username: str, name: str, version: str) -> tuple[SmtpCheck, str | None]:
        clients = self.service.clients
        password = await clients.vault.read_value(name, version)
        try:
            await clients.verifier.verify(username, password, self.check_seconds)
        except VerificationFailed as exc:
            refused = exc.kind is FailureKind.REJECTED
            check = SmtpCheck.REFUSED if refused else SmtpCheck.UNVERIFIED
            return check, describe(exc)
        return SmtpCheck.ACCEPTED, None


def _ignored(event: SecretEvent, reason: str) -> Handled:
    log.info("event.ignored", reason=reason, **event.log_fields())
    return Handled.IGNORED
