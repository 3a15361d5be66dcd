"""Redaction on its own: the registry of secret values, credential shapes, and records
scrubbed at birth without any logging set-up (rotation/telemetry/logs.py is not imported here)."""

from __future__ import annotations

import base64
import logging
import logging.handlers

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
