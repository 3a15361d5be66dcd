"""The whole suite's leak check (I6): no secret any sandbox issued appears in anything a
test printed or logged.

Every `sandbox` fixture hands its state over; every test's captured stdout, stderr and log
records (pytest keeps them per test, passed or failed) are searched at the end of the
session for each issued secret, as is and base64-encoded (SMTP AUTH's encoding). A hit
fails the session. (tests/reliability scans more: HTTP answers, reports, exceptions.)
"""

from __future__ import annotations

import base64

import pytest

from sandbox.state import SandboxState

NAME = "suite-leak-check"


class SuiteLeakCheck:
    """A pytest plugin, registered by tests/conftest.py."""

    def __init__(self) -> None:
        self.states: list[SandboxState] = []
        self.captured: list[tuple[str, str]] = []  # (test id, what it printed and logged)

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
        ]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        text = "\n".join(content for _, content in report.sections)
        if text:
            self.captured.append((report.nodeid, text))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        hits = self.hits()
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"leak check: {len(self.secrets())} issued secrets searched in the captured "
                f"output of {len(self.captured)} test phases: {len(hits)} hits"
            )
            for hit in hits[:20]:
                reporter.write_line(f"LEAK {hit}", red=True)
        if hits:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
