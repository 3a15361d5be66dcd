"""Shared fixtures: a fresh, running sandbox per test, and the product's settings for it.

Starting a sandbox takes a few tens of milliseconds (one CA, six loopback listeners), so
every test gets its own world and tests never share state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rotation.settings import Settings, load_settings
from sandbox.server import Sandbox
from tests import leaks
from tests.leaks import SuiteLeakCheck


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SuiteLeakCheck(), leaks.NAME)


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
