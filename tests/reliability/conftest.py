"""Reliability suite plumbing: a leak scan around every test, and the summary table.

Every test here runs with the product's logging pipeline writing JSON into a capture
stream (as in Azure), and pytest's caplog keeping the raw records. When the test ends,
everything it captured (plus what it handed to `evidence`: HTTP answers, reports,
exception texts, subprocess output) is searched for every secret its sandboxes issued;
a hit fails the test. At the end of the session the union is searched once more for
every secret of every sandbox, and a table of what was tried and what held is printed
(and written to $RELIABILITY_REPORT, e.g. docs/reliability.md, when that is set).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import structlog
from rich.console import Console
from rich.table import Table

from rotation.telemetry import logs
from sandbox.seed import Sender
from sandbox.server import Sandbox
from tests import leaks
from tests.leaks import SuiteLeakCheck
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import World, open_world

SESSION_SCAN = pytest.StashKey[LeakScan]()
LEDGER = pytest.StashKey[Ledger]()
LEAKS = pytest.StashKey[list[str]]()
TITLE = "Reliability: what was tried and what held"


def _session_scan(config: pytest.Config) -> LeakScan:
    if SESSION_SCAN not in config.stash:
        config.stash[SESSION_SCAN] = LeakScan()
    return config.stash[SESSION_SCAN]


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    """Where a scenario records its row of the summary table."""
    if LEDGER not in request.config.stash:
        request.config.stash[LEDGER] = Ledger()
    return request.config.stash[LEDGER]


@pytest.fixture(autouse=True)
def evidence(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[LeakScan]:
    """The product's log pipeline into a capture stream; a leak scan when the test ends."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, structlog.get_config())
    capture = io.StringIO()
    logs.configure("json", stream=capture)
    caplog.set_level(logging.DEBUG, logger="rotation")
    scan = LeakScan(capture=capture)
    yield scan
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.configure(**saved[2])
    scan.add("product log (rendered JSON)", capture.getvalue())
    for phase in ("setup", "call", "teardown"):
        for record in caplog.get_records(phase):
            scan.add(f"log record {record.name}", _record_text(record))
    leaks = scan.scan()
    _session_scan(request.config).absorb(scan)
    if leaks:
        pytest.fail("secret values leaked: " + "; ".join(str(x) for x in leaks[:10]))


def _record_text(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format
        text = f"{record.msg!r} {record.args!r}"
    return f"{text} {record.exc_text or ''} {record.__dict__.get('exc_info') or ''}"


@pytest.fixture
async def sandbox(request: pytest.FixtureRequest, evidence: LeakScan) -> AsyncIterator[Sandbox]:
    """A started sandbox whose every issued secret the leak scans look for (this suite's,
    and the whole suite's, which also searches every raw log record: tests/leaks.py)."""
    async with Sandbox() as sb:
        evidence.watch(sb.state)
        check: SuiteLeakCheck | None = request.config.pluginmanager.get_plugin(leaks.NAME)
        if check is not None:
            check.states.append(sb.state)
        yield sb


@pytest.fixture
async def make_world(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., World]]:
    """`make_world(senders, **settings)`: the rotator opened on `sandbox` (closed after)."""
    opened: list[World] = []

    def make(senders: int | list[Sender] = 1, **overrides: object) -> World:
        world = open_world(sandbox, monkeypatch, senders, **overrides)
        opened.append(world)
        return world

    yield make
    for world in opened:
        await world.service.aclose()


# ----- session end ---------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    scan = session.config.stash.get(SESSION_SCAN, None)
    if scan is None:
        return
    scan.scanned_texts = scan.scanned_chars = 0
    leaks = scan.scan()
    session.config.stash[LEAKS] = [str(x) for x in leaks]
    ledger = session.config.stash.get(LEDGER, None)
    if ledger is not None:
        ledger.record(
            "secret-leak scan (I6), whole reliability session",
            f"{len(scan.secrets())} issued secrets (plain and base64) searched in "
            f"{scan.scanned_texts} captured texts ({scan.scanned_chars / 1e6:.1f} MB: rendered "
            "logs, raw log records, HTTP answers, reports, exception texts, subprocess output)",
            f"{len(leaks)} hits",
            ok=not leaks,
        )
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    ledger = config.stash.get(LEDGER, None)
    if ledger is None or not ledger.rows:
        return
    table = Table(title=TITLE, show_lines=True)
    for column in ("scenario", "what was tried", "what held", "ok"):
        table.add_column(column, overflow="fold")
    for row in ledger.rows:
        table.add_row(row.scenario, row.tried, row.held, "yes" if row.ok else "[bold red]NO[/]")
    out = io.StringIO()
    Console(file=out, width=max(100, shutil.get_terminal_size().columns), color_system=None).print(
        table
    )
    terminalreporter.write_sep("=", "reliability summary")
    terminalreporter.write(out.getvalue())
    for leak in config.stash.get(LEAKS, []):
        terminalreporter.write_line(f"LEAK: {leak}", red=True)
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        Path(target).write_text(ledger.markdown(TITLE))
        terminalreporter.write_line(f"reliability table written to {target}")
