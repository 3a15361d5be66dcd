"""Runs the policy's plans: observe, then create -> verify -> promote -> retire per app.

Each step is a named method that logs its event from rotation/events.py when it is done;
the reliability suite hooks those events to cancel a run at each step boundary. Apps run
concurrently up to `max_concurrency`, each inside its own deadline; one app's failure never
stops the others. Whatever happens, the report holds key ids and reasons, never a secret.

Two runs never work on one app at once: each app's steps run under its lease
(rotation/lease.py, across instances) and its busy mark (within this process); an app
another run holds is reported busy and left alone. Crash safety still comes from
ordering, not from the lease: a secret reaches Key Vault only after
SMTP AUTH accepted it (I2); a credential is removed only when policy says so, on state
that includes the promotion (I1, I4); a run killed between create and promote leaves a
credential that the next run recognises as an orphan (I5).

Consumer sites (opt-in): a run scans them once; after a promotion the app's sites are
refreshed and read back (rotation/consumers.py), and the policy alone decides whether
that lets the old secrets go before the grace period ends (`policy.early_retirement`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from rotation import events, logs, redaction
from rotation.errors import (
    FailureKind,
    LeaseTaken,
    RetirementIncomplete,
    RotationError,
    SecretNameDeleted,
    VaultWriteFailed,
    VerificationFailed,
    describe,
    internal_error,
)
from rotation.model import (
    CREDENTIAL_PREFIX,
    Action,
    AppOutcome,
    AppPlan,
    AppRecord,
    ConsumerCheck,
    Credential,
    DeletedName,
    ManagedApp,
    Mode,
    NewSecret,
    Outcome,
    Retirement,
    RunReport,
    VaultEntry,
    VaultVersion,
)
from rotation.policy import (
    Rules,
    early_retirement,
    needs_versions,
    plan_app,
    retirements,
    rotation_reason,
    settled,
    stale_versions,
)
from rotation.ports import Directory, Leases, SecretStore, Verifier
from rotation.settings import USERNAME_SUFFIX, Settings

if TYPE_CHECKING:
    from rotation.consumers import ConsumerScan, ConsumerTracker
    from rotation.discovery import Skipped  # discovery imports the ARM SDK: annotations only

log = logs.get_logger("rotation.engine")

#: Time an app needs beyond SMTP verification: Graph and Key Vault calls, with retries.
STEP_MARGIN_SECONDS = 60.0


def log_internal_error(exc: BaseException) -> None:
    """Logs where a bug happened (file, line, function) without the exception's text."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " < ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames[-6:])
    )
    log.error("app.failed", error=internal_error(exc), error_type=type(exc).__name__, where=where)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Observation:
    app: ManagedApp
    record: AppRecord | None
    entry: VaultEntry

    @property
    def current_credential(self) -> Credential | None:
        """The credential of the password Key Vault serves, while Entra still has it."""
        current = self.entry.current
        if self.record is None or current is None:
            return None
        return self.record.credential(current.key_id)


@dataclass(slots=True)
class _Run:
    report: RunReport
    mode: Mode
    dry_run: bool
    verify_timeout: float
    deadline: float | None  # monotonic time by which every app must be done
    semaphore: asyncio.Semaphore
    # Soft-deleted Key Vault names, listed once when some app will write a new name;
    # None: not listed (each app then asks about its own names).
    deleted: Mapping[str, DeletedName] | None = None
    consumers: ConsumerScan | None = None  # the run's scan of consumer sites (opt-in)
    whole_apps: bool = False  # start an app only if all of its time fits before deadline


class Engine:
    def __init__(
        self,
        settings: Settings,
        directory: Directory,
        store: SecretStore,
        verifier: Verifier,
        *,
        clock: Callable[[], datetime] = utc_now,
        consumers: ConsumerTracker | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.settings = settings
        self.consumers = consumers
        self.leases = leases
        self.rules = Rules.from_settings(settings)
        self.directory = directory
        self.store = store
        self.verifier = verifier
        self.clock = clock
        self.step_margin = STEP_MARGIN_SECONDS  # tests scaled down in time shorten it
        self._busy: set[str] = set()

    def busy(self, app_ids: Sequence[str]) -> list[str]:
        """The given apps that a run in this process is changing right now."""
        return [a for a in app_ids if a.lower() in self._busy]

    # ----- the run ---------------------------------------------------------------------

    async def run(
        self,
        apps: Sequence[ManagedApp],
        *,
        mode: Mode = Mode.DUE,
        dry_run: bool = False,
        verify_timeout: float | None = None,
        budget_seconds: float | None = None,
        on_outcome: Callable[[AppOutcome], None] | None = None,
        skipped: Sequence[Skipped] = (),
        list_vault: bool = True,
        whole_apps: bool = False,
    ) -> RunReport:
        """Plans and (unless `dry_run`) carries out the rotation of `apps`.

        `budget_seconds` bounds the whole run (the HTTP path must answer in time); apps
        it cannot finish are reported as unfinished and the next run completes them.
        `skipped` (senders discovery found but cannot manage) are reported as skipped.
        With `whole_apps` (the timer run) an app starts only while its whole time, the
        verify timeout and the step margin, still fits in the budget: no app is cut
        short, and the run ends before the Functions host would kill it.
        `list_vault`: see `observe`.
        """
        started = time.monotonic()
        run = _Run(
            report=RunReport(uuid.uuid4().hex[:12], mode, dry_run, self.clock()),
            mode=mode,
            dry_run=dry_run,
            verify_timeout=verify_timeout or self.settings.verify_timeout_seconds,
            deadline=started + budget_seconds if budget_seconds is not None else None,
            semaphore=asyncio.Semaphore(self.settings.max_concurrency),
            whole_apps=whole_apps,
        )
        with structlog.contextvars.bound_contextvars(run_id=run.report.run_id):
            log.info("run.started", mode=mode.value, dry_run=dry_run, apps=len(apps))
            if self.leases is not None and apps and not dry_run:
                await self.leases.ready()  # fails closed: no lease store, nothing rotates
            observations = await self._observe_each(apps, run.semaphore, list_vault=list_vault)
            run.deleted = await self._deleted_names(
                [o for o in observations if isinstance(o, Observation)]
            )
            if self.consumers is not None and apps:
                run.consumers = await self.consumers.scan()

            async def one(obs: Observation | AppOutcome) -> AppOutcome:
                if isinstance(obs, AppOutcome):  # its reads failed
                    outcome = obs
                    self._log_finished(None, outcome)
                else:
                    outcome = await self._guarded(run, obs)
                    self._log_finished(obs, outcome)
                if on_outcome is not None:
                    try:
                        on_outcome(outcome)
                    except Exception as exc:  # a progress display must not stop the run
                        log.error("run.on_outcome_failed", error=internal_error(exc))
                return outcome

            outcomes = [
                *await asyncio.gather(*(one(o) for o in observations)),
                *(self._skipped(skip, on_outcome) for skip in skipped),
            ]
            run.report.outcomes = outcomes
            run.report.finished = self.clock()
            counts = run.report.as_dict()["counts"]
            log.info(
                "run.finished",
                mode=mode.value,
                dry_run=dry_run,
                duration_seconds=round(time.monotonic() - started, 3),
                failed=len(run.report.failed),
                rotated=sum(o.outcome is Outcome.ROTATED for o in outcomes),
                unfinished=len(run.report.unfinished),
                counts=counts,
            )
        return run.report

    async def observe(
        self,
        apps: Sequence[ManagedApp],
        semaphore: asyncio.Semaphore | None = None,
        *,
        list_vault: bool = True,
    ) -> list[Observation]:
        """Reads every app from Graph (batched) and its Key Vault entry.

        With `list_vault`, one paged listing of the vault gives every secret's current
        version, and only apps that need their version history (policy.needs_versions:
        their last rotation was not seen to finish, or they have another credential the
        policy may retire) cost a request of their own. Without it (a few named apps)
        each app's versions are read.
        """
        gate = semaphore or asyncio.Semaphore(self.settings.max_concurrency)
        ids = [a.app_id for a in apps]
        listed: dict[str, VaultVersion] | None = None
        if list_vault:
            records, listed = await asyncio.gather(
                self.directory.read_apps(ids), self.store.read_current()
            )
        else:
            records = await self.directory.read_apps(ids)

        async def read(app: ManagedApp) -> VaultEntry:
            if listed is not None:
                current = listed.get(app.secret_name.lower())
                record = records.get(app.app_id.lower())
                if record is None or not needs_versions(record, current):
                    return VaultEntry(app.secret_name, (current,) if current else ())
            async with gate:
                return await self.store.read(app.secret_name)

        entries = await asyncio.gather(*(read(a) for a in apps))
        return [
            Observation(app, records.get(app.app_id.lower()), entry)
            for app, entry in zip(apps, entries, strict=True)
        ]

    async def _observe_each(
        self, apps: Sequence[ManagedApp], gate: asyncio.Semaphore, *, list_vault: bool = True
    ) -> list[Observation | AppOutcome]:
        """`observe` for a run: a failed read fails the apps it concerns (all of them for
        Graph's batch read or the vault listing, one for its own Key Vault read), never
        the run."""
        ids = [a.app_id for a in apps]
        listed: dict[str, VaultVersion] | None = None
        try:
            if list_vault:
                records, listed = await asyncio.gather(
                    self.directory.read_apps(ids), self.store.read_current()
                )
            else:
                records = await self.directory.read_apps(ids)
        except Exception as exc:
            why = describe(exc)
            reason = "could not read the applications from Entra ID or list the Key Vault"
            return [self._read_failed(app, reason, why) for app in apps]

        async def read(app: ManagedApp) -> Observation | AppOutcome:
            record = records.get(app.app_id.lower())
            try:
                if listed is not None:
                    current = listed.get(app.secret_name.lower())
                    if record is None or not needs_versions(record, current):
                        entry = VaultEntry(app.secret_name, (current,) if current else ())
                        return Observation(app, record, entry)
                async with gate:
                    entry = await self.store.read(app.secret_name)
            except Exception as exc:
                reason = "could not read its Key Vault entry"
                return self._read_failed(app, reason, describe(exc))
            return Observation(app, record, entry)

        return list(await asyncio.gather(*(read(a) for a in apps)))

    async def _guarded(self, run: _Run, obs: Observation) -> AppOutcome:
        """One app, isolated: whatever its steps raise (a bug included) is its failure."""
        try:
            return await self._one_app(run, obs)
        except Exception as exc:
            with structlog.contextvars.bound_contextvars(app_id=obs.app.app_id):
                log_internal_error(exc)
                return self._failed(
                    obs.app, Action.NOTHING, "the app could not be processed", internal_error(exc)
                )

    async def _one_app(self, run: _Run, obs: Observation) -> AppOutcome:
        """One app, inside the concurrency gate, its deadline and its busy mark."""
        app = obs.app
        begun = time.monotonic()
        with structlog.contextvars.bound_contextvars(app_id=app.app_id):
            if obs.record is None:
                return self._failed(
                    app,
                    Action.NOTHING,
                    "application not found in Entra ID",
                    f"Graph returned no application {app.app_id}: it was deleted, or the "
                    "rotator's identity cannot see it (with Application.ReadWrite.OwnedBy "
                    "the identity must be one of its owners)",
                )
            check = self._consumer_check(run, obs)
            early = self._early(run, obs.app, check, obs.entry)
            plan = plan_app(
                app, obs.record, obs.entry, self.clock(), self.rules, run.mode, early=early
            )
            outcome = AppOutcome(
                app.app_id, app.secret_name, plan.action, plan.reason, Outcome.UNCHANGED
            )
            outcome.consumers = check
            if plan.action is not Action.NOTHING:
                # Untouched apps are counted in run.finished, not logged one by one: at
                # 10,000 apps those lines were a third of a plan's time (py-spy), and a
                # daily run's bulk in Application Insights.
                log.info("app.planned", action=plan.action.value, reason=plan.reason)
            if run.dry_run or plan.action is Action.NOTHING:
                outcome.outcome = (
                    Outcome.PLANNED if plan.action is not Action.NOTHING else Outcome.UNCHANGED
                )
                if run.dry_run and plan.rotate:
                    await self._plan_names(app, obs.entry, outcome, run.deleted)
                self._warn_if_expiring(obs)
                if not run.dry_run and _unmarked(obs.record, obs.entry):
                    await self._settle_untouched(run, obs.app, obs.record, obs.entry)
                return outcome
            async with run.semaphore:
                await self._execute(run, obs, obs.record, plan, outcome)
            outcome.duration_seconds = time.monotonic() - begun
            if outcome.outcome is not Outcome.ROTATED:
                self._warn_if_expiring(obs)
            return outcome

    async def _execute(
        self, run: _Run, obs: Observation, record: AppRecord, plan: AppPlan, outcome: AppOutcome
    ) -> None:
        key = obs.app.app_id.lower()
        if key in self._busy:
            outcome.outcome = Outcome.BUSY
            outcome.error = "another rotation of this app is under way in this instance"
            log.info("app.busy", holder="this instance")
            return
        allowed = self._time_allowed(run)
        if allowed <= self.step_margin or (run.whole_apps and allowed < self._own_time(run)):
            outcome.outcome = Outcome.UNFINISHED
            outcome.error = "not started: no time left in this run; the next run completes it"
            return
        ends = time.monotonic() + allowed  # this app's own deadline (asyncio.timeout's)
        self._busy.add(key)
        try:
            # The deadline holds the lease's acquisition too: waiting on the lease store is
            # this app's time, not time on top of the run's budget.
            async with asyncio.timeout(allowed), self._lease(key):
                if plan.rotate:
                    await self._rotate(run, obs.app, record, obs.entry, plan, outcome, ends)
                else:
                    await self.retire(obs.app, record, obs.entry, plan.retire, outcome)
                    outcome.outcome = Outcome.RETIRED
        except LeaseTaken as exc:
            outcome.outcome = Outcome.BUSY
            outcome.error = str(exc)
            log.info("app.busy", holder="another run")
        except TimeoutError:
            if outcome.outcome is Outcome.ROTATED:  # promoted: only consumers or retirement cut
                outcome.error = "ran out of time after the promotion; the next run retires"
            else:
                outcome.outcome = Outcome.UNFINISHED
                outcome.error = "ran out of time; the next run completes it"
            log.warning("app.unfinished")  # `step`: the step the deadline cut (bound by it)
        except SecretNameDeleted as exc:
            # Not a failure of ours: an operator must recover (or purge) the name first.
            outcome.outcome = Outcome.BLOCKED
            outcome.error = redaction.scrub(str(exc))
            log.warning("app.blocked", secret_name=exc.name, fix=exc.fix, error=outcome.error)
        except RotationError as exc:
            outcome.outcome = Outcome.FAILED
            outcome.error = redaction.scrub(str(exc))
            log.error("app.failed", error=outcome.error, error_type=type(exc).__name__)
        except Exception as exc:  # a bug (a changed SDK shape, say): this app's failure only
            outcome.outcome = Outcome.FAILED
            outcome.error = internal_error(exc)
            log_internal_error(exc)
        finally:
            self._busy.discard(key)

    async def _settle_untouched(
        self, run: _Run, app: ManagedApp, record: AppRecord, entry: VaultEntry
    ) -> None:
        """Marks an app found finished but unmarked (rotated before the mark existed, or
        its mark refused), under its lease like every write; a held lease means another
        run is at work on the app, and it marks the app when it finishes."""
        key = app.app_id.lower()
        if key in self._busy or self._time_allowed(run) <= self.step_margin:
            return  # another run marks it, or the next one does: a mark is never urgent
        async with run.semaphore:
            try:
                # Bounded like any app's step: 10,000 unmarked apps on the first run after
                # an upgrade must not outlive the run's budget (host.json's functionTimeout).
                async with asyncio.timeout(self.step_margin), self._lease(key):
                    await self.settle(app, record, entry)
            except LeaseTaken:
                return  # the run holding it marks the app when it finishes
            except (RotationError, TimeoutError) as exc:  # the lease store failing, or slow
                log.warning("vault.settle_failed", error=describe(exc))

    def _lease(self, key: str) -> AbstractAsyncContextManager[None]:
        """The app's lease across instances, or nothing when no lease store is set."""
        return self.leases.hold(key) if self.leases is not None else nullcontext()

    def _time_allowed(self, run: _Run) -> float:
        """Seconds this app may take: its own deadline, cut by the run's budget."""
        own = self._own_time(run)
        if run.deadline is None:
            return own
        return min(own, run.deadline - time.monotonic())

    # ----- consumers (opt-in) ------------------------------------------------------------

    def _consumer_check(self, run: _Run, obs: Observation) -> ConsumerCheck | None:
        if run.consumers is None or self.consumers is None:
            return None
        current = obs.entry.current
        return self.consumers.check(obs.app, current.version if current else None, run.consumers)

    def _early(
        self, run: _Run, app: ManagedApp, check: ConsumerCheck | None, entry: VaultEntry
    ) -> str | None:
        """The policy's word on retiring before grace ends (never needed in emergencies)."""
        if run.mode is Mode.EMERGENCY:
            return None
        return early_retirement(check, entry, self.settings.fully_covered(app.app_id))

    def _time_left(self, ends: float) -> float:
        """Seconds the consumer confirmation may take: what is left of the app's own time
        (already cut by the run's budget), less a margin for the retirement that follows."""
        return max(0.0, ends - time.monotonic() - self.step_margin / 2)

    def _own_time(self, run: _Run) -> float:
        """The longest one app may take: SMTP verification, then Graph and Key Vault calls
        (and the consumers' confirmation, when checked)."""
        own = run.verify_timeout + self.step_margin
        if self.consumers is not None:
            own += self.settings.consumer_confirm_timeout_seconds
        return own

    # ----- the four steps ----------------------------------------------------------------

    async def _rotate(
        self,
        run: _Run,
        app: ManagedApp,
        record: AppRecord,
        entry: VaultEntry,
        plan: AppPlan,
        outcome: AppOutcome,
        ends: float,
    ) -> None:
        await self.check_names(app, entry, run.deleted)
        new = await self.create(app, record)
        outcome.new_key_id = new.credential.key_id
        left = ends - time.monotonic()
        verify_timeout = min(run.verify_timeout, left - self.step_margin / 2)
        try:
            await self.verify(app, new, verify_timeout)
        except VerificationFailed as exc:
            await self.rollback(record, new, exc.kind, outcome)
            capped = verify_timeout < self.settings.verify_timeout_seconds
            if capped and exc.kind in (FailureKind.REJECTED, FailureKind.TIMEOUT):
                # A shortened budget cannot tell slow propagation from a real refusal;
                # the next timer run, with the full verify timeout, can.
                outcome.outcome = Outcome.UNFINISHED
                outcome.error = (
                    f"{redaction.scrub(str(exc))} (this run allowed only {verify_timeout:.0f} s; "
                    "the next timer run completes the rotation)"
                )
                return
            raise
        except Exception as exc:  # not proven, so it must not outlive the run (I3)
            await self.rollback(record, new, internal_error(exc), outcome)
            raise
        # The app's own deadline (a hung call) cancels this coroutine outright; a credential
        # it leaves behind was never promoted and goes as an orphan (I5).
        version = await self.promote_or_roll_back(app, record, entry, new, outcome)
        outcome.outcome = Outcome.ROTATED
        outcome.expires = new.credential.end
        after_record = dataclasses.replace(
            record, credentials=(*record.credentials, new.credential)
        )
        after_entry = dataclasses.replace(entry, versions=(version, *entry.versions))
        early = None
        if run.consumers is not None and self.consumers is not None:
            outcome.consumers = await self.consumers.confirm(
                app, version.version, run.consumers, self._time_left(ends)
            )
            early = self._early(run, app, outcome.consumers, after_entry)
        gone = retirements(
            after_record,
            after_entry,
            self.clock(),
            self.rules,
            emergency=plan.retire_all_after_rotation,
            early=early,
        )
        if gone or stale_versions(after_record, after_entry):
            await self.retire(app, after_record, after_entry, gone, outcome)
        else:
            await self.settle(app, after_record, after_entry)

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
        for name in _new_names(app, entry):
            if known is not None:
                deleted = known.get(name.lower())
            else:
                deleted = await self.store.deleted(name)
            if deleted is not None:
                raise SecretNameDeleted(
                    self.settings.key_vault_url, name, purge_on=deleted.purge_on
                )

    async def _plan_names(
        self,
        app: ManagedApp,
        entry: VaultEntry,
        outcome: AppOutcome,
        known: Mapping[str, DeletedName] | None,
    ) -> None:
        """A dry run shows a soft-deleted name as blocked too (reads only)."""
        try:
            await self.check_names(app, entry, known)
        except SecretNameDeleted as exc:
            outcome.outcome = Outcome.BLOCKED
            outcome.error = redaction.scrub(str(exc))

    async def _deleted_names(
        self, observations: Sequence[Observation]
    ) -> Mapping[str, DeletedName] | None:
        """One listing of the vault's soft-deleted names, and only when some app would write
        a name it has not written before (its first rotation, a new username)."""
        if not any(_new_names(o.app, o.entry) for o in observations):
            return {}
        try:
            return await self.store.deleted_names()
        except Exception as exc:  # a bug here too must not cost the run its report
            log.warning("vault.deleted_unlisted", error=describe(exc))
            return None  # each app asks about its own names instead

    async def create(self, app: ManagedApp, record: AppRecord) -> NewSecret:
        """Step 1: a new client secret; its text lives only in memory from here on."""
        _begin_step("create")
        now = self.clock()
        name = f"{CREDENTIAL_PREFIX} {now:%Y-%m-%dT%H:%M:%SZ}"
        new = await self.directory.add_password(record, name, now + self.rules.lifetime)
        redaction.register_secret(new.value)
        log.info(
            events.CREDENTIAL_CREATED.name,
            key_id=new.credential.key_id,
            expires=str(new.credential.end),
        )
        return new

    async def verify(self, app: ManagedApp, new: NewSecret, timeout: float) -> None:
        """Step 2: prove the secret with a real SMTP AUTH before anyone can read it."""
        _begin_step("verify")
        begun = time.monotonic()  # the secret exists from here: this is Entra's propagation
        attempts = await self.verifier.verify(app.smtp_username, new.value, timeout)
        log.info(
            events.SMTP_VERIFIED.name,
            key_id=new.credential.key_id,
            attempts=attempts,
            seconds=round(time.monotonic() - begun, 3),
        )

    async def promote(self, app: ManagedApp, entry: VaultEntry, new: NewSecret) -> VaultVersion:
        """Step 3: the verified secret becomes the current Key Vault version."""
        _begin_step("promote")
        version = await self.store.promote(
            app,
            new,
            smtp_host=self.settings.smtp_host,
            smtp_port=self.settings.smtp_port,
            write_username=_writes_username(app, entry),
        )
        log.info(events.VAULT_PROMOTED.name, key_id=new.credential.key_id, version=version.version)
        return version

    async def promote_or_roll_back(
        self,
        app: ManagedApp,
        record: AppRecord,
        entry: VaultEntry,
        new: NewSecret,
        outcome: AppOutcome | None = None,
    ) -> VaultVersion:
        try:
            return await self.promote(app, entry, new)
        except VaultWriteFailed:
            await self.rollback(record, new, "vault write refused", outcome)
            raise
        except Exception as failure:
            # The write may have landed before the failure: ask Key Vault, not guess (I1).
            try:
                landed = await self._landed(app, new)
            except Exception as exc:
                # Removing it could take away the password Key Vault now serves (I1); if it
                # never got there, the next run removes it as an orphan (I5).
                error = describe(exc)
                log.error("vault.read_failed", error=error)
                if outcome is not None:
                    outcome.cleanup_failures.append(
                        f"kept {new.credential.key_id}: could not confirm whether Key Vault "
                        f"stored it ({error}); the next run removes it if it did not"
                    )
                raise failure from None
            if landed is None:
                await self.rollback(record, new, "vault write failed", outcome)
                raise
            return landed

    async def _landed(self, app: ManagedApp, new: NewSecret) -> VaultVersion | None:
        current = (await self.store.read(app.secret_name)).current
        return current if current and current.key_id == new.credential.key_id else None

    async def rollback(
        self, record: AppRecord, new: NewSecret, why: str, outcome: AppOutcome | None = None
    ) -> None:
        """Removes a credential that never reached Key Vault (I3). Shielded: a
        cancellation must not leave the removal half done. A failure is reported, not
        raised: the next run removes the credential as an orphan (I5)."""
        key_id = new.credential.key_id
        try:
            await asyncio.shield(self.directory.remove_password(record, key_id))
        except Exception as exc:
            error = describe(exc)
            log.error("credential.rollback_failed", key_id=key_id, error=error)
            if outcome is not None:
                outcome.cleanup_failures.append(
                    f"rollback of {key_id} failed: {error} (the next run removes it as an orphan)"
                )
            return
        log.warning(events.CREDENTIAL_ROLLED_BACK.name, key_id=key_id, why=why)

    async def retire(
        self,
        app: ManagedApp,
        record: AppRecord,
        entry: VaultEntry,
        gone: Sequence[Retirement],
        outcome: AppOutcome,
    ) -> None:
        """Step 4: remove superseded credentials and disable the versions that held them;
        then, if nothing is left to do, mark the rotation finished.

        Every removal is attempted, whatever happened to the one before (as Vault's Azure
        plugin rolls back its WAL); each failure is reported, and the next run retries."""
        _begin_step("retire")
        failures: list[str] = []
        try:
            for retirement in gone:
                key_id = retirement.credential.key_id
                try:
                    await self.directory.remove_password(record, key_id)
                except Exception as exc:
                    error = describe(exc)
                    failures.append(f"removal of {key_id} failed: {error}")
                    log.error("credential.remove_failed", key_id=key_id, error=error)
                    continue
                outcome.removed_key_ids.append(key_id)
                log.info(events.CREDENTIAL_REMOVED.name, key_id=key_id, reason=retirement.reason)
        finally:
            outcome.cleanup_failures.extend(failures)
            # Even after a partial failure: a version whose secret is gone must not be served.
            removed = set(outcome.removed_key_ids)
            stale = [v.version for v in entry.versions if v.enabled and v.key_id in removed]
            stale += [v for v in stale_versions(record, entry) if v not in stale]
            if stale:
                await self.store.disable(app.secret_name, stale)
                log.info("vault.versions_disabled", versions=len(stale))
        after_record = dataclasses.replace(
            record, credentials=tuple(c for c in record.credentials if c.key_id not in removed)
        )
        after_entry = dataclasses.replace(
            entry,
            versions=tuple(
                dataclasses.replace(v, enabled=False) if v.version in stale else v
                for v in entry.versions
            ),
        )
        await self.settle(app, after_record, after_entry)
        if failures:
            raise RetirementIncomplete(
                f"{len(failures)} of {len(gone)} old credential(s) could not be removed "
                "(the next run tries again): " + "; ".join(failures)
            )

    async def settle(self, app: ManagedApp, record: AppRecord, entry: VaultEntry) -> None:
        """Marks the current version once nothing is left to retire or disable
        (policy.settled), so that later runs can skip the app's version history.

        It is the last write of a rotation: a run stopped before it leaves the mark off,
        and the next run reads every version again and finishes the work. Only an
        optimisation, so a refused mark is logged and retried by the next run.
        """
        current = entry.current
        if current is None or current.settled or not settled(record, entry):
            return
        try:
            await self.store.mark_settled(app.secret_name, current)
        except Exception as exc:  # whatever it was, the next run sets the mark
            log.warning("vault.settle_failed", error=describe(exc))
            return
        log.info("vault.settled", version=current.version)

    # ----- helpers -----------------------------------------------------------------------

    def _read_failed(self, app: ManagedApp, reason: str, error: str) -> AppOutcome:
        with structlog.contextvars.bound_contextvars(app_id=app.app_id, step="observe"):
            return self._failed(app, Action.NOTHING, reason, error)

    def _failed(self, app: ManagedApp, action: Action, reason: str, error: str) -> AppOutcome:
        _begin_step("observe")
        log.error("app.failed", error=error)
        return AppOutcome(app.app_id, app.secret_name, action, reason, Outcome.FAILED, error=error)

    def _skipped(
        self, skip: Skipped, on_outcome: Callable[[AppOutcome], None] | None
    ) -> AppOutcome:
        """A sender this rotator cannot manage: shown with the reason, never failed."""
        outcome = AppOutcome(skip.app_id, "", Action.NOTHING, skip.reason, Outcome.SKIPPED)
        with structlog.contextvars.bound_contextvars(app_id=skip.app_id):
            log.info("app.skipped", reason=skip.reason)
            self._log_finished(None, outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    def _log_finished(self, obs: Observation | None, outcome: AppOutcome) -> None:
        """One line per app per run, whatever happened: what the workbook's expiry timeline
        and run history read (rotation/events.py, APP_FINISHED)."""
        expires = outcome.expires if outcome.outcome is Outcome.ROTATED else None
        if expires is None and obs is not None:
            credential = obs.current_credential
            expires = credential.end if credential else None
        days_left = (expires - self.clock()).total_seconds() / 86400 if expires else None
        log.info(
            "app.finished",
            app_id=outcome.app_id,
            outcome=outcome.outcome.value,
            action=outcome.action.value,
            reason=outcome.reason,
            error=outcome.error,
            expires=expires.isoformat() if expires else None,
            days_left=None if days_left is None else round(days_left, 1),
            rotate_before_days=self.rules.rotate_before.days,
        )

    def _warn_if_expiring(self, obs: Observation) -> None:
        """Warns when an app is due and this run did not rotate it (a dry run, a failure):
        "due" is the policy's decision (`rotation_reason`), as in plan and status."""
        record = obs.record
        if record is None:
            return
        now = self.clock()
        reason = rotation_reason(record, obs.entry, now, self.rules, Mode.DUE)
        if reason is None:
            return
        credential = obs.current_credential
        days_left = None
        if credential is not None and credential.end is not None:
            days_left = round((credential.end - now).total_seconds() / 86400, 1)
        log.warning(
            "app.expiry_near",
            days_left=days_left,
            key_id=credential.key_id if credential else None,
            reason=reason,
        )


def _begin_step(step: str) -> None:
    """Tags this app's later log lines with the step under way, so that `app.failed` and
    `app.unfinished` say where it stopped. Each app runs in its own task, whose context
    is its own: the tag never reaches another app's lines."""
    structlog.contextvars.bind_contextvars(step=step)


def _new_names(app: ManagedApp, entry: VaultEntry) -> list[str]:
    """The Key Vault names a promotion would write for the first time (the app's first
    rotation) or anew (a changed username): the ones a soft-deleted secret could hold."""
    names = [app.secret_name] if entry.current is None else []
    if _writes_username(app, entry):
        names.append(app.secret_name + USERNAME_SUFFIX)
    return names


def _writes_username(app: ManagedApp, entry: VaultEntry) -> bool:
    """Whether a promotion (re)writes the `<name>-username` companion secret."""
    current = entry.current
    return current is None or current.smtp_username != app.smtp_username


def _unmarked(record: AppRecord, entry: VaultEntry) -> bool:
    current = entry.current
    return current is not None and not current.settled and settled(record, entry)
