"""The product's log lines as Application Insights receives them: JSON, one object a line,
written through rotation.telemetry.logs' own pipeline (redaction included)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from rotation.telemetry import logs

Line = dict[str, Any]


@contextmanager
def json_lines() -> Iterator[list[Line]]:
    """Collects every line logged inside the block, parsed; the root logger's handlers
    and level, and structlog's configuration, are restored afterwards. The list is
    filled when the block ends."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    stream = io.StringIO()
    lines: list[Line] = []
    try:
        logs.configure("json", stream=stream)
        yield lines
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.configure(**saved[2])
        lines.extend(json.loads(text) for text in stream.getvalue().splitlines() if text)


def rotator_lines(lines: list[Line]) -> list[Line]:
    """The rotator's own events (the SDKs' warnings come through the same pipeline)."""
    return [line for line in lines if str(line.get("logger", "")).startswith("rotation")]
