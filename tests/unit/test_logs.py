"""The logging pipeline scrubs secret values wherever they hide."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import SecretStr

from rotation.telemetry import logs, redaction

SECRET = "abc8Q~ZZtopSecretValue_1234567890abcdefgh"


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    redaction.register_secret(SECRET)
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
        redaction.register_secret(SECRET)
        logs.get_logger().info("x", note=SECRET)
        assert root.handlers == [worker_handler]
        assert json.loads(shipped.getvalue())["note"] == "[REDACTED]"
    finally:
        root.handlers[:] = saved


# ----- record level: every handler, whenever it was added -----------------------------


class Keep(logging.Handler):
    """A handler added after configure() that keeps raw records, as an exporter would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(repr(vars(r)) for r in self.records)


@pytest.fixture
def exporter(captured: io.StringIO) -> Keep:
    keep = Keep()
    logging.getLogger().addHandler(keep)
    yield keep  # type: ignore[misc]
    logging.getLogger().removeHandler(keep)


JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0In0.c2lnbmF0dXJlLXZhbHVl"
OPAQUE = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhvcGFxdWVfdG9rZW4"


def test_a_handler_added_later_gets_scrubbed_raw_records(exporter: Keep) -> None:
    library = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    library.warning("Request headers: %r", {"Authorization": f"Bearer {OPAQUE}"})
    library.warning("body: %s", f'{{"value": "{SECRET}"}}')
    library.warning("form: grant_type=client_credentials&client_secret=%s&scope=x", "s3cr3t-v4lue")
    library.warning("token response %s", f'{{"token_type": "Bearer", "access_token": "{OPAQUE}"}}')
    library.warning("a JWT %s in passing", JWT)
    try:
        raise ValueError(f"boom {SECRET}")
    except ValueError:
        library.exception("failed")
    text = exporter.text()
    for needle in (SECRET, OPAQUE, JWT, "s3cr3t-v4lue"):
        assert needle not in text
    assert len(exporter.records) == 6
    assert all(r.args == () and r.exc_info is None for r in exporter.records)
    assert "Traceback" in exporter.records[-1].getMessage()  # the traceback stays, scrubbed
    assert "client_secret=[REDACTED]&scope=x" in exporter.records[2].getMessage()


def test_structlog_records_stay_dicts_and_are_scrubbed_for_later_handlers(exporter: Keep) -> None:
    logs.get_logger("rotation.engine").info("x.y", note=f"has {SECRET}", auth=f"Bearer {OPAQUE}")
    (record,) = exporter.records
    assert isinstance(record.msg, dict)
    assert SECRET not in exporter.text()
    assert OPAQUE not in exporter.text()


def test_extra_attributes_are_scrubbed_for_later_handlers(exporter: Keep) -> None:
    # Exporters (OpenTelemetry's) send `extra=` attributes as custom dimensions.
    library = logging.getLogger("some.library")
    library.warning("sent", extra={"detail": f"pw {SECRET}", "client_secret": "x" * 12, "n": 3})
    library.warning("plain")  # no extra: nothing else changes
    first, second = exporter.records
    assert first.detail == "pw [REDACTED]"  # type: ignore[attr-defined]
    assert first.client_secret == redaction.REDACTED  # type: ignore[attr-defined]
    assert first.n == 3  # type: ignore[attr-defined]
    assert SECRET not in exporter.text()
    assert second.getMessage() == "plain"
