"""The policy is pure: examples for each decision, properties for I1, I4, I5 and I7."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.core.policy import (
    POLICY_MARGIN,
    needs_versions,
    password_rule,
    plan_app,
    retirement_plan,
    retirements,
    settled,
)
from rotation.model import (
    CREDENTIAL_PREFIX,
    DRIFT_SEEN_TAG,
    AppManagementPolicy,
    AppRecord,
    Credential,
    Keep,
    ManagedApp,
    Mode,
    PasswordPolicies,
    PasswordRestriction,
    PasswordRule,
    Retire,
    Rotate,
    Rules,
    VaultEntry,
    VaultVersion,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RULES = Rules(
    rotate_before=timedelta(days=30),
    lifetime=timedelta(days=180),
    grace=timedelta(hours=48),
    verify_window=timedelta(minutes=15),
)
APP = ManagedApp("a-app", "t-tenant", "acs-smtp-a-app", ("acs.a-app.t-tenant",))


def key_ids(plan: Retire) -> tuple[str, ...]:
    """The key ids of the credentials a retirement plan removes."""
    return tuple(r.credential.key_id for r in plan.retire)


def cred(
    key: str,
    *,
    ours: bool = True,
    age: timedelta = timedelta(days=10),
    left: timedelta = timedelta(days=170),
) -> Credential:
    name = f"{CREDENTIAL_PREFIX} 2026-01-01T00:00:00Z" if ours else "made by a person"
    return Credential(key, name, NOW - age, NOW + left)


def entry(*versions: tuple[str | None, timedelta], enabled: bool = True) -> VaultEntry:
    """Versions newest first, each (key id, age)."""
    return VaultEntry(
        "acs-smtp-a-app",
        tuple(
            VaultVersion(f"v{i}", key, NOW - age, enabled if i == 0 else True)
            for i, (key, age) in enumerate(versions)
        ),
    )


def record(*credentials: Credential) -> AppRecord:
    return AppRecord("obj", "a-app", "app", credentials)


def test_healthy_app_needs_nothing() -> None:
    plan = plan_app(APP, record(cred("k1")), entry(("k1", timedelta(days=10))), NOW, RULES)
    assert isinstance(plan, Keep)
    assert "valid for 170.0 days" in plan.reason


def test_secret_inside_threshold_is_rotated_with_days_left_in_reason() -> None:
    plan = plan_app(
        APP,
        record(cred("k1", left=timedelta(days=12))),
        entry(("k1", timedelta(days=168))),
        NOW,
        RULES,
    )
    assert isinstance(plan, Rotate)
    assert "expires in 12.0 days" in plan.reason


def test_expired_secret_is_rotated() -> None:
    plan = plan_app(
        APP,
        record(cred("k1", left=-timedelta(days=2))),
        entry(("k1", timedelta(days=200))),
        NOW,
        RULES,
    )
    assert isinstance(plan, Rotate)
    assert "expired 2.0 days ago" in plan.reason


def test_missing_vault_entry_triggers_rotation() -> None:
    plan = plan_app(APP, record(cred("k1", ours=False)), entry(), NOW, RULES)
    assert isinstance(plan, Rotate)
    assert "no SMTP password" in plan.reason


def test_vault_pointing_at_removed_credential_triggers_rotation() -> None:
    plan = plan_app(APP, record(cred("k2")), entry(("k1", timedelta(days=1))), NOW, RULES)
    assert isinstance(plan, Rotate)
    assert "k1, which no longer exists" in plan.reason


def test_disabled_current_version_triggers_rotation() -> None:
    plan = plan_app(
        APP, record(cred("k1")), entry(("k1", timedelta(days=1)), enabled=False), NOW, RULES
    )
    assert isinstance(plan, Rotate)
    assert "disabled" in plan.reason


def test_force_and_emergency_rotate_a_healthy_app() -> None:
    healthy = (record(cred("k1")), entry(("k1", timedelta(days=1))))
    forced = plan_app(APP, *healthy, NOW, RULES, Mode.FORCE)
    emergency = plan_app(APP, *healthy, NOW, RULES, Mode.EMERGENCY)
    assert isinstance(forced, Rotate)
    assert not forced.emergency
    assert isinstance(emergency, Rotate)
    assert emergency.emergency


def test_superseded_credential_waits_for_grace() -> None:
    creds = record(cred("new", age=timedelta(hours=47)), cred("old", age=timedelta(days=170)))
    inside = entry(("new", timedelta(hours=47)), ("old", timedelta(days=170)))
    after = entry(("new", timedelta(hours=49)), ("old", timedelta(days=170)))
    assert retirements(creds, inside, NOW, RULES) == ()
    retired = retirements(creds, after, NOW, RULES)
    assert [r.credential.key_id for r in retired] == ["old"]
    assert "grace of 48 h" in retired[0].reason


def test_person_made_secret_is_retired_after_grace_like_any_old_one() -> None:
    creds = record(cred("new"), cred("manual", ours=False, age=timedelta(days=400)))
    plan = plan_app(APP, creds, entry(("new", timedelta(days=3))), NOW, RULES)
    assert isinstance(plan, Retire)
    assert key_ids(plan) == ("manual",)


def test_retire_plan_names_the_versions_to_disable_with_each_credential() -> None:
    """The policy, not the engine, says which Key Vault versions go: the enabled ones of
    each retired credential (only once it is removed) and those whose credential is
    already gone. The current version, and disabled ones, are never named."""
    creds = record(cred("k2", age=timedelta(days=3)), cred("k1", age=timedelta(days=200)))
    vault = VaultEntry(
        "acs-smtp-a-app",
        (
            VaultVersion("v0", "k2", NOW - timedelta(days=3), True),
            VaultVersion("v1", "k1", NOW - timedelta(days=100), True),
            VaultVersion("v2", "k1", NOW - timedelta(days=200), True),
            VaultVersion("v3", "k1", NOW - timedelta(days=200), False),
            VaultVersion("v4", "k0", NOW - timedelta(days=300), True),
        ),
    )
    plan = plan_app(APP, creds, vault, NOW, RULES)
    assert isinstance(plan, Retire)
    assert key_ids(plan) == ("k1",)
    assert plan.retire[0].versions == ("v1", "v2")
    assert plan.disable == ("v4",)
    assert plan.reason == (
        "1 old credential(s) to remove; 1 Key Vault version(s) of removed credentials to disable"
    )
    assert plan.versions_to_disable({"k1"}) == ("v1", "v2", "v4")
    assert plan.versions_to_disable(set()) == ("v4",)  # k1's removal failed: it still works


def test_an_app_with_only_a_stale_version_gets_a_retire_plan_that_disables_it() -> None:
    creds = record(cred("k2"))
    vault = entry(("k2", timedelta(days=3)), ("k1", timedelta(days=200)))
    plan = plan_app(APP, creds, vault, NOW, RULES)
    assert plan == Retire(
        APP, "1 Key Vault version(s) of removed credentials to disable", (), ("v1",)
    )


def test_emergency_retires_promoted_credentials_at_once_but_keeps_young_unpromoted_ones() -> None:
    creds = record(
        cred("new", age=timedelta(0)), cred("old"), cred("inflight", age=timedelta(minutes=1))
    )
    vault = entry(("new", timedelta(0)), ("old", timedelta(days=10)))
    retired = {r.credential.key_id for r in retirements(creds, vault, NOW, RULES, emergency=True)}
    assert retired == {"old"}


def test_orphan_goes_only_after_verify_window() -> None:
    vault = entry(("k1", timedelta(hours=1)))
    young = record(cred("k1"), cred("orphan", age=timedelta(minutes=14)))
    old = record(cred("k1"), cred("orphan", age=timedelta(minutes=16)))
    assert retirements(young, vault, NOW, RULES) == ()
    retired = retirements(old, vault, NOW, RULES)
    assert [r.credential.key_id for r in retired] == ["orphan"]
    assert "orphan" in retired[0].reason


def test_nothing_is_retired_while_vault_has_no_working_password() -> None:
    creds = record(cred("a", age=timedelta(days=300)), cred("b", age=timedelta(days=300)))
    assert retirements(creds, entry(), NOW, RULES, emergency=True) == ()
    assert retirements(creds, entry(("gone", timedelta(days=9))), NOW, RULES, emergency=True) == ()


# ----- properties -----------------------------------------------------------------------

KEYS = [str(uuid.UUID(int=i)) for i in range(6)]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[AppRecord, VaultEntry, Rules]:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=5))
    credentials = tuple(
        Credential(
            k,
            CREDENTIAL_PREFIX if draw(st.booleans()) else None,
            NOW - timedelta(minutes=draw(st.integers(0, 400 * 24 * 60))),
            NOW + timedelta(days=draw(st.integers(-30, 400))),
        )
        for k in keys
    )
    version_keys = draw(st.lists(st.sampled_from([*KEYS, None]), max_size=4))
    ages = sorted(
        draw(
            st.lists(
                st.integers(0, 400 * 24), min_size=len(version_keys), max_size=len(version_keys)
            )
        )
    )
    vault = VaultEntry(
        "s",
        tuple(
            VaultVersion(f"v{i}", k, NOW - timedelta(hours=a), draw(st.booleans()))
            for i, (k, a) in enumerate(zip(version_keys, ages, strict=True))
        ),
    )
    rules = dataclasses.replace(
        RULES,
        grace=timedelta(hours=draw(st.integers(0, 100))),
        verify_window=timedelta(minutes=draw(st.integers(1, 60))),
    )
    return AppRecord("obj", "a-app", "app", credentials), vault, rules


@settings(max_examples=200)
@given(worlds(), st.booleans())
def test_i1_current_credential_is_never_retired(
    world: tuple[AppRecord, VaultEntry, Rules], emergency: bool
) -> None:
    creds, vault, rules = world
    retired = {
        r.credential.key_id for r in retirements(creds, vault, NOW, rules, emergency=emergency)
    }
    current = vault.current
    if current is None or not current.enabled or creds.credential(current.key_id) is None:
        assert retired == set()
    else:
        assert current.key_id not in retired
        assert retired <= {c.key_id for c in creds.credentials}


@settings(max_examples=200)
@given(worlds())
def test_i4_promoted_credentials_go_only_after_grace(
    world: tuple[AppRecord, VaultEntry, Rules],
) -> None:
    creds, vault, rules = world
    for r in retirements(creds, vault, NOW, rules):
        unpromoted_orphan = (
            r.credential.made_by_us and r.credential.key_id not in vault.known_key_ids
        )
        if not unpromoted_orphan:
            assert vault.current is not None
            assert vault.current.created + rules.grace <= NOW


@settings(max_examples=200)
@given(worlds(), st.booleans())
def test_i5_orphans_go_after_verify_window_and_not_before(
    world: tuple[AppRecord, VaultEntry, Rules], emergency: bool
) -> None:
    creds, vault, rules = world
    current = vault.current
    if current is None or not current.enabled or creds.credential(current.key_id) is None:
        return
    retired = {
        r.credential.key_id for r in retirements(creds, vault, NOW, rules, emergency=emergency)
    }
    for c in creds.credentials:
        if c.key_id == current.key_id or not c.made_by_us or c.key_id in vault.known_key_ids:
            continue
        assert c.start is not None
        assert (c.key_id in retired) == (NOW - c.start >= rules.verify_window)


def apply(
    creds: AppRecord, vault: VaultEntry, mode: Mode, rules: Rules
) -> tuple[AppRecord, VaultEntry]:
    """Carries out a plan the way the engine does, in memory: removes the credentials the
    policy retires and disables exactly the Key Vault versions it names, nothing else."""
    retire: Retire | None
    match plan_app(APP, creds, vault, NOW, rules, mode):
        case Rotate(emergency=emergency):
            new = Credential(str(uuid.uuid4()), CREDENTIAL_PREFIX, NOW, NOW + rules.lifetime)
            creds = dataclasses.replace(creds, credentials=(*creds.credentials, new))
            vault = dataclasses.replace(
                vault, versions=(VaultVersion("new", new.key_id, NOW, True), *vault.versions)
            )
            retire = retirement_plan(APP, creds, vault, NOW, rules, emergency=emergency)
        case Retire() as retire:
            pass
        case Keep():
            retire = None
    if retire is None:
        return creds, vault
    removed = set(key_ids(retire))
    disabled = retire.versions_to_disable(removed)
    creds = dataclasses.replace(
        creds, credentials=tuple(c for c in creds.credentials if c.key_id not in removed)
    )
    vault = dataclasses.replace(
        vault,
        versions=tuple(
            dataclasses.replace(v, enabled=False) if v.version in disabled else v
            for v in vault.versions
        ),
    )
    return creds, vault


@settings(max_examples=200)
@given(worlds(), st.sampled_from(list(Mode)))
def test_i7_second_run_right_after_changes_nothing(
    world: tuple[AppRecord, VaultEntry, Rules], mode: Mode
) -> None:
    creds, vault, rules = world
    creds, vault = apply(creds, vault, mode, rules)
    again = plan_app(APP, creds, vault, NOW, rules, Mode.DUE)
    assert isinstance(again, Keep), again.reason  # nothing to remove, nothing to disable


# ----- the settled mark: when an app's version history may be skipped -----------------------


def marked(
    key: str | None, *, age: timedelta = timedelta(days=10), enabled: bool = True
) -> VaultVersion:
    return VaultVersion("v0", key, NOW - age, enabled, settled=True)


def test_a_marked_healthy_app_with_one_credential_needs_no_versions() -> None:
    assert not needs_versions(record(cred("k1")), marked("k1"))


def test_a_missing_secret_needs_no_versions_the_listing_is_complete() -> None:
    assert not needs_versions(record(cred("k1")), None)


def test_an_unmarked_current_version_needs_versions() -> None:
    current = dataclasses.replace(marked("k1"), settled=False)
    assert needs_versions(record(cred("k1")), current)


def test_any_credential_besides_the_current_one_needs_versions() -> None:
    person = cred("k2", ours=False)
    assert needs_versions(record(cred("k1"), person), marked("k1"))


def test_a_marked_current_version_caught_as_drift_needs_versions() -> None:
    """A hand-written version that copied a settled version's tags, mark included, reads as
    settled in the vault-wide listing (which names no version); once a Key Vault event has
    caught it (its drift-seen tag), status and runs read the history that shows the copy
    (VaultEntry.written_by_rotator) instead of taking the listing's word."""
    caught = dataclasses.replace(marked("k1"), tags={DRIFT_SEEN_TAG: NOW.isoformat()})
    assert needs_versions(record(cred("k1")), caught)


def test_a_marked_app_whose_current_credential_is_gone_needs_versions() -> None:
    assert needs_versions(record(cred("k2")), marked("k1"))
    assert needs_versions(record(), marked("k1"))


def test_a_marked_due_or_disabled_app_with_one_credential_needs_no_versions() -> None:
    """Its rotation retires only the current credential, whose version the mark names."""
    due = record(cred("k1", left=timedelta(days=5)))
    assert not needs_versions(due, marked("k1"))
    assert not needs_versions(record(cred("k1")), marked("k1", enabled=False))


def test_not_settled_while_a_removed_credentials_version_is_enabled() -> None:
    stale = entry(("k2", timedelta(days=1)), ("k1", timedelta(days=200)))
    assert not settled(record(cred("k2")), stale)
    disabled = dataclasses.replace(
        stale, versions=(stale.versions[0], dataclasses.replace(stale.versions[1], enabled=False))
    )
    assert settled(record(cred("k2")), disabled)


def test_not_settled_while_a_second_version_of_the_current_credential_is_enabled() -> None:
    """A retried write can leave two versions of one credential; both must go with it."""
    twice = entry(("k1", timedelta(days=1)), ("k1", timedelta(days=1)))
    assert not settled(record(cred("k1")), twice)


def test_not_settled_while_an_old_credential_waits_for_grace() -> None:
    vault = entry(("k2", timedelta(hours=1)), ("k1", timedelta(days=200)))
    assert not settled(record(cred("k2"), cred("k1")), vault)


@st.composite
def settled_worlds(draw: st.DrawFn) -> tuple[AppRecord, VaultEntry, Rules]:
    """An app whose last rotation finished: one credential, the current version's, and
    older versions either disabled or naming no removed credential."""
    only = Credential(
        "k0",
        CREDENTIAL_PREFIX if draw(st.booleans()) else None,
        NOW - timedelta(days=draw(st.integers(0, 400))),
        NOW + timedelta(days=draw(st.integers(-30, 400))),
    )
    ages = sorted(draw(st.lists(st.integers(0, 400 * 24), min_size=1, max_size=4)))
    versions = [VaultVersion("v0", "k0", NOW - timedelta(hours=ages[0]), True, settled=True)]
    for i, age in enumerate(ages[1:], start=1):
        key = draw(st.sampled_from(["k0", "k1", "k2", None]))
        enabled = draw(st.booleans()) if key is None else False
        versions.append(VaultVersion(f"v{i}", key, NOW - timedelta(hours=age), enabled))
    rules = dataclasses.replace(RULES, grace=timedelta(hours=draw(st.integers(0, 100))))
    return record(only), VaultEntry("s", tuple(versions)), rules


@settings(max_examples=300)
@given(settled_worlds(), st.sampled_from(list(Mode)))
def test_skipping_a_settled_apps_versions_changes_no_decision(
    world: tuple[AppRecord, VaultEntry, Rules], mode: Mode
) -> None:
    """Where the mark is true and needs_versions says no, the current version alone gives
    the same plan, and after a rotation the same retirements and versions to disable, as
    the whole history would (the engine decides those on the state after promotion)."""
    creds, full, rules = world
    assert settled(creds, full)
    current = full.versions[0]
    if needs_versions(creds, current):
        return
    alone = dataclasses.replace(full, versions=(current,))
    plan = plan_app(APP, creds, full, NOW, rules, mode)
    assert plan_app(APP, creds, alone, NOW, rules, mode) == plan
    if not isinstance(plan, Rotate):
        return
    new = Credential("k-new", CREDENTIAL_PREFIX, NOW, NOW + rules.lifetime)
    after = dataclasses.replace(creds, credentials=(*creds.credentials, new))
    promoted = VaultVersion("v-new", new.key_id, NOW, True)
    decisions = []
    for entry_ in (alone, full):
        entry_ = dataclasses.replace(entry_, versions=(promoted, *entry_.versions))
        decisions.append(retirement_plan(APP, after, entry_, NOW, rules, emergency=plan.emergency))
    assert decisions[0] == decisions[1]


# ----- app-management policies -----------------------------------------------------------------

BAN = PasswordRestriction("passwordAddition")
CAP_90 = PasswordRestriction("passwordLifetime", timedelta(days=90))


def policies(
    *restrictions: PasswordRestriction,
    assigned: tuple[PasswordRestriction, ...] | None = None,
    known: bool = True,
    unread: str | None = None,
) -> PasswordPolicies:
    default = AppManagementPolicy("0000", "tenant default", True, restrictions)
    mine = {"obj": AppManagementPolicy("p1", "mine", True, assigned)} if assigned else {}
    return PasswordPolicies(default, mine, assignments_known=known, unread=unread)


def due(passwords: PasswordPolicies | None, app_record: AppRecord | None = None) -> Rotate:
    rec = app_record or record(cred("k1", left=timedelta(days=5)))
    plan = plan_app(APP, rec, entry(("k1", timedelta(days=10))), NOW, RULES, passwords=passwords)
    assert isinstance(plan, Rotate)
    return plan


def test_without_policies_a_new_secret_lasts_the_configured_lifetime() -> None:
    plan = due(None)
    assert (plan.lifetime, plan.blocked) == (RULES.lifetime, None)
    assert plan.lifetime == due(policies()).lifetime


def test_a_cap_below_the_lifetime_shortens_it_under_a_margin_and_the_reason_says_so() -> None:
    plan = due(policies(CAP_90))
    assert plan.lifetime == timedelta(days=90) - POLICY_MARGIN
    assert "the tenant default app-management policy allows at most 90.0 days" in plan.reason
    assert due(policies(PasswordRestriction("passwordLifetime", timedelta(days=400)))).lifetime == (
        RULES.lifetime
    )


def test_password_addition_forbidden_blocks_with_the_fix() -> None:
    plan = due(policies(BAN))
    assert plan.blocked is not None
    assert "forbids adding a password" in plan.blocked.reason
    assert "appManagementPolicies/$ref" in plan.blocked.fix


def test_an_assigned_policy_replaces_the_default_and_a_disabled_one_restricts_nothing() -> None:
    assert due(policies(BAN, assigned=(CAP_90,))).blocked is None
    assert due(policies(BAN, assigned=(CAP_90,))).lifetime == timedelta(days=90) - POLICY_MARGIN
    disabled = PasswordPolicies(AppManagementPolicy("0", "d", False, (BAN,)))
    assert due(disabled).blocked is None
    off = PasswordRestriction("passwordAddition", enabled=False)
    assert due(policies(off)).blocked is None


def test_a_restriction_applies_from_its_date_and_to_an_app_of_unknown_age() -> None:
    since = PasswordRestriction("passwordAddition", applies_from=NOW - timedelta(days=30))
    old = dataclasses.replace(
        record(cred("k1", left=timedelta(days=5))), created=NOW - timedelta(days=90)
    )
    new = dataclasses.replace(old, created=NOW - timedelta(days=1))
    unknown = dataclasses.replace(old, created=None)
    assert due(policies(since), old).blocked is None
    assert due(policies(since), new).blocked is not None
    assert due(policies(since), unknown).blocked is not None  # the safe side


def test_a_cap_within_the_rotation_window_blocks_unless_the_app_may_be_exempt() -> None:
    short = PasswordRestriction("passwordLifetime", timedelta(days=20))
    blocked = due(policies(short)).blocked
    assert blocked is not None
    assert "ROTATION_ROTATE_BEFORE_DAYS below 20.0 days" in blocked.fix
    maybe_exempt = due(policies(short, known=False))
    assert (maybe_exempt.blocked, maybe_exempt.lifetime) == (None, RULES.lifetime)


def test_unread_assignments_never_block_on_the_default_but_a_cap_still_applies() -> None:
    plan = due(policies(BAN, CAP_90, known=False))
    assert plan.blocked is None
    assert plan.lifetime == timedelta(days=90) - POLICY_MARGIN
    assert "unless a policy of the app's own" in plan.reason
    assert password_rule(policies(BAN, known=False), record()) == PasswordRule(
        "the tenant default app-management policy (unless a policy of the app's own, which "
        "could not be read, exempts it)",
        blocked=False,
        max_lifetime=None,
        certain=False,
    )


def test_policies_that_could_not_be_read_are_named_in_the_reason() -> None:
    plan = due(PasswordPolicies(unread="403 from Graph"))
    assert "could not be read (403 from Graph)" in plan.reason
    assert (plan.blocked, plan.lifetime) == (None, RULES.lifetime)


def test_a_healthy_app_is_kept_whatever_the_policies_say() -> None:
    plan = plan_app(
        APP, record(cred("k1")), entry(("k1", timedelta(days=10))), NOW, RULES,
        passwords=policies(BAN),
    )  # fmt: skip
    assert isinstance(plan, Keep)
