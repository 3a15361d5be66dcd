"""A wall clock that tests can move forward, shared by the sandbox and the rotator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Real UTC time plus an offset, so expiry can be tested without waiting months."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
