"""The steps of one app's rotation, each a named method you can find from the outside (as
in the AWS rotation templates): check names, create, verify, promote, retire, settle.

Each step does one thing through the ports, logs its event (catalogued in rotation/telemetry/events.py) when it
is done (the reliability suite hooks those events to cancel a run at each step boundary)
and returns what it did; rotation/run/app_run.py decides what comes next and
builds the app's outcome from those results. No step decides what to retire: the policy's
plan says which credentials go and which Key Vault versions are disabled with them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from rotation.core import fencing
from rotation.core.policy import settled
from rotation.core.ports import Directory, SecretStore, Verifier
from rotation.errors import SecretNameDeleted, VaultWriteFailed, describe
from rotation.model import (
    CREDENTIAL_PREFIX,
    USERNAME_SUFFIX,
    AppRecord,
    DeletedName,
    ManagedApp,
    NewSecret,
    Retire,
    RunConfig,
    VaultEntry,
    VaultVersion,
)
from rotation.telemetry import logs, redaction

#: The engine's lines keep one logger name, whichever of its modules writes them.
log = logs.get_logger("rotation.engine")


@dataclass(frozen=True, slots=True)
class NotPromoted:
    """The promotion failed: `error` is why; the new credential was rolled back, or kept
    when Key Vault could not say whether it stored it (`cleanup_failure` then says so)."""

    error: Exception
    cleanup_failure: str | None = None


@dataclass(slots=True)
class Retired:
    """What step 4 did. Filled as it goes, so that a deadline cutting the step short
    still reports what was already removed."""

    removed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    disabled: tuple[str, ...] = ()

    def applied_to(self, record: AppRecord, entry: VaultEntry) -> tuple[AppRecord, VaultEntry]:
        """The app's state once these removals and disables are done."""
        removed = set(self.removed)
        after_record = dataclasses.replace(
            record, credentials=tuple(c for c in record.credentials if c.key_id not in removed)
        )
        after_entry = dataclasses.replace(
            entry,
            versions=tuple(
                dataclasses.replace(v, enabled=False) if v.version in self.disabled else v
                for v in entry.versions
            ),
        )
        return after_record, after_entry


def promoted(
    record: AppRecord, entry: VaultEntry, new: NewSecret, version: VaultVersion
) -> tuple[AppRecord, VaultEntry]:
    """The app's state once the new credential is the current Key Vault version."""
    after_record = dataclasses.replace(record, credentials=(*record.credentials, new.credential))
    return after_record, dataclasses.replace(entry, versions=(version, *entry.versions))


@dataclass(frozen=True, slots=True)
class Steps:
    """The ports each step acts through, and what the run was configured with."""

    config: RunConfig
    directory: Directory
    store: SecretStore
    verifier: Verifier
    clock: Callable[[], datetime]

    async def check_names(
        self,
        app: ManagedApp,
        entry: VaultEntry,
        known: Mapping[str, DeletedName] | None = None,
    ) -> None:
        """Step 0, before any Entra write: the Key Vault names the promotion will write must
        not be held by soft-deleted secrets, or every run would create a secret, verify it,
        fail to store it and roll it back, forever. `known` is the run's listing of deleted
        names; without it each name is asked about."""
        for name in new_names(app, entry):
            if known is not None:
                deleted = known.get(name.lower())
            else:
                deleted = await self.store.deleted(name)
            if deleted is not None:
                raise SecretNameDeleted(self.config.key_vault_url, name, purge_on=deleted.purge_on)

    async def create(
        self, app: ManagedApp, record: AppRecord, lifetime: timedelta | None = None
    ) -> NewSecret:
        """Step 1: a new client secret, lasting `lifetime` (the plan's: the configured one,
        or less under an app-management policy); its text lives only in memory from here on."""
        begin_step("create")
        now = self.clock()
        name = f"{CREDENTIAL_PREFIX} {now:%Y-%m-%dT%H:%M:%SZ}"
        end = now + (lifetime or self.config.rules.lifetime)
        fencing.check()
        new = await self.directory.add_password(record, name, end)
        redaction.register_secret(new.value)
        log.info(
            "credential.created",
            key_id=new.credential.key_id,
            expires=str(new.credential.end),
        )
        return new

    async def verify(self, app: ManagedApp, new: NewSecret, timeout: float) -> int:
        """Step 2: prove the secret with a real SMTP AUTH before anyone can read it.
        Returns the number of attempts it took."""
        begin_step("verify")
        begun = time.monotonic()  # the secret exists from here: this is Entra's propagation
        attempts = await self.verifier.verify(app.smtp_username, new.value, timeout)
        log.info(
            "smtp.verified",
            key_id=new.credential.key_id,
            attempts=attempts,
            seconds=round(time.monotonic() - begun, 3),
        )
        return attempts

    async def promote(self, app: ManagedApp, entry: VaultEntry, new: NewSecret) -> VaultVersion:
        """Step 3: the verified secret becomes the current Key Vault version."""
        begin_step("promote")
        fencing.check()
        version = await self.store.promote(
            app,
            new,
            smtp_host=self.config.smtp_host,
            smtp_port=self.config.smtp_port,
            write_username=writes_username(app, entry),
        )
        log.info("vault.promoted", key_id=new.credential.key_id, version=version.version)
        return version

    async def promote_or_roll_back(
        self, app: ManagedApp, record: AppRecord, entry: VaultEntry, new: NewSecret
    ) -> VaultVersion | NotPromoted:
        """Step 3, and if it fails, the new credential's removal; but only once Key Vault
        says it does not hold it (I1). A lost lease stops it before either write."""
        fencing.check()
        try:
            return await self.promote(app, entry, new)
        except VaultWriteFailed as refused:
            return NotPromoted(refused, await self.rollback(record, new, "vault write refused"))
        except Exception as failure:
            # The write may have landed before the failure: ask Key Vault, not guess (I1).
            try:
                landed = await self._landed(app, new)
            except Exception as exc:
                # Removing it could take away the password Key Vault now serves (I1); if it
                # never got there, the next run removes it as an orphan (I5).
                error = describe(exc)
                log.error("vault.read_failed", error=error)
                return NotPromoted(
                    failure,
                    f"kept {new.credential.key_id}: could not confirm whether Key Vault "
                    f"stored it ({error}); the next run removes it if it did not",
                )
            if landed is None:
                return NotPromoted(failure, await self.rollback(record, new, "vault write failed"))
            return landed

    async def _landed(self, app: ManagedApp, new: NewSecret) -> VaultVersion | None:
        current = (await self.store.read(app.secret_name)).current
        return current if current and current.key_id == new.credential.key_id else None

    async def rollback(self, record: AppRecord, new: NewSecret, why: str) -> str | None:
        """Removes a credential that never reached Key Vault (I3). Shielded: a
        cancellation must not leave the removal half done. A failure is returned, not
        raised: the next run removes the credential as an orphan (I5)."""
        key_id = new.credential.key_id
        fencing.check()  # lost: the credential stays, an orphan the next run removes (I5)
        try:
            await asyncio.shield(self.directory.remove_password(record, key_id))
        except Exception as exc:
            error = describe(exc)
            log.error("credential.rollback_failed", key_id=key_id, error=error)
            return f"rollback of {key_id} failed: {error} (the next run removes it as an orphan)"
        log.warning("credential.rolled_back", key_id=key_id, why=why)
        return None

    async def retire(
        self, app: ManagedApp, record: AppRecord, plan: Retire, done: Retired
    ) -> Retired:
        """Step 4: remove the credentials the plan retires, then disable the Key Vault
        versions the plan names for them (and those already orphaned).

        Every removal is attempted, whatever happened to the one before (as Vault's Azure
        plugin rolls back its WAL); each failure is recorded in `done`, and the next run
        retries."""
        begin_step("retire")
        try:
            for retirement in plan.retire:
                key_id = retirement.credential.key_id
                fencing.check()  # outside the try: a lost lease stops, it is no failed removal
                try:
                    await self.directory.remove_password(record, key_id)
                except Exception as exc:
                    error = describe(exc)
                    done.failures.append(f"removal of {key_id} failed: {error}")
                    log.error("credential.remove_failed", key_id=key_id, error=error)
                    continue
                done.removed.append(key_id)
                log.info("credential.removed", key_id=key_id, reason=retirement.reason)
        finally:
            # Even after a partial failure: a version whose secret is gone must not be served.
            done.disabled = plan.versions_to_disable(done.removed)
            if done.disabled:
                fencing.check()
                await self.store.disable(app.secret_name, list(done.disabled))
                log.info("vault.versions_disabled", versions=len(done.disabled))
        return done

    async def settle(self, app: ManagedApp, record: AppRecord, entry: VaultEntry) -> bool:
        """Marks the current version once nothing is left to retire or disable
        (policy.settled), so that later runs can skip the app's version history. Returns
        whether it set the mark.

        It is the last write of a rotation: a run stopped before it leaves the mark off,
        and the next run reads every version again and finishes the work. Only an
        optimisation, so a refused mark is logged and retried by the next run.
        """
        current = entry.current
        if current is None or current.settled or not settled(record, entry):
            return False
        fencing.check()
        try:
            await self.store.mark_settled(app.secret_name, current)
        except Exception as exc:  # whatever it was, the next run sets the mark
            log.warning("vault.settle_failed", error=describe(exc))
            return False
        log.info("vault.settled", version=current.version)
        return True


def begin_step(step: str) -> None:
    """Tags this app's later log lines with the step under way, so that `app.failed` and
    `app.unfinished` say where it stopped. Each app runs in its own task, whose context
    is its own: the tag never reaches another app's lines."""
    structlog.contextvars.bind_contextvars(step=step)


def new_names(app: ManagedApp, entry: VaultEntry) -> list[str]:
    """The Key Vault names a promotion would write for the first time (the app's first
    rotation) or anew (a changed username): the ones a soft-deleted secret could hold."""
    names = [app.secret_name] if entry.current is None else []
    if writes_username(app, entry):
        names.append(app.secret_name + USERNAME_SUFFIX)
    return names


def writes_username(app: ManagedApp, entry: VaultEntry) -> bool:
    """Whether a promotion (re)writes the `<name>-username` companion secret."""
    current = entry.current
    return current is None or current.smtp_username != app.smtp_username
