"""One decision of "due": status's state, plan's action and the expiry warning all come from
`policy.rotation_reason`, so they agree for any observed state."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.core.policy import app_state, plan_app
from rotation.model import Action, AppRecord, Mode, Rotate, Rules, VaultEntry
from tests.unit.test_policy import APP, NOW, RULES, cred, entry, record, worlds

ROTATING_STATES = {"due", "no-password"}


@st.composite
def observed(draw: st.DrawFn) -> tuple[AppRecord, VaultEntry, Rules]:
    """Any world of the policy tests, some credentials without an expiry date."""
    found, vault, rules = draw(worlds())
    credentials = tuple(
        dataclasses.replace(c, end=None) if draw(st.booleans()) and i % 2 else c
        for i, c in enumerate(found.credentials)
    )
    return dataclasses.replace(found, credentials=credentials), vault, rules


@settings(max_examples=500)
@given(observed())
def test_status_state_and_plan_action_agree_for_any_observed_state(
    world: tuple[AppRecord, VaultEntry, Rules],
) -> None:
    found, vault, rules = world
    state = app_state(found, vault, NOW, rules)
    plan = plan_app(APP, found, vault, NOW, rules, Mode.DUE)
    if state == "drift":  # a hand-written current version: the plan is blocked, no write
        assert isinstance(plan, Rotate), plan
        assert plan.blocked is not None, plan
        return
    assert (state in ROTATING_STATES) == (plan.action is Action.ROTATE), (state, plan.reason)
    assert state in ROTATING_STATES | {"ok"}


def test_disabled_current_version_is_due_in_status_as_in_plan() -> None:
    found = record(cred("k1", left=timedelta(days=170)))
    vault = entry(("k1", timedelta(days=10)), enabled=False)
    assert isinstance(plan_app(APP, found, vault, NOW, RULES), Rotate)
    assert app_state(found, vault, NOW, RULES) == "due"


def test_threshold_day_is_due_in_both() -> None:
    """Exactly `rotate_before` left: plan rotates (<=), so status says due (it used `<=`
    on days while the warning used `<` on whole days: three answers for one day)."""
    found = record(cred("k1", left=RULES.rotate_before))
    vault = entry(("k1", timedelta(days=150)))
    assert isinstance(plan_app(APP, found, vault, NOW, RULES), Rotate)
    assert app_state(found, vault, NOW, RULES) == "due"


def test_states_of_missing_app_and_missing_password() -> None:
    assert app_state(None, entry(), NOW, RULES) == "app-not-found"
    assert app_state(record(cred("k1")), entry(), NOW, RULES) == "no-password"
    gone = entry(("k9", timedelta(days=1)))
    assert app_state(record(cred("k1")), gone, NOW, RULES) == "no-password"
    assert app_state(record(cred("k1")), entry(("k1", timedelta(days=1))), NOW, RULES) == "ok"
