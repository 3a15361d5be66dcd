"""A disabled current version is the secret's state, not a missing permission.

When two versions share their creation second the adapter asks Key Vault which one is
current; if that one is disabled Key Vault answers 403 ``SecretDisabled`` (recorded:
tests/recorded/data/kv-get-disabled.json). The rotator used to answer that with "grant the
Key Vault Secrets Officer role"; it now names the disabled version and the command that
enables it.
"""

from __future__ import annotations

import uuid

import pytest

from rotation.azure.key_vault import VaultAdapter
from rotation.errors import InvalidRequest
from sandbox.server import Sandbox
from sandbox.state import SecretVersion


def versions_in_one_second(sandbox: Sandbox, name: str, *, latest_enabled: bool) -> None:
    now = sandbox.state.clock.now()
    sandbox.state.vault[name] = [
        SecretVersion(name, uuid.uuid4().hex, "a", None, {}, True, None, None, now, now),
        SecretVersion(name, uuid.uuid4().hex, "b", None, {}, latest_enabled, None, None, now, now),
    ]


async def test_a_disabled_current_version_names_the_fix_not_a_role(
    sandbox: Sandbox, vault: VaultAdapter
) -> None:
    versions_in_one_second(sandbox, "tied", latest_enabled=False)

    with pytest.raises(InvalidRequest) as caught:
        await vault.read("tied")

    message = str(caught.value)
    assert "current version is disabled (403 SecretDisabled)" in message
    assert "--name tied --enabled true" in message
    assert "role" not in message


async def test_an_enabled_current_version_breaks_the_tie(
    sandbox: Sandbox, vault: VaultAdapter
) -> None:
    versions_in_one_second(sandbox, "tied", latest_enabled=True)

    entry = await vault.read("tied")

    assert entry.current is not None
    assert entry.current.version == sandbox.state.vault["tied"][-1].version
