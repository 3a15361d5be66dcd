"""The whole suite's raw-record leak search finds what it looks for, wherever it hides."""

from __future__ import annotations

import base64
import logging

from tests.leaks import find_secrets, record_text

ENTRA_STYLE = "abc8Q~defGHIjklMNOpqrSTUvwxYZ0123456789_-"
TOKEN = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhvcGFxdWVfdG9rZW4"


def test_finds_plain_base64_and_embedded_secrets_and_nothing_else() -> None:
    encoded = base64.b64encode(ENTRA_STYLE.encode()).decode()
    secrets = {ENTRA_STYLE, TOKEN, encoded, "has a space in it!"}
    texts = [
        f"x{ENTRA_STYLE}y and more",
        f"334 {encoded}",
        "nothing here but a guid 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "has a space in it! said the log",
    ]
    assert find_secrets(texts, secrets) == {ENTRA_STYLE, encoded, "has a space in it!"}
    assert find_secrets(["clean " * 1000], secrets) == set()


def test_record_text_covers_structlog_dicts_and_formatted_messages() -> None:
    record = logging.LogRecord("n", logging.INFO, "f", 1, "value %s", (TOKEN,), None)
    assert TOKEN in record_text(record)
    record = logging.LogRecord("n", logging.INFO, "f", 1, {"event": "e", "x": TOKEN}, (), None)
    assert TOKEN in record_text(record)
