"""The rotator's Key Vault client builds its TLS trust once, not once per request.

Why this is a reliability matter: given a CA *path* (``connection_verify``), azure-core
builds a new SSLContext for every request and parses the whole bundle into it (certifi's
roots plus the extra CA: about 40 ms of CPU here), and the event loop stands still
meanwhile: SMTP checks, other apps' rotations and HTTP answers with it. On the consumer-
continuity scenario that was three quarters of the rotator's CPU, and consumers' read-to-
AUTH times stretched towards half a second. rotation.azure.trust now hands the Key Vault and
ARM clients a transport holding one ready context (TrustedTransport).

The count comes from a spy on `ssl.create_default_context` that calls the real one.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from rotation.azure.identity import build_credential
from rotation.azure.key_vault import VaultAdapter
from rotation.settings import Settings
from sandbox.server import Sandbox
from tests.reliability.evidence import Ledger

READS = 20


async def test_key_vault_reads_do_not_rebuild_tls_trust_per_request(
    sandbox: Sandbox, settings: Settings, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    built: list[str] = []
    real = ssl.create_default_context

    def spy(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(str(kwargs.get("cafile") or ""))
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", spy)
    credential = build_credential(settings)
    vault = VaultAdapter.from_settings(settings, credential)
    try:
        for _ in range(READS):
            await vault.read("acs-smtp-anything")
    finally:
        await vault.close()
        await credential.close()

    assert sandbox.state.requests["vault GET /secrets/{name}/versions"] >= READS
    # One for the client's transport, one for the single token request; never one a read.
    assert len(built) <= 2, f"{len(built)} SSL contexts for {READS} Key Vault reads"
    ledger.record(
        "TLS trust built once (event-loop stalls)",
        f"{READS} Key Vault reads through the product's client with ROTATION_CA_BUNDLE set",
        f"{len(built)} SSL contexts built (was one per request, ~40 ms of blocked loop each)",
    )
