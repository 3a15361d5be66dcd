"""What the Function App serves when its settings are invalid.

Validating settings at import time used to stop the worker from indexing any function,
leaving the reason in the host's own logs only. Now function_app.py catches the error and
serves this instead: every function still indexes, ``GET /api/health`` answers 503 naming
each bad setting (never its value), every other route answers 503 with that same line
(no caller can be authorized without valid settings, and the line names no value),
`/api/doctor` reports it as its failed `settings` check, and the timer fails with it
(a failed invocation, which the alerts watch) after logging `run.failed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rotation import answers
from rotation.doctor import Site, settings_failed, text
from rotation.errors import SettingsError
from rotation.http_api import Answer, TextAnswer
from rotation.telemetry import logs

log = logs.get_logger("rotation.settings")


class Misconfigured:
    """Stands in for http_api.Api: the same routes, each answering with the one line."""

    def __init__(self, message: str, site: Site) -> None:
        self.message = message
        self.site = site
        log.error("settings.invalid", error=message)

    def _error(self) -> answers.ProblemDetail:
        return answers.ProblemDetail.of("invalid_settings", self.message)

    def _refusal(self) -> Answer:
        return 503, answers.Problem(error=self._error()).body()

    def health(self) -> Answer:
        return 503, answers.Misconfigured(status="misconfigured", error=self._error()).body()

    async def status(self, headers: Mapping[str, str]) -> Answer:
        return self._refusal()

    async def rotations(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        return self._refusal()

    async def doctor(self, headers: Mapping[str, str]) -> Answer:
        checks = [settings_failed(self.message, self.site)]
        return 503, answers.DoctorMisconfigured.refusing(checks, self._error()).body()

    async def doctor_text(self, headers: Mapping[str, str]) -> TextAnswer:
        return 503, text([settings_failed(self.message, self.site)])

    async def timer(self) -> dict[str, Any]:
        log.error("run.failed", error_type="SettingsError", error=self.message)
        raise SettingsError(self.message)

    async def vault_event(self, raw: Any) -> None:
        """Raised, so that Event Grid retries the delivery (then dead-letters it) while the
        settings are wrong, rather than the event being lost."""
        log.error("run.failed", error_type="SettingsError", error=self.message)
        raise SettingsError(self.message)

    async def close(self) -> None:
        """Nothing was opened."""
