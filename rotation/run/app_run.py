"""One app's plan, carried out: the policy decides, then the steps run in order under
the app's busy mark (within this process), its lease (rotation/azure/blob_lease.py, across
instances) and its own deadline.

The steps (rotation/run/steps.py) each return what they did; `_Progress` collects those
results and builds the app's outcome in one place (`_Progress.outcome`). Crash safety
comes from ordering, not from the lease: a secret reaches Key Vault only after SMTP AUTH
accepted it (I2); a credential is removed only when policy says so, on state that
includes the promotion (I1, I4); a run killed between create and promote leaves a
credential that the next run recognises as an orphan (I5).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import traceback
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from rotation import ncrontab
from rotation.core import drift
from rotation.core.policy import (
    early_retirement,
    plan_app,
    retirement_plan,
    rotation_reason,
    settled,
)
from rotation.core.ports import Leases
from rotation.errors import (
    FailureKind,
    LeaseLost,
    LeaseTaken,
    PasswordAdditionBlocked,
    RetirementIncomplete,
    RotationError,
    SecretNameDeleted,
    VerificationFailed,
    describe,
    internal_error,
)
from rotation.model import (
    MANAGED_BY,
    NOT_STARTED,
    Action,
    AppOutcome,
    AppPlan,
    AppRecord,
    ConsumerCheck,
    Credential,
    DeletedName,
    Keep,
    ManagedApp,
    Mode,
    NewSecret,
    Outcome,
    PasswordPolicies,
    Retire,
    Rotate,
    RunOptions,
    RunReport,
    SmtpCheck,
    VaultEntry,
    longest_app_seconds,
)
from rotation.run.observe import Observation
from rotation.run.steps import NotPromoted, Retired, Steps, begin_step, promoted
from rotation.telemetry import logs

if TYPE_CHECKING:
    from rotation.run.consumers import ConsumerScan, ConsumerTracker

#: The engine's lines keep one logger name, whichever of its modules writes them.
log = logs.get_logger("rotation.engine")

#: Scheduled runs an app may stay due and unstarted before its report says so (several:
#: one or two are a first run spreading over thousands of apps).
UNSTARTED_RUNS_REPORTED = 3

#: How an app's work ended: its outcome, and the error the report shows with it.
Ended = tuple[Outcome, str | None]


def log_internal_error(exc: BaseException) -> None:
    """Logs where a bug happened (file, line, function) without the exception's text."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " < ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames[-6:])
    )
    log.error("app.failed", error=internal_error(exc), error_type=type(exc).__name__, where=where)


def failed(app: ManagedApp, action: Action, reason: str, error: str) -> AppOutcome:
    """An app that failed before (or outside) its plan: unreadable, or a bug."""
    begin_step("observe")
    log.error("app.failed", error=error)
    return AppOutcome(app.app_id, app.secret_name, action, reason, Outcome.FAILED, error=error)


@dataclass(slots=True)
class RunState:
    """What every app of one run shares."""

    report: RunReport
    options: RunOptions
    verify_timeout: float
    deadline: float | None  # monotonic time by which every app must be done
    semaphore: asyncio.Semaphore
    # Soft-deleted Key Vault names, listed once when some app will write a new name;
    # None: not listed (each app then asks about its own names).
    deleted: Mapping[str, DeletedName] | None = None
    consumers: ConsumerScan | None = None  # the run's scan of consumer sites (opt-in)
    # The tenant's app-management policies, read once when some app is due (None: not read).
    passwords: PasswordPolicies | None = None


@dataclass(frozen=True, slots=True)
class _Job:
    """One app at work: what each of its steps needs."""

    app: ManagedApp
    record: AppRecord
    entry: VaultEntry
    ends: float  # monotonic time: the app's own deadline (asyncio.timeout's)


@dataclass(slots=True)
class _Progress:
    """The results of one app's steps so far, from which its outcome is built."""

    consumers: ConsumerCheck | None  # only when consumer tracking is on
    new: Credential | None = None  # step 1's credential
    promoted: bool = False  # step 3 done
    retired: Retired = field(default_factory=Retired)  # step 4's removals
    rollback_failures: list[str] = field(default_factory=list)
    held_by: str | None = None  # busy: the run holding the app, when known

    def note(self, failure: str | None) -> None:
        if failure is not None:
            self.rollback_failures.append(failure)

    def outcome(
        self, plan: AppPlan, status: Outcome, error: str | None, seconds: float = 0.0
    ) -> AppOutcome:
        """The one place an app's outcome is built (apps that reached the policy)."""
        return AppOutcome(
            plan.app.app_id,
            plan.app.secret_name,
            plan.action,
            plan.reason,
            status,
            new_key_id=self.new.key_id if self.new else None,
            removed_key_ids=list(self.retired.removed),
            expires=self.new.end if self.new and self.promoted else None,
            duration_seconds=seconds,
            error=error,
            consumers=self.consumers,
            cleanup_failures=[*self.rollback_failures, *self.retired.failures],
            held_by=self.held_by,
        )


class AppRunner:
    """Plans one app and carries its plan out (see the module docstring)."""

    def __init__(
        self,
        steps: Steps,
        *,
        consumers: ConsumerTracker | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.steps = steps
        self.config = steps.config
        self.rules = steps.config.rules
        self.clock = steps.clock
        self.consumers = consumers
        self.leases = leases
        self.step_margin = steps.config.step_margin
        self._busy: dict[str, str] = {}  # app id (lower case) -> the run at work on it

    def busy(self, app_ids: Sequence[str]) -> list[str]:
        """The given apps that a run in this process is changing right now."""
        return [a for a in app_ids if a.lower() in self._busy]

    async def one(self, run: RunState, obs: Observation) -> AppOutcome:
        """One app: the policy's plan, carried out inside the concurrency gate."""
        app, record = obs.app, obs.record
        begun = time.monotonic()
        with structlog.contextvars.bound_contextvars(app_id=app.app_id):
            if record is None:
                return failed(
                    app,
                    Action.NOTHING,
                    "application not found in Entra ID",
                    f"Graph returned no application {app.app_id}: it was deleted, or the "
                    "rotator's identity cannot see it (with Application.ReadWrite.OwnedBy "
                    "the identity must be one of its owners)",
                )
            progress = _Progress(consumers=self._consumer_check(run, obs))
            early = self._early(run, app, progress.consumers, obs.entry)
            now = self.clock()
            plan = plan_app(
                app,
                record,
                obs.entry,
                now,
                self.rules,
                run.options.mode,
                early=early,
                passwords=run.passwords,
                requested=run.options.because,
                resolve_drift=run.options.resolves_drift(app.app_id),
            )
            if not run.options.resolves_drift(app.app_id):
                _report_drift(obs.entry)
            if not isinstance(plan, Keep):
                # Untouched apps are counted in run.finished, not logged one by one: at
                # 10,000 apps those lines were a third of a plan's time (py-spy), and a
                # daily run's bulk in Application Insights.
                log.info("app.planned", action=plan.action.value, reason=plan.reason)
            if isinstance(plan, Keep) or run.options.dry_run:
                return progress.outcome(plan, *await self._unchanged(run, obs, record, plan))
            async with run.semaphore:
                status, error = await self._execute(run, obs, record, plan, progress)
            if status is not Outcome.ROTATED:
                self._warn_if_expiring(obs)
            return progress.outcome(plan, status, error, time.monotonic() - begun)

    async def _unchanged(
        self, run: RunState, obs: Observation, record: AppRecord, plan: AppPlan
    ) -> Ended:
        """An app this run does not change: nothing to do, or a dry run's plan (which shows
        a soft-deleted name as blocked too: reads only)."""
        ended: Ended = (Outcome.UNCHANGED if isinstance(plan, Keep) else Outcome.PLANNED, None)
        if isinstance(plan, Rotate):  # in a dry run: would it be refused?
            blocked = str(plan.blocked) if plan.blocked else None
            blocked = blocked or await self._blocked_name(obs.app, obs.entry, run.deleted)
            if blocked is not None:
                ended = (Outcome.BLOCKED, blocked)
        self._warn_if_expiring(obs)
        if not run.options.dry_run and _unmarked(record, obs.entry):
            await self._settle_untouched(run, obs.app, record, obs.entry)
        return ended

    async def _execute(
        self,
        run: RunState,
        obs: Observation,
        record: AppRecord,
        plan: Rotate | Retire,
        progress: _Progress,
    ) -> Ended:
        """The plan under the app's busy mark, lease and deadline."""
        key = obs.app.app_id.lower()
        allowed = self._time_allowed(run)
        refused = self._not_started(run, obs, allowed, progress)
        if refused is not None:
            return refused
        job = _Job(obs.app, record, obs.entry, ends=time.monotonic() + allowed)
        self._busy[key] = run.report.run_id
        try:
            # The deadline holds the lease's acquisition too: waiting on the lease store is
            # this app's time, not time on top of the run's budget.
            async with asyncio.timeout(allowed), self._lease(key, run):
                match plan:
                    case Rotate():
                        return await self._rotate(run, job, plan, progress)
                    case Retire():
                        await self._retire(job, plan, progress)
                        return Outcome.RETIRED, None
        except Exception as exc:
            return _stopped(exc, progress)
        finally:
            self._busy.pop(key, None)

    def _not_started(
        self, run: RunState, obs: Observation, allowed: float, progress: _Progress
    ) -> Ended | None:
        """Why the app does not start now, if it does not: this process is already at work
        on it, or its time does not fit in what is left of the run."""
        holder = self._busy.get(obs.app.app_id.lower())
        if holder is not None:
            log.info("app.busy", holder="this instance", held_by=holder)
            progress.held_by = holder
            return (
                Outcome.BUSY,
                f"run {holder} in this instance is rotating this app; it is left to that run",
            )
        whole = run.options.whole_apps and allowed < self._own_time(run)
        if allowed <= self.step_margin or whole:
            return Outcome.UNFINISHED, self._left_out(obs, scheduled=run.options.whole_apps)
        return None

    def _left_out(self, obs: Observation, *, scheduled: bool) -> str:
        """The error of an app the run had no time for. One that a timer run leaves out
        after several scheduled runs that could have reached it is said to be so: each of
        those runs left it unstarted (or failed it), and the next is no likelier to reach it.
        The count is derived, not stored: the scheduled times, read from ROTATION_SCHEDULE,
        since the later of when its secret fell due (its end less ROTATION_ROTATE_BEFORE_DAYS)
        and the oldest version the rotator itself wrote (tagged `managed-by`): before that
        no run of ours could have rotated it. An app the rotator never wrote is not named:
        nothing unstored tells when a run first met it (onboarded apps long past due would
        alert at once), so such an app shows only as unfinished until its first rotation.
        HTTP runs are not scheduled runs and name none. An app Key Vault holds no password
        for yet has no such date either (app.expiry_near is)."""
        plain = f"{NOT_STARTED}; the next run completes it"
        credential = obs.current_credential
        end = credential.end if credential else None
        ours = [v.created for v in obs.entry.versions if v.tags.get("managed-by") == MANAGED_BY]
        if not scheduled or end is None or not ours:
            return plain
        due, now = end - self.rules.rotate_before, self.clock()
        since = max(due, min(ours), now - timedelta(days=366))  # a year is plenty
        runs = ncrontab.fired(self.config.schedule, since, now, at_most=100)
        if runs < UNSTARTED_RUNS_REPORTED:
            return plain
        log.warning("app.left_unstarted", runs=runs, due_since=due.isoformat())
        return (
            f"{NOT_STARTED}, again: due since {due:%Y-%m-%d %H:%M} UTC, {runs} scheduled runs "
            "ago, and no run has rotated it; give the timer more time (host.json "
            "functionTimeout, ROTATION_MAX_CONCURRENCY) or rotate it by name"
        )

    async def _rotate(self, run: RunState, job: _Job, plan: Rotate, progress: _Progress) -> Ended:
        if plan.blocked is not None:  # the app's policy forbids it: nothing is written
            error = str(plan.blocked)
            log.warning(
                "app.blocked", secret_name=job.app.secret_name, fix=plan.blocked.fix, error=error
            )
            return Outcome.BLOCKED, error
        await self.steps.check_names(job.app, job.entry, run.deleted)
        new = await self.steps.create(job.app, job.record, plan.lifetime)
        progress.new = new.credential
        unproven = await self._verify(run, job, new, progress)
        if unproven is not None:
            return Outcome.UNFINISHED, unproven
        # The app's own deadline (a hung call) cancels this coroutine outright; a credential
        # it leaves behind was never promoted and goes as an orphan (I5).
        version = await self.steps.promote_or_roll_back(job.app, job.record, job.entry, new)
        if isinstance(version, NotPromoted):
            progress.note(version.cleanup_failure)
            raise version.error
        progress.promoted = True
        record, entry = promoted(job.record, job.entry, new, version)
        after = dataclasses.replace(job, record=record, entry=entry)
        await self._after_promotion(run, after, plan, progress)
        return Outcome.ROTATED, None

    async def _after_promotion(
        self, run: RunState, job: _Job, plan: Rotate, progress: _Progress
    ) -> None:
        """Consumers confirm the new version (opt-in); then step 4 as the policy decides it
        on the state after the promotion, or only the settled mark."""
        early = None
        current = job.entry.current
        if run.consumers is not None and self.consumers is not None and current is not None:
            progress.consumers = await self.consumers.confirm(
                job.app, current.version, run.consumers, self._time_left(job.ends)
            )
            early = self._early(run, job.app, progress.consumers, job.entry)
        now = self.clock()
        follow = retirement_plan(
            job.app, job.record, job.entry, now, self.rules, emergency=plan.emergency, early=early
        )
        if follow is None:
            await self.steps.settle(job.app, job.record, job.entry)
        else:
            await self._retire(job, follow, progress)

    async def _verify(
        self, run: RunState, job: _Job, new: NewSecret, progress: _Progress
    ) -> str | None:
        """Step 2; an unproven secret is rolled back (I3). Returns why the rotation is left
        to the next run when this run's shortened verify time could not tell."""
        timeout = min(run.verify_timeout, job.ends - time.monotonic() - self.step_margin / 2)
        try:
            await self.steps.verify(job.app, new, timeout)
        except VerificationFailed as exc:
            progress.note(await self.steps.rollback(job.record, new, exc.kind))
            capped = timeout < self.config.verify_timeout_seconds
            if capped and exc.kind in (FailureKind.REJECTED, FailureKind.TIMEOUT):
                # A shortened budget cannot tell slow propagation from a real refusal;
                # the next timer run, with the full verify timeout, can.
                return (
                    f"{describe(exc)} (this run allowed only {timeout:.0f} s; "
                    "the next timer run completes the rotation)"
                )
            raise
        except Exception as exc:  # not proven, so it must not outlive the run (I3)
            progress.note(await self.steps.rollback(job.record, new, internal_error(exc)))
            raise
        return None

    async def _retire(self, job: _Job, plan: Retire, progress: _Progress) -> None:
        """Step 4, then the settled mark if nothing is left to do."""
        done = await self.steps.retire(job.app, job.record, plan, progress.retired)
        await self.steps.settle(job.app, *done.applied_to(job.record, job.entry))
        if done.failures:
            raise RetirementIncomplete(
                f"{len(done.failures)} of {len(plan.retire)} old credential(s) could not be "
                "removed (the next run tries again): " + "; ".join(done.failures)
            )

    async def _blocked_name(
        self, app: ManagedApp, entry: VaultEntry, known: Mapping[str, DeletedName] | None
    ) -> str | None:
        try:
            await self.steps.check_names(app, entry, known)
        except SecretNameDeleted as exc:
            return describe(exc)
        return None

    async def _settle_untouched(
        self, run: RunState, app: ManagedApp, record: AppRecord, entry: VaultEntry
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
                async with asyncio.timeout(self.step_margin), self._lease(key, run):
                    await self.steps.settle(app, record, entry)
            except LeaseTaken:
                return  # the run holding it marks the app when it finishes
            except (RotationError, TimeoutError) as exc:  # the lease store failing, or slow
                log.warning("vault.settle_failed", error=describe(exc))

    def _lease(self, key: str, run: RunState) -> AbstractAsyncContextManager[None]:
        """The app's lease across instances (held in the name of this run), or nothing when
        no lease store is set."""
        if self.leases is None:
            return nullcontext()
        return self.leases.hold(key, run.report.run_id)

    def _time_allowed(self, run: RunState) -> float:
        """Seconds this app may take: its own deadline, cut by the run's budget."""
        own = self._own_time(run)
        if run.deadline is None:
            return own
        return min(own, run.deadline - time.monotonic())

    def _time_left(self, ends: float) -> float:
        """Seconds the consumer confirmation may take: what is left of the app's own time
        (already cut by the run's budget), less a margin for the retirement that follows."""
        return max(0.0, ends - time.monotonic() - self.step_margin / 2)

    def _own_time(self, run: RunState) -> float:
        """The longest one app may take: SMTP verification, then Graph and Key Vault calls
        (and the consumers' confirmation, when checked)."""
        checked = self.consumers is not None
        confirm = self.config.consumer_confirm_timeout_seconds if checked else None
        return longest_app_seconds(run.verify_timeout, confirm, self.step_margin)

    def _consumer_check(self, run: RunState, obs: Observation) -> ConsumerCheck | None:
        if run.consumers is None or self.consumers is None:
            return None
        current = obs.entry.current
        return self.consumers.check(obs.app, current.version if current else None, run.consumers)

    def _early(
        self, run: RunState, app: ManagedApp, check: ConsumerCheck | None, entry: VaultEntry
    ) -> str | None:
        """The policy's word on retiring before grace ends (never needed in emergencies)."""
        if run.options.mode is Mode.EMERGENCY:
            return None
        return early_retirement(check, entry, self.config.covers(app.app_id))

    def _warn_if_expiring(self, obs: Observation) -> None:
        """Warns when an app is due and this run did not rotate it (a dry run, a failure):
        "due" is the policy's decision (`rotation_reason`), as in plan and status."""
        record = obs.record
        if record is None:
            return
        entry, blocked_by = obs.entry, ""
        if drift.drift(entry) is not None:
            # The hand-written version's credential is unknown (vault.drift_detected says
            # so); the last proven one still expires, and drift keeps it from being replaced.
            entry, blocked_by = drift.before(entry), "drift blocks its rotation; "
            if entry.current is None or record.credential(entry.current.key_id) is None:
                return
        now = self.clock()
        reason = rotation_reason(record, entry, now, self.rules, Mode.DUE)
        if reason is None:
            return
        credential = record.credential(entry.current.key_id) if entry.current else None
        days_left = None
        if credential is not None and credential.end is not None:
            days_left = round((credential.end - now).total_seconds() / 86400, 1)
        log.warning(
            "app.expiry_near",
            days_left=days_left,
            key_id=credential.key_id if credential else None,
            reason=blocked_by + reason,
        )


def _report_drift(entry: VaultEntry) -> None:
    """A run that finds drift says so with the event the alert watches, once per app per run:
    with Key Vault events off (the default) or an event lost, nothing else would. A run
    checks nothing by SMTP: `smtp` and `marked` are what the version's tags record."""
    found = drift.drift(entry)
    if found is None:
        return
    unchecked = "not checked by SMTP AUTH: no Key Vault event for it reached the rotator"
    fields = {
        "secret_name": entry.name,
        "vault_version": found.version,
        "appeared": found.appeared.isoformat(timespec="seconds"),
        "smtp": found.smtp.value,
        "error": unchecked if found.seen is None else None,
        "marked": found.seen is not None,
    }
    if found.smtp is SmtpCheck.ACCEPTED:  # the same levels as the event handler's check
        log.warning("vault.drift_detected", **fields)
    else:
        log.error("vault.drift_detected", **fields)


def _stopped(exc: Exception, progress: _Progress) -> Ended:
    """How an app's work ends when a step raised: busy, out of time, blocked, or failed."""
    if isinstance(exc, LeaseTaken):
        log.info("app.busy", holder="another run", held_by=exc.run_id)
        progress.held_by = exc.run_id
        return Outcome.BUSY, describe(exc)
    if isinstance(exc, LeaseLost):
        # Stopped before its next write (rotation/core/fencing.py): another run may hold
        # the app now; the next run finishes what is left (I5 removes an unproven secret).
        error = describe(exc)
        log.warning("app.unfinished", error=error)
        if progress.promoted:
            return Outcome.ROTATED, f"lost its lease after the promotion: {error}"
        return Outcome.UNFINISHED, error
    if isinstance(exc, TimeoutError):
        log.warning("app.unfinished")  # `step`: the step the deadline cut (bound by it)
        if progress.promoted:  # only the consumers or the retirement were cut
            return Outcome.ROTATED, "ran out of time after the promotion; the next run retires"
        return Outcome.UNFINISHED, "ran out of time; the next run completes it"
    if isinstance(exc, SecretNameDeleted):
        # Not a failure of ours: an operator must recover (or purge) the name first.
        error = describe(exc)
        log.warning("app.blocked", secret_name=exc.name, fix=exc.fix, error=error)
        return Outcome.BLOCKED, error
    if isinstance(exc, PasswordAdditionBlocked):  # Graph refused it: a policy we did not see
        error = describe(exc)
        log.warning("app.blocked", secret_name="", fix=exc.fix, error=error)
        return Outcome.BLOCKED, error
    if isinstance(exc, RotationError):
        error = describe(exc)
        log.error("app.failed", error=error, error_type=type(exc).__name__)
        return Outcome.FAILED, error
    # A bug (a changed SDK shape, say): this app's failure only.
    log_internal_error(exc)
    return Outcome.FAILED, internal_error(exc)


def _unmarked(record: AppRecord, entry: VaultEntry) -> bool:
    current = entry.current
    return current is not None and not current.settled and settled(record, entry)
