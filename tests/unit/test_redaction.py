"""Redaction on its own: the registry of secret values, credential shapes, and records
scrubbed at birth without any logging set-up (rotation/telemetry/logs.py is not imported here)."""

from __future__ import annotations

import base64
import logging
import logging.handlers
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.telemetry import redaction

SECRET = "abc8Q~ZZredactionOnlySecret_0987654321xyz"


def test_short_values_are_not_registered() -> None:
    registry = redaction.SecretRegistry()
    registry.add("abc")
    assert registry.scrub("abc abc") == "abc abc"


def test_secret_containing_another_is_scrubbed_whole() -> None:
    registry = redaction.SecretRegistry()
    registry.add("inner-secret")
    registry.add("outer-inner-secret-more")
    assert registry.scrub("x outer-inner-secret-more y") == "x [REDACTED] y"


def test_client_secret_from_the_environment_is_registered() -> None:
    secret = "env-client-secret-value-000111222333"
    found = redaction.secrets_in({"AZURE_CLIENT_SECRET": secret, "PATH": "/bin"})
    assert found == [secret]
    redaction.register_secret(found[0])
    assert redaction.scrub(f"x{secret}y") == "x[REDACTED]y"


def test_base64_form_of_a_registered_secret_is_scrubbed() -> None:
    secret = "another-smtp-password-0987654321"
    redaction.register_secret(secret)
    encoded = base64.b64encode(secret.encode()).decode()
    assert redaction.scrub(f"334 {encoded}") == "334 [REDACTED]"


def test_ordinary_words_survive_credential_shapes() -> None:
    text = "the bearer token was refused; basic checks passed; password credentials: 2"
    assert redaction.scrub(text) == text


def test_redact_event_blanks_secret_keys_and_scrubs_values_everywhere() -> None:
    redaction.register_secret(SECRET)
    event = {
        "event": "x.y",
        "client_secret": "named-but-not-registered",
        "note": [f"a {SECRET} b"],
        "nested": {"password": "p" * 10, "count": 1},
        "error": ValueError(f"echoed {SECRET}"),
    }
    assert redaction.redact_event(None, "info", event) == {
        "event": "x.y",
        "client_secret": "[REDACTED]",
        "note": ["a [REDACTED] b"],
        "nested": {"password": "[REDACTED]", "count": 1},
        "error": "ValueError: echoed [REDACTED]",
    }


def test_records_are_scrubbed_at_birth_by_the_record_scrubber_alone() -> None:
    """What tests/leaks.py relies on: no logging set-up, only the scrubber installed."""
    redaction.install_record_scrubber()
    redaction.register_secret(SECRET)
    keep = logging.handlers.BufferingHandler(capacity=10)  # keeps raw records, as an exporter
    logger = logging.getLogger("tests.redaction.bare")
    logger.propagate = False
    logger.addHandler(keep)
    try:
        logger.warning("sent %s", SECRET, extra={"detail": f"pw {SECRET}", "token": "t" * 12})
    finally:
        logger.removeHandler(keep)
    (record,) = keep.buffer
    assert record.getMessage() == "sent [REDACTED]"
    assert record.detail == "pw [REDACTED]"  # type: ignore[attr-defined]
    assert record.token == redaction.REDACTED  # type: ignore[attr-defined]


# ----- the word check in front of the credential expression ---------------------------


def test_every_non_ascii_letter_the_expression_folds_to_ascii_is_folded() -> None:
    """`_FOLD` is complete: a letter re.IGNORECASE matches to an ASCII one (such as the
    Kelvin sign to k) would otherwise hide a credential word from the word check."""
    ascii_letter = re.compile("[a-z]", re.IGNORECASE)
    folding = [
        chr(point)
        for point in range(0x80, sys.maxunicode + 1)
        if ascii_letter.fullmatch(chr(point))
    ]
    assert folding, "the search found nothing: it cannot tell a complete table from a gap"
    unfolded = [c for c in folding if not c.translate(redaction._FOLD).isascii()]
    assert not unfolded, f"letters missing from _FOLD: {unfolded}"


#: One text per alternative of the credential expression, written from the expression.
_CREDENTIALS = (
    "Bearer abcdefghijklmnop1234",
    "authorization: Basic dXNlcjpwYXNz",
    "ACCESS_TOKEN=abc",
    "refresh_token: abc",
    "'id_token': 'abc'",
    "client_secret=abc",
    "Client_Assertion=abc",
    "password: abc",
    "x-functions-key=abc",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln",
)


@pytest.mark.parametrize("text", _CREDENTIALS)
def test_the_word_check_lets_through_each_kind_of_credential(text: str) -> None:
    assert redaction._CREDENTIAL_TEXT.search(text)
    assert redaction.may_hold_credential(text)
    assert redaction.may_hold_credential(f"x {text.swapcase()} y")


_PIECES = st.sampled_from(
    [
        *_CREDENTIALS,
        "bearer",
        "authorization",
        "client_secret",
        "client_assertion",
        "password",
        "x-functions-key",
        "Bearer ",
        "Basic ",
        "BEARER\t",
        "access",
        "_TOKEN",
        "\u0130",
        "\u0131",
        "\u017f",
        "\u212a",
        "=",
        ": ",
        '"',
        "'",
        " ",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln",
        "abcdefghijklmnopqrstu0123456789",
        "pa",
        "ss",
        "word",
        "Cl",
        "ient_Secret",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=4), max_size=12).map("".join))
def test_the_word_check_lets_through_every_text_the_expression_matches(text: str) -> None:
    if redaction._CREDENTIAL_TEXT.search(text):
        assert redaction.may_hold_credential(text), text


def test_the_word_check_passes_credentials_in_folded_letters() -> None:
    kelvin_jwt = "\u212a eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"
    long_s = "pa\u017f\u017fword=hunter2hunter2"
    for text in (kelvin_jwt, long_s, "AUTHORIZATION: Basic dXNlcjpwYXNz"):
        assert redaction._CREDENTIAL_TEXT.search(text), text
        assert redaction.may_hold_credential(text)
        assert redaction.REDACTED in redaction.scrub(text)
    assert not redaction.may_hold_credential('{"event": "app.finished", "outcome": "unchanged"}')


def test_text_shorter_than_a_secret_cannot_hold_a_credential_shape() -> None:
    """`scrub` returns text shorter than `_MIN_SECRET_LENGTH` untouched: no registered value
    is that short, and the credential expression's shortest match ('id_token=x') is longer.
    The width comes from the expression's own parse (re's parser, as re.compile uses it)."""
    pattern = redaction._CREDENTIAL_TEXT
    shortest, _ = re._parser.parse(pattern.pattern, pattern.flags).getwidth()  # type: ignore[attr-defined]
    assert shortest >= redaction._MIN_SECRET_LENGTH
    assert redaction.scrub("id_toke") == "id_toke"
    assert redaction.scrub("id_token=x") == "id_token=[REDACTED]"
