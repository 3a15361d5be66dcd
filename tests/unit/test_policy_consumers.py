"""Early retirement is the policy's decision, from plain inputs: the operator's
declaration, the version Key Vault serves and what each consumer site resolves."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from rotation.core.policy import early_retirement, plan_app, retirements
from rotation.model import NO_ACTIVE_VERSION, UNREPORTED, ConsumerCheck, ConsumerReference, Keep
from tests.unit.test_policy import APP, NOW, RULES, cred, entry, record

SITE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/web"
VAULT = entry(("k2", timedelta(hours=1)), ("k1", timedelta(days=100)))  # current: v0 (k2)


def ref(
    *,
    site: str = SITE,
    secret: str = APP.secret_name,
    status: str = "Resolved",
    active: str | None = "v0",
    pinned: str | None = None,
    details: str | None = "Reference has been successfully resolved.",
) -> ConsumerReference:
    return ConsumerReference(site, "SMTP_PASSWORD", secret, status, pinned, active, details)


def check(
    *refs: ConsumerReference, version: str = "v0", unreachable: tuple[str, ...] = ()
) -> ConsumerCheck:
    return ConsumerCheck(version, refs, unreachable, APP.secret_name)


def test_a_fully_covered_app_whose_every_consumer_confirmed_may_retire_before_grace() -> None:
    confirmed = check(ref(), ref(site=SITE + "/slots/staging"))
    why = early_retirement(confirmed, VAULT, fully_covered=True)
    assert why is not None
    assert "all 2 consumer site(s) confirmed version v0" in why
    gone = retirements(
        record(cred("k2", age=timedelta(hours=1)), cred("k1")), VAULT, NOW, RULES, early=why
    )
    assert [r.credential.key_id for r in gone] == ["k1"]
    assert gone[0].reason.startswith("superseded by k2; all 2 consumer site(s)")


def test_without_the_early_reason_the_grace_is_kept() -> None:
    creds = record(cred("k2", age=timedelta(hours=1)), cred("k1"))
    assert retirements(creds, VAULT, NOW, RULES) == ()
    plan = plan_app(APP, creds, VAULT, NOW, RULES)
    assert isinstance(plan, Keep)


def test_an_app_not_declared_fully_covered_keeps_its_grace() -> None:
    assert early_retirement(check(ref()), VAULT, fully_covered=False) is None


def test_no_consumer_found_is_no_confirmation() -> None:
    assert early_retirement(check(), VAULT, fully_covered=True) is None


def test_a_check_about_another_version_confirms_nothing() -> None:
    stale = check(ref(active="v1"), version="v1")
    assert early_retirement(stale, VAULT, fully_covered=True) is None


def test_a_consumer_still_on_the_old_version_holds_retirement() -> None:
    assert early_retirement(check(ref(), ref(site="other", active="v1")), VAULT, True) is None


def test_a_reference_that_did_not_resolve_holds_retirement_and_says_why() -> None:
    failed = ref(status="AccessToKeyVaultDenied", active=None, details="denied by the vault")
    assert early_retirement(check(ref(), failed), VAULT, True) is None
    assert failed.problem == "AccessToKeyVaultDenied: denied by the vault"


def test_a_username_reference_that_did_not_resolve_holds_retirement_too() -> None:
    username = ref(secret=APP.secret_name + "-username", status="SecretNotFound", active=None)
    assert early_retirement(check(ref(), username), VAULT, True) is None


def test_a_pinned_reference_is_a_problem_even_on_the_current_version() -> None:
    pinned = ref(pinned="v0")
    assert not pinned.resolves("v0")
    assert "pinned to version v0" in (pinned.problem or "")
    assert early_retirement(check(pinned), VAULT, True) is None


def test_an_unreachable_site_never_allows_early_retirement() -> None:
    assert early_retirement(check(ref(), unreachable=("site-x: 503",)), VAULT, True) is None


def test_a_resolved_reference_without_an_active_version_is_not_a_confirmation() -> None:
    # App Service may leave activeVersion out (Microsoft's published example has none):
    # which version the site serves is then unknown, so the grace is kept, and said why.
    silent = ref(active=None)
    seen = check(silent)
    assert early_retirement(seen, VAULT, True) is None
    assert silent.problem is None  # nothing wrong with the reference itself...
    assert seen.problem_of(silent) == NO_ACTIVE_VERSION  # ...but it confirms nothing
    assert "activeVersion" in NO_ACTIVE_VERSION
    assert "grace period is kept" in NO_ACTIVE_VERSION


def test_the_username_needs_no_active_version() -> None:
    # The username companion's versions are not the password's: resolving is enough.
    username = ref(secret=APP.secret_name + "-username", active=None)
    seen = check(ref(), username)
    assert seen.problem_of(username) is None
    assert early_retirement(seen, VAULT, True) is not None


def test_a_reference_without_a_status_holds_retirement_and_says_why() -> None:
    # The published example of the answer has no status either.
    unreported = ref(status=UNREPORTED, active=None, details=None)
    assert not unreported.resolved
    assert early_retirement(check(unreported), VAULT, True) is None
    problem = unreported.problem or ""
    assert "no status" in problem
    assert "grace period is kept" in problem
    assert check(unreported).problem_of(unreported) == problem


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Resolved", "SecretNotFound", "Initialized", UNREPORTED]),
            st.sampled_from(["v0", "v1", None]),
            st.sampled_from([None, "v0"]),
        ),
        max_size=4,
    ),
    st.booleans(),
    st.booleans(),
)
def test_early_retirement_needs_every_consumer_on_the_current_version(
    seen: list[tuple[str, str | None, str | None]], covered: bool, unreachable: bool
) -> None:
    refs = [ref(site=f"site-{i}", status=s, active=a, pinned=p) for i, (s, a, p) in enumerate(seen)]
    why = early_retirement(check(*refs, unreachable=("x",) if unreachable else ()), VAULT, covered)
    everyone = bool(refs) and all(
        r.status == "Resolved" and r.active_version == "v0" and r.pinned_version is None
        for r in refs
    )
    assert (why is not None) == (covered and not unreachable and everyone)
