"""When a run's report says ok: no app failed, and the run started some app it had due
(issue 27: a run that starts nothing while apps are due is a failure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rotation.model import NOT_STARTED, Action, AppOutcome, Mode, Outcome, RunReport

LEFT_OUT = (Outcome.UNFINISHED, f"{NOT_STARTED}; the next run completes it")
CUT_SHORT = (Outcome.UNFINISHED, "ran out of time; the next run completes it")


def report(*ends: tuple[Outcome, str | None]) -> RunReport:
    outcomes = [
        AppOutcome(f"app-{i}", f"secret-{i}", Action.ROTATE, "expiring", outcome, error=error)
        for i, (outcome, error) in enumerate(ends)
    ]
    return RunReport("run", Mode.DUE, False, datetime(2026, 12, 1, tzinfo=UTC), outcomes=outcomes)


@pytest.mark.parametrize(
    ("ends", "starved"),
    [
        ([LEFT_OUT], True),
        ([LEFT_OUT, LEFT_OUT, (Outcome.UNCHANGED, None), (Outcome.BUSY, None)], True),
        ([LEFT_OUT, (Outcome.BLOCKED, "soft-deleted")], True),
        ([LEFT_OUT, (Outcome.ROTATED, None)], False),  # a first run spreading over several
        ([LEFT_OUT, (Outcome.RETIRED, None)], False),
        ([LEFT_OUT, CUT_SHORT], False),  # that one started
        ([CUT_SHORT], False),
        ([(Outcome.UNCHANGED, None)], False),
        ([], False),
    ],
)
def test_a_run_that_started_none_of_its_due_apps_is_starved_and_not_ok(
    ends: list[tuple[Outcome, str | None]], starved: bool
) -> None:
    assert report(*ends).starved is starved
    assert report(*ends).ok is not starved


def test_a_failed_app_is_started_work_but_not_ok() -> None:
    failed = report(LEFT_OUT, (Outcome.FAILED, "535"))
    assert (failed.starved, failed.ok) == (False, False)
