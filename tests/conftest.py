"""Shared fixtures: a fresh, running sandbox per test, and the product's settings for it.

Starting a sandbox takes a few tens of milliseconds (one CA, six loopback listeners), so
every test gets its own world and tests never share state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rotation.settings import Settings, load_settings
from sandbox.server import Sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A started sandbox: home tenant, subscription and the rotator's identity seeded."""
    async with Sandbox() as sb:
        yield sb


@pytest.fixture
def settings(sandbox: Sandbox) -> Settings:
    """The product's settings pointed at `sandbox` (what `sandbox.env()` exports)."""
    return load_settings(sandbox.env())
