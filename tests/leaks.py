"""The whole suite's leak check (I6): no secret any sandbox issued appears in anything a
test printed or logged.

Every `sandbox` fixture hands its state over; every test's captured stdout, stderr and log
records (pytest keeps them per test, passed or failed) are searched at the end of the
session for each issued secret, as is and base64-encoded (SMTP AUTH's encoding). A hit
fails the session. (tests/reliability scans more: HTTP answers, reports, exceptions.)

Raw records too: pytest's capture keeps only what its own handler formatted at its level,
so every LogRecord the suite creates (at any level, from any logger) is also taken as it
leaves the product's record scrubber, before any handler, and searched at the end of its
test phase for every secret issued so far.

Under pytest-xdist (`make test` runs the suite on several workers) each worker searches what
its own tests made and hands its summary to the controller, which prints the one line and
fails the session on any hit.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from typing import Any

import pytest

from rotation.telemetry import redaction
from sandbox.state import SandboxState

#: Characters of every secret the sandbox issues (Entra-style secrets, tokens, base64).
_SECRET_CHARS = "A-Za-z0-9_\\-~.+/="
_TOKENS = re.compile(f"[{_SECRET_CHARS}]{{12,}}")
_SECRET_SHAPE = re.compile(f"[{_SECRET_CHARS}]+")


def find_secrets(texts: Iterable[str], secrets: set[str]) -> set[str]:
    """The secrets found in `texts`: every run of secret characters is cut into windows of
    each secret length and looked up (fast for many secrets and many megabytes)."""
    shaped = {s for s in secrets if _SECRET_SHAPE.fullmatch(s)}
    others = secrets - shaped
    lengths = sorted({len(s) for s in shaped})
    found: set[str] = set()
    for text in texts:
        found.update(s for s in others if s in text)
        for token in _TOKENS.findall(text):
            for n in lengths:
                if n > len(token):
                    break
                found.update(
                    w for i in range(len(token) - n + 1) if (w := token[i : i + n]) in shaped
                )
    return found


def record_text(record: logging.LogRecord) -> str:
    message = repr(record.msg) if isinstance(record.msg, dict) else record.getMessage()
    return f"{message} {record.exc_text or ''} {record.stack_info or ''}"


NAME = "suite-leak-check"


class SuiteLeakCheck:
    """A pytest plugin, registered by tests/conftest.py."""

    def __init__(self) -> None:
        self.states: list[SandboxState] = []
        self.captured: list[tuple[str, str]] = []  # (test id, what it printed and logged)
        self.raw: list[str] = []  # records made since the last test phase ended
        self.raw_records = 0
        self.raw_hits: list[str] = []
        self._known: set[str] = set()
        self._seen: dict[int, int] = {}  # id(state) -> issued secrets already known
        self.from_workers: list[dict[str, Any]] = []  # summaries of xdist workers

    def pytest_configure(self, config: pytest.Config) -> None:
        redaction.install_record_scrubber()  # the product's, innermost: we see what handlers see
        made = logging.getLogRecordFactory()

        def keep(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = made(*args, **kwargs)
            self.raw.append(record_text(record))
            return record

        logging.setLogRecordFactory(keep)

    def known_secrets(self) -> set[str]:
        for state in self.states:
            issued = state.issued_secrets
            new = issued[self._seen.get(id(state), 0) :]
            self._seen[id(state)] = len(issued)
            self._known.update(new)
            self._known.update(base64.b64encode(v.encode()).decode() for v in new)
        return self._known

    def secrets(self) -> set[str]:
        values = {s for state in self.states for s in state.issued_secrets}
        return values | {base64.b64encode(v.encode()).decode() for v in values}

    def hits(self) -> list[str]:
        secrets = self.secrets()
        return [
            f"{test}: a secret ending in ...{secret[-4:]}"
            for test, text in self.captured
            for secret in secrets
            if secret in text
        ] + self.raw_hits

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        text = "\n".join(content for _, content in report.sections)
        if text:
            self.captured.append((report.nodeid, text))
        raw, self.raw = self.raw, []
        self.raw_records += len(raw)
        for secret in find_secrets(raw, self.known_secrets()):
            self.raw_hits.append(
                f"{report.nodeid} (raw record): a secret ending in ...{secret[-4:]}"
            )

    def summary(self) -> dict[str, Any]:
        """What this process searched and found, as plain data (a pytest-xdist worker hands
        it to the controller, which adds up every worker's)."""
        return {
            "secrets": len(self.secrets()),
            "phases": len(self.captured),
            "raw_records": self.raw_records,
            "hits": self.hits(),
        }

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the xdist controller: a worker finished; keep what its check found."""
        output = getattr(node, "workeroutput", {}).get(NAME)
        if output is not None:
            self.from_workers.append(output)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports
            workeroutput[NAME] = self.summary()
            return
        parts = [self.summary(), *self.from_workers]
        hits = [hit for part in parts for hit in part["hits"]]
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            secrets, phases, raw = (
                sum(p[k] for p in parts) for k in ("secrets", "phases", "raw_records")
            )
            reporter.write_line(
                f"leak check: {secrets} issued secrets searched in the captured "
                f"output of {phases} test phases and in {raw} raw log "
                f"records: {len(hits)} hits"
            )
            for hit in hits[:20]:
                reporter.write_line(f"LEAK {hit}", red=True)
        if hits:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
