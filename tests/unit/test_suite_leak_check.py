"""The whole suite's leak search finds what it looks for, wherever it hides, and fails the
run from any parallel worker."""

from __future__ import annotations

import base64
import logging
from types import SimpleNamespace

import pytest

from tests import leaks
from tests.leaks import SuiteLeakCheck, find_secrets, record_text
from tests.reliability import report
from tests.reliability.report import ReliabilityReport

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


def _session(**config: object) -> SimpleNamespace:
    plugins = SimpleNamespace(get_plugin=lambda name: None)
    return SimpleNamespace(
        config=SimpleNamespace(pluginmanager=plugins, stash=pytest.Stash(), **config),
        exitstatus=pytest.ExitCode.OK,
    )


def test_a_worker_hands_its_findings_to_the_controller_which_fails_on_a_hit() -> None:
    """Under pytest-xdist a worker's own session end cannot fail the run: its summary goes
    to the controller, which adds up every worker's and fails the session on any hit."""
    worker, worker_session = SuiteLeakCheck(), _session(workeroutput={})
    worker.captured.append(("t::a", "clean"))
    worker.pytest_sessionfinish(worker_session)  # type: ignore[arg-type]
    handed = worker_session.config.workeroutput[leaks.NAME]
    assert handed == {"secrets": 0, "phases": 1, "raw_records": 0, "hits": []}
    assert worker_session.exitstatus == pytest.ExitCode.OK

    controller, session = SuiteLeakCheck(), _session()
    controller.pytest_testnodedown(SimpleNamespace(workeroutput={leaks.NAME: handed}), None)
    controller.pytest_sessionfinish(session)  # type: ignore[arg-type]
    assert session.exitstatus == pytest.ExitCode.OK
    hit = dict(handed, hits=["t::b: a secret ending in ...wxyz"])
    controller.pytest_testnodedown(SimpleNamespace(workeroutput={leaks.NAME: hit}), None)
    controller.pytest_sessionfinish(session)  # type: ignore[arg-type]
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED


def test_the_reliability_table_and_its_leaks_reach_the_controller() -> None:
    worker_session = _session(workeroutput={})
    report.ledger(worker_session.config).record("scenario", "tried", "held")  # type: ignore[arg-type]
    ReliabilityReport().pytest_sessionfinish(worker_session)  # type: ignore[arg-type]
    handed = worker_session.config.workeroutput[report.NAME]
    assert handed["rows"] == [
        {"scenario": "scenario", "tried": "tried", "held": "held", "ok": True}
    ]

    controller, session = ReliabilityReport(), _session()
    controller.pytest_testnodedown(
        SimpleNamespace(workeroutput={report.NAME: dict(handed, leaks=["a leak"])}), None
    )
    controller.pytest_sessionfinish(session)  # type: ignore[arg-type]
    assert [row.scenario for row in controller.rows] == ["scenario"]
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
