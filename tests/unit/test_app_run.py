"""AppRunner (rotation/run/app_run.py) on the in-memory fakes of the ports: one app's plan
carried out, and every way it can end (rotated, retired, unchanged, planned, busy,
unfinished, blocked, failed), with what each leaves in Entra and Key Vault."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import structlog
from pydantic import SecretStr

from rotation.core import fencing
from rotation.errors import (
    FailureKind,
    LeaseLost,
    LeaseStoreUnavailable,
    LeaseTaken,
    PasswordAdditionBlocked,
    VaultWriteFailed,
    VerificationFailed,
)
from rotation.model import (
    MANAGED_BY,
    AppOutcome,
    DeletedName,
    ManagedApp,
    Mode,
    Outcome,
    RunConfig,
    RunOptions,
    RunReport,
    VaultEntry,
    VaultVersion,
)
from rotation.run.app_run import AppRunner, RunState
from rotation.run.observe import Observation
from rotation.run.steps import Steps
from tests.unit.fakes import (
    OUR_MESSAGE,
    FakeDirectory,
    FakeStore,
    FakeVerifier,
    Fault,
    Faults,
    our_credential,
)
from tests.unit.test_engine_isolation import NOW, TENANT
from tests.unit.test_engine_isolation import SETTINGS as ENGINE_SETTINGS

APP = "app-1"
DAY = timedelta(days=1)
#: The engine tests' settings (kv.vault.azure.net), with a verify timeout short enough for a
#: shortened run to be told from a full one.
CONFIG = dataclasses.replace(ENGINE_SETTINGS.run_config(), verify_timeout_seconds=5.0)


class FakeLeases:
    """The Leases port in memory: `taken` apps are held by another run; `down` refuses all."""

    def __init__(self, taken: dict[str, str] | None = None, *, down: bool = False) -> None:
        self.held: dict[str, str] = dict(taken or {})
        self.down = down
        self.taken: list[str] = []  # every app whose lease this process took

    async def ready(self) -> None:
        if self.down:
            raise LeaseStoreUnavailable("the lease store cannot be reached")

    @asynccontextmanager
    async def hold(self, app_id: str, run_id: str | None = None) -> AsyncIterator[None]:
        await self.ready()
        if app_id in self.held:
            raise LeaseTaken(
                f"run {self.held[app_id]} holds the lease of {app_id}", self.held[app_id]
            )
        self.held[app_id] = run_id or ""
        self.taken.append(app_id)
        try:
            yield
        finally:
            del self.held[app_id]


class HeldVerifier(FakeVerifier):
    """Verifies only once released; says when it started."""

    def __init__(self, faults: Faults, directory: FakeDirectory) -> None:
        super().__init__(faults, directory)
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
        self.started.set()
        await self.release.wait()
        return await super().verify(username, password, timeout)


class Rig:
    """One app in the fakes, and an AppRunner acting on it."""

    def __init__(
        self,
        *,
        left: timedelta = 10 * DAY,
        faults: list[Fault] | None = None,
        leases: FakeLeases | None = None,
        verifier: type[FakeVerifier] = FakeVerifier,
        config: RunConfig = CONFIG,
        in_vault: bool = True,
    ) -> None:
        self.faults = Faults(faults or [])
        self.directory = FakeDirectory(self.faults, NOW)
        self.store = FakeStore(self.faults, NOW)
        self.verifier = verifier(self.faults, self.directory)
        self.app = ManagedApp(APP, TENANT, f"acs-smtp-{APP}", (f"acs.{APP}.{TENANT}",))
        self.verifier.usernames[self.app.smtp_username] = APP
        self.current = our_credential(NOW, age=180 * DAY - left, left=left)
        self.directory.add_app(APP, self.current)
        if in_vault:
            self.store.put(APP, self.app.secret_name, self.current.key_id, 180 * DAY - left)
        steps = Steps(config, self.directory, self.store, self.verifier, lambda: NOW)
        self.runner = AppRunner(steps, leases=leases)

    def observation(self, *, found: bool = True) -> Observation:
        record = self.directory.record(APP) if found else None
        entry = VaultEntry(
            self.app.secret_name, tuple(self.store.versions.get(self.app.secret_name, []))
        )
        return Observation(self.app, record, entry)

    def state(self, options: RunOptions | None = None, *, budget: float | None = None) -> RunState:
        options = options or RunOptions()
        return RunState(
            report=RunReport("run-test", options.mode, options.dry_run, NOW),
            options=options,
            verify_timeout=options.verify_timeout or CONFIG.verify_timeout_seconds,
            deadline=None if budget is None else time.monotonic() + budget,
            semaphore=asyncio.Semaphore(4),
            deleted={},
        )

    async def one(self, options: RunOptions | None = None, **kw: object) -> AppOutcome:
        found = bool(kw.pop("found", True))
        return await self.runner.one(self.state(options, **kw), self.observation(found=found))  # type: ignore[arg-type]

    def run(self, options: RunOptions | None = None, **kw: object) -> AppOutcome:
        return asyncio.run(self.one(options, **kw))

    def key_ids(self) -> list[str]:
        return [c.key_id for c in self.directory.credentials[APP]]

    def served(self) -> str | None:
        current = self.store.current(self.app.secret_name)
        return current.key_id if current else None


# ----- what the plan says ----------------------------------------------------------------------


def test_a_due_app_is_rotated_and_key_vault_serves_the_new_secret() -> None:
    rig = Rig(left=10 * DAY)
    outcome = rig.run()
    assert outcome.outcome is Outcome.ROTATED, outcome
    assert outcome.new_key_id is not None
    assert rig.served() == outcome.new_key_id
    assert rig.key_ids() == [rig.current.key_id, outcome.new_key_id]  # the old one waits for grace
    assert outcome.expires == NOW + CONFIG.rules.lifetime


def test_a_healthy_app_is_unchanged_and_nothing_is_written() -> None:
    rig = Rig(left=170 * DAY)
    outcome = rig.run()
    assert outcome.outcome is Outcome.UNCHANGED, outcome
    assert rig.key_ids() == [rig.current.key_id]
    assert "add_password" not in rig.faults.calls
    assert "promote" not in rig.faults.calls


def test_a_dry_run_plans_the_rotation_and_changes_nothing() -> None:
    rig = Rig(left=10 * DAY)
    outcome = rig.run(RunOptions(dry_run=True))
    assert outcome.outcome is Outcome.PLANNED, outcome
    assert outcome.action.value == "rotate"
    assert rig.key_ids() == [rig.current.key_id]
    assert rig.served() == rig.current.key_id


def test_old_secrets_past_their_grace_are_retired_and_their_versions_disabled() -> None:
    rig = Rig(left=170 * DAY)
    old = our_credential(NOW, age=300 * DAY, left=20 * DAY)
    rig.directory.add_app(APP, old, rig.current)
    rig.store.versions.clear()
    rig.store.put(APP, rig.app.secret_name, old.key_id, 300 * DAY)
    rig.store.put(APP, rig.app.secret_name, rig.current.key_id, 10 * DAY)
    outcome = rig.run()
    assert outcome.outcome is Outcome.RETIRED, outcome
    assert outcome.removed_key_ids == [old.key_id]
    assert rig.key_ids() == [rig.current.key_id]
    old_version = rig.store.versions[rig.app.secret_name][1]
    assert (old_version.key_id, old_version.enabled) == (old.key_id, False)


def test_an_app_entra_does_not_return_is_failed_with_the_reason() -> None:
    outcome = Rig().run(found=False)
    assert outcome.outcome is Outcome.FAILED
    assert outcome.reason == "application not found in Entra ID"
    assert outcome.error is not None
    assert "Graph returned no application app-1" in outcome.error


# ----- the lease and the busy mark -------------------------------------------------------------


def test_the_rotation_happens_under_the_apps_lease_and_gives_it_back() -> None:
    leases = FakeLeases()
    outcome = Rig(leases=leases).run()
    assert outcome.outcome is Outcome.ROTATED
    assert leases.taken == [APP]
    assert leases.held == {}


def test_an_app_whose_lease_another_run_holds_is_busy_and_untouched() -> None:
    rig = Rig(leases=FakeLeases({APP: "other-run"}))
    outcome = rig.run()
    assert outcome.outcome is Outcome.BUSY, outcome
    assert outcome.held_by == "other-run"
    assert rig.key_ids() == [rig.current.key_id]
    assert "add_password" not in rig.faults.calls


def test_a_lease_store_that_fails_mid_run_fails_the_app_before_any_write() -> None:
    rig = Rig(leases=FakeLeases(down=True))
    outcome = rig.run()
    assert outcome.outcome is Outcome.FAILED, outcome
    assert outcome.error == "the lease store cannot be reached"
    assert rig.key_ids() == [rig.current.key_id]


def test_a_second_run_in_this_process_finds_the_app_busy_and_the_mark_goes_after() -> None:
    rig = Rig(verifier=HeldVerifier)
    verifier = rig.verifier
    assert isinstance(verifier, HeldVerifier)

    async def scenario() -> tuple[AppOutcome, AppOutcome, list[str]]:
        first = asyncio.create_task(rig.one())
        await asyncio.wait_for(verifier.started.wait(), 5)
        marked = rig.runner.busy([APP, "app-2"])
        second = await rig.one()
        verifier.release.set()
        return await first, second, marked

    first, second, marked = asyncio.run(scenario())
    assert marked == [APP]
    assert second.outcome is Outcome.BUSY
    assert second.held_by == "run-test"
    assert second.error is not None
    assert "in this instance" in second.error
    assert first.outcome is Outcome.ROTATED
    assert rig.runner.busy([APP]) == []


# ----- time --------------------------------------------------------------------------------------


def by_the_rotator(rig: Rig) -> Rig:
    """The app's versions as the rotator's promotions tag them (key_vault.promote)."""
    name = rig.app.secret_name
    rig.store.versions[name] = [
        dataclasses.replace(v, tags={"managed-by": MANAGED_BY}) for v in rig.store.versions[name]
    ]
    return rig


TIMER = RunOptions(whole_apps=True)


def test_an_app_is_not_started_without_time_left_in_the_run() -> None:
    rig = by_the_rotator(Rig())
    outcome = rig.run(TIMER, budget=CONFIG.step_margin / 2)
    assert outcome.outcome is Outcome.UNFINISHED, outcome
    # Its secret, the rotator's, fell due twenty daily runs ago: the report says it is left
    # out again.
    assert outcome.error == (
        "not started: no time left in this run, again: due since 2026-11-06 12:00 UTC, 20 "
        "scheduled runs ago, and no run has rotated it; give the timer more time (host.json "
        "functionTimeout, ROTATION_MAX_CONCURRENCY) or rotate it by name"
    )
    assert "add_password" not in rig.faults.calls


PLAIN = "not started: no time left in this run; the next run completes it"


def test_an_app_due_for_fewer_runs_than_reported_is_simply_not_started() -> None:
    rig = by_the_rotator(Rig(config=dataclasses.replace(CONFIG, schedule="0 0 3 1 1 *")))  # yearly
    assert rig.run(TIMER, budget=CONFIG.step_margin / 2).error == PLAIN


def test_an_http_run_names_no_app_left_unstarted(caplog: pytest.LogCaptureFixture) -> None:
    """Review finding 11: HTTP runs are not scheduled runs; only the timer's count."""
    rig = by_the_rotator(Rig())
    assert rig.run(RunOptions(), budget=CONFIG.step_margin / 2).error == PLAIN
    assert "app.left_unstarted" not in caplog.text


def test_an_app_the_rotator_never_wrote_is_not_named_on_the_run_that_meets_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review finding 11: onboarding apps long past due (twenty daily runs here) fired the
    alert on the first run that met them. Nothing unstored says when a run first met an app
    the rotator never wrote, so none is named until its first rotation."""
    rig = Rig()  # its version has a key-id, but no managed-by tag: not a promotion of ours
    assert rig.run(TIMER, budget=CONFIG.step_margin / 2).error == PLAIN
    assert "app.left_unstarted" not in caplog.text


def test_the_count_starts_at_the_rotators_oldest_version_when_that_is_after_due() -> None:
    rig = by_the_rotator(Rig())
    name = rig.app.secret_name
    (version,) = rig.store.versions[name]
    rig.store.versions[name] = [dataclasses.replace(version, created=NOW - 2 * DAY)]
    assert rig.run(TIMER, budget=CONFIG.step_margin / 2).error == PLAIN  # two runs, not twenty


def test_a_timer_run_starts_an_app_only_when_its_whole_time_fits() -> None:
    rig = Rig()
    whole = RunOptions(whole_apps=True)
    outcome = rig.run(whole, budget=CONFIG.step_margin + 1)  # less than verify + margin
    assert outcome.outcome is Outcome.UNFINISHED, outcome
    assert "add_password" not in rig.faults.calls


def test_the_apps_deadline_cuts_a_hung_verification_and_the_next_run_completes_it() -> None:
    config = dataclasses.replace(CONFIG, step_margin=0.2, verify_timeout_seconds=0.3)
    rig = Rig(verifier=HeldVerifier, config=config)  # never released: hangs
    outcome = rig.run(RunOptions(verify_timeout=0.3))
    assert outcome.outcome is Outcome.UNFINISHED, outcome
    assert outcome.error == "ran out of time; the next run completes it"
    assert rig.served() == rig.current.key_id  # nothing promoted


# ----- failures ----------------------------------------------------------------------------------


class Refusing(FakeVerifier):
    async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
        raise VerificationFailed("535 5.7.3 Authentication unsuccessful", FailureKind.REJECTED)


def test_a_refused_secret_is_rolled_back_and_key_vault_left_alone() -> None:
    rig = Rig(verifier=Refusing)
    outcome = rig.run()
    assert outcome.outcome is Outcome.FAILED, outcome
    assert outcome.error == "535 5.7.3 Authentication unsuccessful"
    assert rig.key_ids() == [rig.current.key_id]  # rolled back (I3)
    assert rig.served() == rig.current.key_id  # I2


def test_a_refusal_under_a_shortened_verify_time_is_left_to_the_next_run() -> None:
    rig = Rig(verifier=Refusing)
    outcome = rig.run(RunOptions(verify_timeout=1))
    assert outcome.outcome is Outcome.UNFINISHED, outcome
    assert outcome.error is not None
    assert "this run allowed only 1 s" in outcome.error
    assert rig.key_ids() == [rig.current.key_id]


def test_a_bug_in_verification_fails_the_app_without_its_text_and_rolls_back() -> None:
    rig = Rig(faults=[Fault("verify", 0, KeyError)])
    outcome = rig.run()
    assert outcome.outcome is Outcome.FAILED
    assert outcome.error == "internal error: KeyError"
    assert rig.key_ids() == [rig.current.key_id]


def test_a_refused_key_vault_write_rolls_the_new_secret_back() -> None:
    rig = Rig(faults=[Fault("promote", 0, VaultWriteFailed)])
    outcome = rig.run()
    assert outcome.outcome is Outcome.FAILED, outcome
    assert outcome.error == OUR_MESSAGE  # Key Vault's refusal, as the adapter worded it
    assert rig.key_ids() == [rig.current.key_id]
    assert rig.served() == rig.current.key_id


def test_a_failed_removal_is_reported_and_the_rest_still_done() -> None:
    rig = Rig(left=170 * DAY, faults=[Fault("remove_password", 0, PermissionError)])
    old = [our_credential(NOW, age=300 * DAY, left=20 * DAY) for _ in range(2)]
    rig.directory.add_app(APP, *old, rig.current)
    rig.store.versions.clear()
    for credential, age in ((old[0], 300), (old[1], 200), (rig.current, 10)):
        rig.store.put(APP, rig.app.secret_name, credential.key_id, age * DAY)
    outcome = rig.run()
    assert outcome.outcome is Outcome.FAILED, outcome
    assert outcome.removed_key_ids == [old[1].key_id]
    assert outcome.cleanup_failures == [
        f"removal of {old[0].key_id} failed: internal error: PermissionError"
    ]
    assert outcome.error is not None
    assert "1 of 2 old credential(s) could not be removed" in outcome.error


def test_a_soft_deleted_name_blocks_the_first_rotation_before_any_entra_write() -> None:
    rig = Rig(in_vault=False)
    state = rig.state()
    state.deleted = {rig.app.secret_name: DeletedName(rig.app.secret_name, NOW, None)}
    outcome = asyncio.run(rig.runner.one(state, rig.observation()))
    assert outcome.outcome is Outcome.BLOCKED, outcome
    assert outcome.error is not None
    assert "az keyvault secret recover" in outcome.error
    assert "add_password" not in rig.faults.calls


def test_graph_forbidding_a_new_password_blocks_the_app() -> None:
    rig = Rig(faults=[Fault("add_password", 0, PasswordAdditionBlocked)])
    outcome = rig.run(RunOptions(mode=Mode.FORCE))
    assert outcome.outcome is Outcome.BLOCKED, outcome
    assert rig.key_ids() == [rig.current.key_id]


@pytest.mark.parametrize("mode", [Mode.DUE, Mode.FORCE])
def test_a_failed_app_that_is_due_warns_that_its_secret_expires(mode: Mode) -> None:
    with structlog.testing.capture_logs() as logged:
        outcome = Rig(verifier=Refusing).run(RunOptions(mode=mode))
    assert outcome.outcome is Outcome.FAILED
    (warning,) = [e for e in logged if e["event"] == "app.expiry_near"]
    assert warning["days_left"] == 10.0


# ----- drift: a hand-written current version (review finding 3) ------------------------------


def drifted(left: timedelta) -> Rig:
    rig = Rig(left=left)
    hand = VaultVersion("vhand", None, NOW - DAY, True)  # no key-id: not the rotator's
    rig.store.versions[rig.app.secret_name].insert(0, hand)
    return rig


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_run_that_meets_drift_logs_the_drift_alert_once_and_still_warns_of_expiry(
    dry_run: bool,
) -> None:
    """With Key Vault events off, the run is the only one to see drift: it must log the event
    the alert watches, and an app whose last proven secret expires must still warn."""
    rig = drifted(left=10 * DAY)
    with structlog.testing.capture_logs() as logged:
        outcome = rig.run(RunOptions(dry_run=dry_run))
    assert outcome.outcome is Outcome.BLOCKED, outcome
    (caught,) = [e for e in logged if e["event"] == "vault.drift_detected"]
    assert (caught["log_level"], caught["vault_version"], caught["smtp"]) == (
        "error",
        "vhand",
        "unverified",
    )
    assert caught["marked"] is False
    assert caught["secret_name"] == rig.app.secret_name
    (warning,) = [e for e in logged if e["event"] == "app.expiry_near"]
    assert warning["days_left"] == 10.0
    assert warning["key_id"] == rig.current.key_id
    assert warning["reason"].startswith("drift blocks its rotation; ")


def test_a_drifted_app_far_from_expiry_alerts_drift_only() -> None:
    with structlog.testing.capture_logs() as logged:
        rig = drifted(left=170 * DAY)
        outcome = rig.run()
    assert outcome.outcome is Outcome.BLOCKED, outcome
    assert [
        e["event"] for e in logged if e["event"] in ("vault.drift_detected", "app.expiry_near")
    ] == ["vault.drift_detected"]


def test_a_named_forced_run_that_resolves_drift_does_not_report_it() -> None:
    rig = drifted(left=170 * DAY)
    with structlog.testing.capture_logs() as logged:
        outcome = rig.run(RunOptions((APP,), Mode.FORCE))
    assert outcome.outcome is Outcome.ROTATED, outcome
    assert [e for e in logged if e["event"] == "vault.drift_detected"] == []


# ----- a lease lost mid-way (rotation/core/fencing.py) -------------------------------------------


class LosableLeases(FakeLeases):
    """Leases whose holder's fence closes when `lose` is called (another run took it)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def check(self) -> None:
        if self.lost:
            raise LeaseLost("lost the lease of app-1: another run took it")

    @asynccontextmanager
    async def hold(self, app_id: str, run_id: str | None = None) -> AsyncIterator[None]:
        async with super().hold(app_id, run_id):
            with fencing.fenced(self):
                yield


def losing_during_verification(leases: LosableLeases, *, refuse: bool) -> type[FakeVerifier]:
    class Losing(FakeVerifier):
        async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
            leases.lost = True
            if refuse:
                raise VerificationFailed(
                    "535 5.7.3 Authentication unsuccessful", FailureKind.REJECTED
                )
            return await super().verify(username, password, timeout)

    return Losing


@pytest.mark.parametrize("refuse", [False, True], ids=["verified", "refused"])
def test_a_lease_lost_before_the_promotion_stops_every_write_and_leaves_the_new_secret(
    refuse: bool,
) -> None:
    """Once the lease is lost the app's work writes nothing more (issue 23: another run may
    hold it now), not even the removal of its own new credential, proven or refused: no
    Key Vault version holds it, and the next run removes it as an orphan (I5)."""
    leases = LosableLeases()
    rig = Rig(leases=leases, verifier=losing_during_verification(leases, refuse=refuse))
    outcome = rig.run()
    assert outcome.outcome is Outcome.UNFINISHED, outcome
    assert "lost the lease of app-1" in (outcome.error or "")
    assert "promote" not in rig.faults.calls
    assert "remove_password" not in rig.faults.calls
    assert rig.served() == rig.current.key_id
    assert len(rig.key_ids()) == 2  # the new one waits for the next run
