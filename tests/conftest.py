"""Shared fixtures: a fresh, running sandbox per test, and the product's settings for it.

Starting a sandbox takes a few tens of milliseconds (one CA, six loopback listeners), so
every test gets its own world and tests never share state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from rotation.settings import Settings, load_settings
from sandbox.server import Sandbox
from tests import leaks
from tests.leaks import SuiteLeakCheck
from tests.reliability import report
from tests.reliability.report import ReliabilityReport

# No per-example deadline in any property test: a deadline is a timed assert, and on a
# loaded 2-core machine one slow example failed test_due while nothing was wrong (speed
# targets live in bench/). Each test's own @settings inherits this profile.
hypothesis_settings.register_profile("project", deadline=None)
hypothesis_settings.load_profile("project")

TESTS = Path(__file__).parent
#: Each folder of tests/ is a suite and a marker of the same name (`pytest -m unit`).
SUITES = sorted(p.name for p in TESTS.iterdir() if (p / "__init__.py").is_file())


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SuiteLeakCheck(), leaks.NAME)
    config.pluginmanager.register(ReliabilityReport(), report.NAME)
    for suite in SUITES:
        config.addinivalue_line("markers", f"{suite}: a test of tests/{suite}/ (set by folder)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks each test with its folder, and `uses_sandbox` when it starts one through the
    fixture (`make test-fast` runs the others); moves the slow ones to the front, so that
    parallel workers (`make test` runs pytest-xdist) do not end waiting on one long test.
    That needs pyproject's `--maxschedchunk=1`: xdist's first blocks of consecutive tests
    would otherwise give every slow test to one worker."""
    for item in items:
        suite = item.path.relative_to(TESTS).parts[0]
        if suite in SUITES:
            item.add_marker(suite)
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker("uses_sandbox")
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """A started sandbox: home tenant, subscription and the rotator's identity seeded."""
    async with Sandbox() as sb:
        check: SuiteLeakCheck = request.config.pluginmanager.get_plugin(leaks.NAME)
        check.states.append(sb.state)
        yield sb


@pytest.fixture
def settings(sandbox: Sandbox) -> Settings:
    """The product's settings pointed at `sandbox` (what `sandbox.env()` exports)."""
    return load_settings(sandbox.env())
