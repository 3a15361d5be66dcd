"""The reliability suite's summary: a table of what was tried and what held, printed at the
end of every run that includes tests/reliability (and written to $RELIABILITY_REPORT, e.g.
docs/reliability.md, when that is set), and the session-wide leak scan.

A plugin registered by tests/conftest.py rather than hooks in tests/reliability/conftest.py:
under pytest-xdist the controller collects no tests and so never loads that conftest. Each
worker scans its own session and hands its rows and leaks to the controller, which prints one
table and fails the session on any leak.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from tests.reliability.evidence import LeakScan, Ledger, Row

SESSION_SCAN = pytest.StashKey[LeakScan]()
LEDGER = pytest.StashKey[Ledger]()
NAME = "reliability-report"
TITLE = "Reliability: what was tried and what held"


def session_scan(config: pytest.Config) -> LeakScan:
    if SESSION_SCAN not in config.stash:
        config.stash[SESSION_SCAN] = LeakScan()
    return config.stash[SESSION_SCAN]


def ledger(config: pytest.Config) -> Ledger:
    if LEDGER not in config.stash:
        config.stash[LEDGER] = Ledger()
    return config.stash[LEDGER]


def _scan_whole_session(config: pytest.Config) -> list[str]:
    """The union of every test's texts, searched once more for every sandbox's secrets
    (a secret issued in one test and printed in another is caught here); one ledger row."""
    scan = config.stash.get(SESSION_SCAN, None)
    if scan is None:
        return []
    scan.scanned_texts = scan.scanned_chars = 0
    leaks = [str(x) for x in scan.scan()]
    ledger(config).record(
        "secret-leak scan (I6), whole reliability session",
        f"{len(scan.secrets())} issued secrets (plain and base64) searched in "
        f"{scan.scanned_texts} captured texts ({scan.scanned_chars / 1e6:.1f} MB: rendered "
        "logs, raw log records, HTTP answers, reports, exception texts, subprocess output)",
        f"{len(leaks)} hits",
        ok=not leaks,
    )
    return leaks


class ReliabilityReport:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.leaks: list[str] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the xdist controller: keep a finished worker's rows and leaks."""
        output = getattr(node, "workeroutput", {}).get(NAME)
        if output is not None:
            self.rows.extend(Row(**row) for row in output["rows"])
            self.leaks.extend(output["leaks"])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        leaks = _scan_whole_session(config)
        rows = config.stash[LEDGER].rows if LEDGER in config.stash else []
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[NAME] = {"rows": [dataclasses.asdict(r) for r in rows], "leaks": leaks}
            return
        self.rows[:0] = rows
        self.leaks[:0] = leaks
        if self.leaks:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.rows:
            return
        table = Table(title=TITLE, show_lines=True)
        for column in ("scenario", "what was tried", "what held", "ok"):
            table.add_column(column, overflow="fold")
        for row in self.rows:
            table.add_row(row.scenario, row.tried, row.held, "yes" if row.ok else "[bold red]NO[/]")
        out = io.StringIO()
        width = max(100, shutil.get_terminal_size().columns)
        Console(file=out, width=width, color_system=None).print(table)
        terminalreporter.write_sep("=", "reliability summary")
        terminalreporter.write(out.getvalue())
        for leak in self.leaks:
            terminalreporter.write_line(f"LEAK: {leak}", red=True)
        target = os.environ.get("RELIABILITY_REPORT")
        if target:
            Path(target).write_text(Ledger(list(self.rows)).markdown(TITLE))
            terminalreporter.write_line(f"reliability table written to {target}")
