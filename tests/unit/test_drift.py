"""Drift (rotation/core/drift.py and the policy): a hand-written current version blocks the
app until an operator resolves it; Key Vault events decide idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rotation.core import drift
from rotation.core.policy import app_state, plan_app
from rotation.model import (
    DRIFT_SEEN_TAG,
    DRIFT_SMTP_TAG,
    MANAGED_BY,
    RESEND_WINDOW,
    Mode,
    Retire,
    Rotate,
    RunOptions,
    SmtpCheck,
    VaultEntry,
    VaultVersion,
)
from tests.unit.test_policy import APP, NOW, RULES, cred, record

OURS = {"managed-by": MANAGED_BY, "key-id": "k1"}


def version(name: str, key: str | None, days: float, **tags: str) -> VaultVersion:
    return VaultVersion(name, key, NOW - timedelta(days=days), True, tags=tags)


def vault(*versions: VaultVersion) -> VaultEntry:
    return VaultEntry("acs-smtp-a-app", versions)


HAND = version("vhand", None, 1)
PROVEN = version("v1", "k1", 100, **OURS)
# k0: the superseded credential whose grace ended long ago; k1: the last proven one.
WORLD = record(cred("k0", age=timedelta(days=300)), cred("k1", age=timedelta(days=100)))


def test_a_hand_written_current_version_is_drift() -> None:
    found = drift.drift(vault(HAND, PROVEN))
    assert found is not None
    assert (found.version, found.smtp, found.seen) == ("vhand", SmtpCheck.UNVERIFIED, None)
    assert found.appeared == HAND.created


def test_our_promotions_and_disabled_versions_are_not_drift() -> None:
    assert drift.drift(vault(PROVEN)) is None
    assert drift.drift(vault()) is None
    disabled = VaultVersion("vhand", None, NOW, False)
    assert drift.drift(vault(disabled, PROVEN)) is None


def test_a_secret_the_rotator_never_wrote_is_adoption_not_drift() -> None:
    """Stored by hand before the rotator was deployed (the walkthrough's way): the first
    run rotates over it, as before drift existed; only a hand-written version over a
    secret the rotator manages blocks the app."""
    assert drift.drift(vault(HAND)) is None
    assert drift.drift(vault(HAND, version("v0", None, 200))) is None
    assert drift.drift(vault(HAND, PROVEN)) is not None
    adopted = drift.on_new_version("vhand", vault(HAND))
    assert (adopted.verdict, adopted.reason) == (
        drift.Verdict.IGNORE,
        "the rotator never wrote this secret (adoption)",
    )


def test_a_version_naming_another_writer_is_drift_even_with_a_key_id() -> None:
    other = version("v2", "k1", 0, **{"managed-by": "someone-else", "key-id": "k1"})
    assert drift.drift(vault(other, PROVEN)) is not None


def test_a_copy_of_a_promotion_s_tags_is_drift_but_a_re_sent_promotion_is_not() -> None:
    """Review finding 4: a version set by hand with the proven version's tags (key-id
    included) was taken for the rotator's own, so retiring "the other credentials" could
    remove the one it holds. Only the rotator's own write sent again (azure-core re-sends a
    PUT whose answer was lost: the very next version, same expiry, within minutes) shares
    a key id with an older version and is still the rotator's."""
    ends = NOW + timedelta(days=80)
    proven = VaultVersion("v1", "k1", NOW - timedelta(days=100), True, ends, tags=OURS)
    copied = VaultVersion("vcopy", "k1", NOW - timedelta(days=1), True, tags=OURS)
    assert drift.drift(vault(copied, proven)) is not None
    assert drift.on_new_version("vcopy", vault(copied, proven)).verdict is drift.Verdict.CHECK_DRIFT
    assert drift.before(vault(copied, proven)).versions == (proven,)
    plan = plan_app(APP, WORLD, vault(copied, proven), NOW, RULES, Mode.DUE)
    assert isinstance(plan, Rotate)  # blocked: k0, whose grace is long over, is kept
    assert plan.blocked is not None
    assert "vcopy" in plan.blocked.reason

    resent = VaultVersion("v1b", "k1", proven.created + timedelta(minutes=6), True, ends, tags=OURS)
    assert drift.drift(vault(resent, proven)) is None
    assert drift.on_new_version("v1b", vault(resent, proven)).verdict is drift.Verdict.IGNORE
    twice = VaultVersion("v1c", "k1", resent.created + timedelta(seconds=1), True, ends, tags=OURS)
    assert drift.drift(vault(twice, resent, proven)) is None

    # With the expiry copied too, a copy is told apart by when it came: after RESEND_WINDOW,
    # or with a version in between.
    later = VaultVersion("vlate", "k1", proven.created + RESEND_WINDOW * 2, True, ends, tags=OURS)
    assert drift.drift(vault(later, proven)) is not None
    between = VaultVersion("v2", "k2", proven.created + timedelta(seconds=1), True, tags=OURS)
    after = VaultVersion("vx", "k1", between.created + timedelta(seconds=1), True, ends, tags=OURS)
    assert drift.drift(vault(after, between, proven)) is not None
    # A version whose settled mark names itself was judged the rotator's when marked.
    marked = VaultVersion("vlate", "k1", later.created, True, ends, settled=True, tags=OURS)
    assert drift.drift(vault(marked, proven)) is None
    # Adoption is unchanged: a copy over nothing of the rotator's is no drift.
    assert drift.drift(vault(HAND)) is None


def test_drift_blocks_the_app_and_retires_nothing() -> None:
    """Even with k0's grace long over, nothing is retired while drift lasts, and nothing is
    rotated over it: the plan is blocked, with the fix."""
    plan = plan_app(APP, WORLD, vault(HAND, PROVEN), NOW, RULES, Mode.DUE)
    assert isinstance(plan, Rotate)
    assert plan.blocked is not None
    assert "vhand" in plan.blocked.reason
    assert "force" in plan.blocked.fix
    # The same world without the hand-written version retires k0: drift is what stops it.
    assert isinstance(plan_app(APP, WORLD, vault(PROVEN), NOW, RULES, Mode.DUE), Retire)


def test_emergency_and_forced_runs_are_blocked_too_unless_they_resolve_it() -> None:
    for mode in Mode:
        plan = plan_app(APP, WORLD, vault(HAND, PROVEN), NOW, RULES, mode)
        assert isinstance(plan, Rotate)
        assert plan.blocked is not None
    resolved = plan_app(APP, WORLD, vault(HAND, PROVEN), NOW, RULES, Mode.FORCE, resolve_drift=True)
    assert isinstance(resolved, Rotate)
    assert resolved.blocked is None


def test_only_a_named_forced_run_a_person_started_resolves_drift() -> None:
    assert RunOptions(("A-APP",), Mode.FORCE).resolves_drift("a-app")
    assert RunOptions(("a-app",), Mode.EMERGENCY).resolves_drift("a-app")
    assert not RunOptions((), Mode.FORCE).resolves_drift("a-app")  # every app: not named
    assert not RunOptions(("a-app",), Mode.DUE).resolves_drift("a-app")
    assert not RunOptions(("a-app",), Mode.FORCE, because="event").resolves_drift("a-app")


def test_status_says_drift_with_the_check_the_tags_record() -> None:
    checked = version(
        "vhand", None, 1, **{DRIFT_SEEN_TAG: NOW.isoformat(), DRIFT_SMTP_TAG: "refused"}
    )
    assert app_state(WORLD, vault(checked, PROVEN), NOW, RULES) == "drift"
    found = drift.drift(vault(checked, PROVEN))
    assert found is not None
    assert found.smtp is SmtpCheck.REFUSED
    assert found.seen == NOW


def test_tags_edited_by_hand_still_read_as_drift() -> None:
    odd = version("vhand", None, 1, **{DRIFT_SEEN_TAG: "yesterday", DRIFT_SMTP_TAG: "maybe"})
    found = drift.drift(vault(odd, PROVEN))
    assert found is not None
    assert found.seen is None
    assert found.smtp is SmtpCheck.UNVERIFIED


def test_a_seen_tag_without_an_offset_reads_as_utc_never_naive() -> None:
    """Review finding 8: status sends `seen` as an OpenAPI date-time, which needs an offset."""
    odd = version("vhand", None, 1, **{DRIFT_SEEN_TAG: "2026-01-01T00:00:00"})
    found = drift.drift(vault(odd, PROVEN))
    assert found is not None
    assert found.seen == datetime(2026, 1, 1, tzinfo=UTC)
    assert found.seen.isoformat() == "2026-01-01T00:00:00+00:00"


def test_drift_tags_keep_the_version_s_own() -> None:
    tagged = version("vhand", None, 1, owner="ops")
    tags = drift.drift_tags(tagged, NOW, SmtpCheck.ACCEPTED)
    assert tags == {
        "owner": "ops",
        DRIFT_SEEN_TAG: NOW.isoformat(timespec="seconds"),
        DRIFT_SMTP_TAG: "accepted",
    }


# ----- events -----------------------------------------------------------------------------


def test_a_new_hand_written_version_is_checked_once() -> None:
    assert drift.on_new_version("vhand", vault(HAND, PROVEN)).verdict is drift.Verdict.CHECK_DRIFT
    marked = version(
        "vhand", None, 1, **{DRIFT_SEEN_TAG: NOW.isoformat(), DRIFT_SMTP_TAG: "accepted"}
    )
    repeat = drift.on_new_version("vhand", vault(marked, PROVEN))
    assert repeat.verdict is drift.Verdict.IGNORE
    assert "repeated" in repeat.reason


def test_our_own_promotion_is_ignored() -> None:
    decision = drift.on_new_version("v1", vault(PROVEN))
    assert decision.verdict is drift.Verdict.IGNORE
    assert "own promotion" in decision.reason


def test_out_of_order_events_are_ignored() -> None:
    newer = version("v2", "k2", 0, **OURS)
    late = drift.on_new_version("vhand", vault(newer, HAND, PROVEN))
    assert late.verdict is drift.Verdict.IGNORE
    assert "superseded" in late.reason
    gone = drift.on_new_version("vgone", vault(PROVEN))
    assert gone.verdict is drift.Verdict.IGNORE


def test_near_expiry_rotates_only_the_current_version() -> None:
    now = drift.on_expiry("v1", vault(PROVEN), "SecretNearExpiry")
    assert now.verdict is drift.Verdict.ROTATE
    assert "SecretNearExpiry" in now.reason
    newer = version("v2", "k2", 0, **OURS)
    stale = drift.on_expiry("v1", vault(newer, PROVEN), "SecretNearExpiry")
    assert stale.verdict is drift.Verdict.IGNORE
    assert drift.on_expiry("v1", vault(), "SecretExpired").verdict is drift.Verdict.IGNORE


def test_a_forced_run_started_by_an_event_names_the_event() -> None:
    plan = plan_app(APP, WORLD, vault(PROVEN), NOW, RULES, Mode.FORCE, requested="event X")
    assert isinstance(plan, Rotate)
    assert plan.reason == "event X"
