"""The logging pipeline scrubs secret values wherever they hide."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import SecretStr

from rotation import logs

SECRET = "abc8Q~ZZtopSecretValue_1234567890abcdefgh"


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    logs.register_secret(SECRET)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_registered_secret_is_scrubbed_inside_longer_strings(captured: io.StringIO) -> None:
    logs.get_logger().info(
        "credential.created", note=f"value was {SECRET}!", nested={"a": [SECRET]}
    )
    text = captured.getvalue()
    assert SECRET not in text
    assert "value was [REDACTED]!" in text
    assert lines(captured)[0]["nested"] == {"a": ["[REDACTED]"]}


def test_secret_looking_keys_are_blanked(captured: io.StringIO) -> None:
    logs.get_logger().info("x", client_secret="not-registered-but-named", password="hunter22xx")
    event = lines(captured)[0]
    assert event["client_secret"] == "[REDACTED]"
    assert event["password"] == "[REDACTED]"


def test_secretstr_never_renders(captured: io.StringIO) -> None:
    logs.get_logger().info("x", payload=SecretStr("another-value-123456"))
    assert "another-value-123456" not in captured.getvalue()


def test_exception_text_is_scrubbed(captured: io.StringIO) -> None:
    try:
        raise RuntimeError(f"server echoed {SECRET}")
    except RuntimeError:
        logs.get_logger().exception("smtp.failed")
    text = captured.getvalue()
    assert SECRET not in text
    assert "server echoed [REDACTED]" in text


def test_stdlib_logging_from_libraries_is_scrubbed(captured: io.StringIO) -> None:
    logging.getLogger("some.library").warning("sending %s to the server", SECRET)
    event = lines(captured)[0]
    assert event["event"] == "sending [REDACTED] to the server"
    assert SECRET not in captured.getvalue()


def test_short_values_are_not_registered() -> None:
    registry = logs.SecretRegistry()
    registry.add("abc")
    assert registry.scrub("abc abc") == "abc abc"


def test_secret_containing_another_is_scrubbed_whole() -> None:
    registry = logs.SecretRegistry()
    registry.add("inner-secret")
    registry.add("outer-inner-secret-more")
    assert registry.scrub("x outer-inner-secret-more y") == "x [REDACTED] y"


def test_existing_handlers_can_be_kept_and_given_the_redacting_formatter() -> None:
    """The Functions worker's handler ships records to Application Insights: it must stay,
    and it must format through the redacting pipeline."""
    shipped = io.StringIO()
    worker_handler = logging.StreamHandler(shipped)
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [worker_handler]
    try:
        logs.configure("json", keep_handlers=True)
        logs.register_secret(SECRET)
        logs.get_logger().info("x", note=SECRET)
        assert root.handlers == [worker_handler]
        assert json.loads(shipped.getvalue())["note"] == "[REDACTED]"
    finally:
        root.handlers[:] = saved
