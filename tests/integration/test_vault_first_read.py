"""Concurrent reads from a fresh VaultAdapter pay Key Vault's authentication challenge once,
not once per read (the request count bench/ reports, proven without timing anything)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from azure.core.credentials_async import AsyncTokenCredential

from rotation.azure.key_vault import VaultAdapter
from rotation.settings import Settings
from sandbox.server import Sandbox

LIST_VERSIONS = "vault GET /secrets/{name}/versions"


@pytest.fixture
async def vault(
    settings: Settings, credential: AsyncTokenCredential
) -> AsyncIterator[VaultAdapter]:
    adapter = VaultAdapter.from_settings(settings, credential)
    yield adapter
    await adapter.close()


async def test_concurrent_first_reads_meet_one_challenge(
    sandbox: Sandbox, vault: VaultAdapter
) -> None:
    names = [f"acs-smtp-app-{i}" for i in range(8)]
    entries = await asyncio.gather(*(vault.read(n) for n in names))
    assert [e.name for e in entries] == names
    assert all(e.versions == () for e in entries)
    # One unauthenticated request learns the vault's tenant; every read then carries a token.
    assert sandbox.state.requests[LIST_VERSIONS] == len(names) + 1
