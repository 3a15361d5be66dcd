"""Runs the policy's plans over every app: observe, then each app's plan, then the report.

The run reads every app at once (rotation/run/observe.py), lists soft-deleted names and scans
consumer sites (opt-in) once, then hands each app to `AppRunner` (rotation/run/app_run.py),
which plans it and carries out its steps (rotation/run/steps.py; each logs its event, catalogued in
rotation/telemetry/events.py, which the reliability suite hooks to cancel a run at each step
boundary). Apps run concurrently up to `max_concurrency`, each inside its own deadline;
one app's failure, a bug included, never stops the others. Whatever happens, the report
holds key ids and reasons, never a secret.

Two runs never work on one app at once: each app's steps run under its lease
(rotation/azure/blob_lease.py, across instances) and its busy mark (within this process); an app
another run holds is reported busy and left alone.

Consumer sites (opt-in): a run scans them once; after a promotion the app's sites are
refreshed and read back (rotation/run/consumers.py), and the policy alone decides whether
that lets the old secrets go before the grace period ends (`policy.early_retirement`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from rotation.core.policy import rotation_reason
from rotation.core.ports import Directory, Leases, SecretStore, Verifier
from rotation.errors import describe, internal_error
from rotation.model import (
    Action,
    AppOutcome,
    DeletedName,
    ManagedApp,
    Outcome,
    PasswordPolicies,
    RunConfig,
    RunOptions,
    RunReport,
    VaultVersion,
)
from rotation.run.app_run import AppRunner, RunState, failed, log_internal_error
from rotation.run.discovery import Skipped
from rotation.run.observe import Listing, Observation, Reader, Unobserved
from rotation.run.steps import Steps, new_names
from rotation.telemetry import logs

if TYPE_CHECKING:
    from rotation.run.consumers import ConsumerTracker

log = logs.get_logger("rotation.engine")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        config: RunConfig,
        directory: Directory,
        store: SecretStore,
        verifier: Verifier,
        *,
        clock: Callable[[], datetime] = utc_now,
        consumers: ConsumerTracker | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.config = config
        self.consumers = consumers
        self.rules = config.rules
        self.clock = clock
        self.reader = Reader(directory, store, config.max_concurrency)
        self.steps = Steps(config, directory, store, verifier, clock)
        self.runner = AppRunner(self.steps, consumers=consumers, leases=leases)

    def busy(self, app_ids: Sequence[str]) -> list[str]:
        """The given apps that a run in this process is changing right now."""
        return self.runner.busy(app_ids)

    def start_listing(self) -> asyncio.Future[dict[str, VaultVersion]]:
        """The vault-wide listing, started now, to run beside discovery (Reader.start_listing)."""
        return self.reader.start_listing()

    async def observe(
        self,
        apps: Sequence[ManagedApp],
        *,
        list_vault: bool = True,
        listing: Listing | None = None,
    ) -> list[Observation | Unobserved]:
        """Every app's Entra record and Key Vault entry (rotation/run/observe.py); an app
        whose own answers cannot be used comes back `Unobserved`, with the reason."""
        return await self.reader.observe(apps, list_vault=list_vault, listing=listing)

    async def run(
        self,
        apps: Sequence[ManagedApp],
        options: RunOptions,
        *,
        skipped: Sequence[Skipped] = (),
        on_outcome: Callable[[AppOutcome], None] | None = None,
        listing: Listing | None = None,
    ) -> RunReport:
        """Plans and (unless `options.dry_run`) carries out the rotation of `apps`.

        `options.budget_seconds` bounds the whole run (the HTTP path must answer in time);
        apps it cannot finish are reported as unfinished and the next run completes them.
        `skipped` (senders discovery found but cannot manage) are reported as skipped.
        With `options.whole_apps` (the timer run) an app starts only while its whole time,
        the verify timeout and the step margin, still fits in the budget: no app is cut
        short, and the run ends before the Functions host would kill it. Named apps
        (`options.app_ids`) read their own Key Vault versions instead of a listing of the
        whole vault (see rotation/run/observe.py); `listing` is that listing when the caller
        started it already (beside discovery: `start_listing`).
        """
        started = time.monotonic()
        run = self._start(options, started)
        with structlog.contextvars.bound_contextvars(run_id=run.report.run_id):
            log.info(
                "run.started", mode=options.mode.value, dry_run=options.dry_run, apps=len(apps)
            )
            observations = await self._prepare(run, apps, listing)
            outcomes = [
                *await asyncio.gather(*(self._report(run, o, on_outcome) for o in observations)),
                *(self._skipped(skip, on_outcome) for skip in skipped),
            ]
            self._finish(run, outcomes, started)
        return run.report

    def _start(self, options: RunOptions, started: float) -> RunState:
        budget = options.budget_seconds
        return RunState(
            report=RunReport(
                uuid.uuid4().hex[:12],
                options.mode,
                options.dry_run,
                self.clock(),
                requested_by=options.requested_by,
            ),
            options=options,
            verify_timeout=options.verify_timeout or self.config.verify_timeout_seconds,
            deadline=started + budget if budget is not None else None,
            semaphore=asyncio.Semaphore(self.config.max_concurrency),
        )

    async def _prepare(
        self, run: RunState, apps: Sequence[ManagedApp], listing: Listing | None
    ) -> list[Observation | AppOutcome]:
        """The run's reads: every app observed, the soft-deleted names and consumer sites."""
        if self.runner.leases is not None and apps and not run.options.dry_run:
            await self.runner.leases.ready()  # fails closed: no lease store, nothing rotates
        observations = await self.reader.observe_each(
            apps, self._read_failed, list_vault=not run.options.app_ids, listing=listing
        )
        observed = [o for o in observations if isinstance(o, Observation)]
        run.deleted = await self._deleted_names(observed)
        run.passwords = await self._password_policies(run, observed)
        if self.consumers is not None and apps:
            run.consumers = await self.consumers.scan()
        return observations

    async def _report(
        self,
        run: RunState,
        obs: Observation | AppOutcome,
        on_outcome: Callable[[AppOutcome], None] | None,
    ) -> AppOutcome:
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

    def _finish(self, run: RunState, outcomes: list[AppOutcome], started: float) -> None:
        run.report.outcomes = outcomes
        run.report.finished = self.clock()
        log.info(
            "run.finished",
            mode=run.options.mode.value,
            dry_run=run.options.dry_run,
            duration_seconds=round(time.monotonic() - started, 3),
            failed=len(run.report.failed),
            rotated=sum(o.outcome is Outcome.ROTATED for o in outcomes),
            unfinished=len(run.report.unfinished),
            starved=run.report.starved,
            counts=run.report.counts,
        )

    async def _guarded(self, run: RunState, obs: Observation) -> AppOutcome:
        """One app, isolated: whatever its steps raise (a bug included) is its failure."""
        try:
            return await self.runner.one(run, obs)
        except Exception as exc:
            with structlog.contextvars.bound_contextvars(app_id=obs.app.app_id):
                log_internal_error(exc)
                return failed(
                    obs.app, Action.NOTHING, "the app could not be processed", internal_error(exc)
                )

    async def _deleted_names(
        self, observations: Sequence[Observation]
    ) -> Mapping[str, DeletedName] | None:
        """One listing of the vault's soft-deleted names, and only when some app would write
        a name it has not written before (its first rotation, a new username)."""
        if not any(new_names(o.app, o.entry) for o in observations):
            return {}
        try:
            return await self.steps.store.deleted_names()
        except Exception as exc:  # a bug here too must not cost the run its report
            log.warning("vault.deleted_unlisted", error=describe(exc))
            return None  # each app asks about its own names instead

    async def _password_policies(
        self, run: RunState, observations: Sequence[Observation]
    ) -> PasswordPolicies | None:
        """The tenant's app-management policies, read once and only when some app is due
        for a new secret. Never raises: what cannot be read is named in `unread`, and the
        plan of each app due says so."""
        now, mode = self.clock(), run.options.mode
        if not any(
            o.record is not None
            and rotation_reason(o.record, o.entry, now, self.rules, mode) is not None
            for o in observations
        ):
            return None
        try:
            policies = await self.steps.directory.password_policies()
        except Exception as exc:  # the rotation goes on, as it did before policies were read
            policies = PasswordPolicies(unread=describe(exc))
        if policies.unread is not None:
            log.warning("policy.unread", error=policies.unread)
        return policies

    def _read_failed(self, app: ManagedApp, reason: str, error: str) -> AppOutcome:
        with structlog.contextvars.bound_contextvars(app_id=app.app_id, step="observe"):
            return failed(app, Action.NOTHING, reason, error)

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
        and run history read (`app.finished` in rotation/telemetry/events.py)."""
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
