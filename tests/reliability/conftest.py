"""Reliability suite plumbing: a leak scan around every test, and the summary table.

Every test here runs with the product's logging pipeline writing JSON into a capture
stream (as in Azure), and pytest's caplog keeping the raw records. When the test ends,
everything it captured (plus what it handed to `evidence`: HTTP answers, reports,
exception texts, subprocess output) is searched for every secret its sandboxes issued;
a hit fails the test. At the end of the session the union is searched once more for
every secret of every sandbox, and a table of what was tried and what held is printed
(tests/reliability/report.py).
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import structlog

from rotation.telemetry import logs
from sandbox.seed import Sender
from sandbox.server import Sandbox
from tests import leaks
from tests.leaks import SuiteLeakCheck
from tests.reliability import report
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import World, open_world


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    """Where a scenario records its row of the summary table (tests/reliability/report.py)."""
    return report.ledger(request.config)


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
    report.session_scan(request.config).absorb(scan)
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
