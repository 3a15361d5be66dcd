"""Outside names and values shown back: scrubbed, then cut to ECHO_CHARS, one rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rotation.telemetry.redaction import ECHO_CHARS, ELLIPSIS, REDACTED, echo, register_secret


def test_short_text_is_shown_whole_and_quoted() -> None:
    assert echo("mode") == "'mode'"
    assert echo("mode", quoted=False) == "mode"
    assert echo(None) == "None"


def test_long_text_is_cut_with_a_mark() -> None:
    shown = echo("k" * 70_000, quoted=False)
    assert len(shown) == ECHO_CHARS
    assert shown.endswith(ELLIPSIS)
    assert shown.startswith("k" * 10)


def test_a_secret_is_scrubbed_before_the_cut() -> None:
    secret = "a-registered-secret-value-0123456789"
    register_secret(secret)
    # Cut first, the secret's prefix would survive past the scrubber (it is shorter than
    # the whole value the registry knows).
    shown = echo("x" * 40 + secret, quoted=False)
    assert secret[:10] not in shown
    assert REDACTED[:10] in shown


@given(st.one_of(st.text(), st.integers(), st.none(), st.lists(st.text())), st.booleans())
def test_nothing_shown_is_longer_than_the_limit(value: object, quoted: bool) -> None:
    assert len(echo(value, quoted=quoted)) <= ECHO_CHARS
