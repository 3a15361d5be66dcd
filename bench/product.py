"""The rotator under test, wired exactly as the Function App wires it, plus a log tap.

The product is built from the sandbox's settings with `RotationService.open` and logs
through its own pipeline (JSON, redaction included, since that is part of its cost). The
tap stands in for the Functions host's stdout: it keeps only the few fields the benchmark
reads (event, app id, timestamp, attempts) and the line and byte counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from bench.world import SandboxProcess
from rotation.service import RotationService
from rotation.settings import load_settings
from rotation.telemetry import logs

#: Events whose timestamps the benchmark uses (rotation.run.engine and rotation.run.discovery).
TIMED_EVENTS = frozenset(
    {
        "run.started",
        "discovery.finished",
        "app.planned",
        "credential.created",
        "smtp.verified",
        "vault.promoted",
        "run.finished",
    }
)


@dataclass(frozen=True, slots=True)
class LogEvent:
    event: str
    app_id: str | None
    at: datetime
    attempts: int | None


@dataclass
class LogTap:
    """A text stream for logging.StreamHandler that remembers the timed events."""

    events: list[LogEvent] = field(default_factory=list)
    lines: int = 0
    bytes: int = 0

    def write(self, text: str) -> int:
        self.bytes += len(text)
        for line in text.splitlines():
            if not line.strip():
                continue
            self.lines += 1
            self._keep(line)
        return len(text)

    def _keep(self, line: str) -> None:
        if not any(name in line for name in TIMED_EVENTS):
            return
        try:
            record = json.loads(line)
        except ValueError:
            return
        if record.get("event") in TIMED_EVENTS and "timestamp" in record:
            attempts = record.get("attempts")
            self.events.append(
                LogEvent(
                    record["event"],
                    record.get("app_id"),
                    datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")),
                    attempts if isinstance(attempts, int) else None,
                )
            )

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def clear(self) -> None:
        self.events.clear()
        self.lines = 0
        self.bytes = 0


@asynccontextmanager
async def open_product(
    world: SandboxProcess, **overrides: object
) -> AsyncIterator[tuple[RotationService, LogTap]]:
    """The service for `world`, with setting overrides such as ``max_concurrency=32``."""
    env = dict(world.env)
    for key, value in overrides.items():
        env[f"ROTATION_{key.upper()}"] = str(value)
    os.environ.update(env)  # DefaultAzureCredential reads AZURE_* from the environment
    settings = load_settings(env)
    tap = LogTap()
    logs.configure("json", stream=tap, known_secrets=[env["AZURE_CLIENT_SECRET"]])  # type: ignore[arg-type]
    async with RotationService.open(settings) as service:
        yield service, tap
