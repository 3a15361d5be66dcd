"""The proxy environment is honoured when it names a proxy, and only then
(rotation.azure.trust.connection_options; README, "Command line").

With no proxy named, aiohttp's per-request look-ups of the proxy variables and ~/.netrc are
off (`use_env_settings=False`: about 1 ms a request, measured in bench/). With HTTPS_PROXY
set, the Key Vault and ARM clients built from the settings still go through the proxy:
a CONNECT proxy on 127.0.0.1 relays the TLS bytes and records each tunnel it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from rotation.azure.acs import ArmReader
from rotation.azure.entra import EntraAdapter
from rotation.azure.identity import build_credential
from rotation.azure.key_vault import VaultAdapter
from rotation.azure.trust import connection_options, proxy_configured
from rotation.settings import Settings, load_settings
from sandbox.server import Sandbox
from tests.integration.conftest import FAST_RETRY


class ConnectProxy:
    """An HTTP CONNECT proxy: one tunnel per connection, relayed byte for byte."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self._relays: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[ConnectProxy]:
        self._server = await asyncio.start_server(self._tunnel, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()
            for relay in self._relays:
                relay.cancel()
            await asyncio.gather(*self._relays, return_exceptions=True)

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            relay = asyncio.create_task(_relay(source, sink))
            self._relays.add(relay)
            relay.add_done_callback(self._relays.discard)


async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()


@pytest.fixture
def no_proxy_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """No *_proxy variable (urllib.request reads every one, in either case); the sandbox's
    AZURE_* variables for the credential."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("no_proxy_environment")
def test_no_proxy_named_turns_the_environment_look_ups_off(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _without_extra_ca(sandbox, monkeypatch)
    assert not proxy_configured()
    assert connection_options(settings)["use_env_settings"] is False


@pytest.mark.usefixtures("no_proxy_environment")
def test_a_named_proxy_turns_them_on(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    settings = _without_extra_ca(sandbox, monkeypatch)
    assert proxy_configured()
    assert connection_options(settings)["use_env_settings"] is True


def _without_extra_ca(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with azure-core's default transport (no ROTATION_CA_BUNDLE)."""
    monkeypatch.delenv("ROTATION_CA_BUNDLE")
    return load_settings(sandbox.env(ca_bundle=None))


async def _read_through_the_clients(settings: Settings) -> None:
    credential = build_credential(settings)
    vault = VaultAdapter.from_settings(settings, credential, retry=FAST_RETRY)
    arm = ArmReader.from_settings(settings, credential, retry=FAST_RETRY)
    entra = EntraAdapter.from_settings(settings, credential)
    try:
        await vault.read_current()
        await arm.acs_resources([settings.subscription_ids[0]])
        await entra.read_apps([str(uuid.uuid4())])
    finally:
        await vault.close()
        await arm.close()
        await entra.close()
        await credential.close()


def _host(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


@pytest.mark.usefixtures("no_proxy_environment")
async def test_key_vault_and_arm_go_through_a_named_proxy(
    sandbox: Sandbox, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ConnectProxy().serving() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        await _read_through_the_clients(settings)
    # Sign-in (azure-identity), Graph (httpx), Key Vault and ARM (azure-core): all tunnelled.
    for url in (sandbox.login_url, sandbox.graph_url, sandbox.vault_url, sandbox.arm_url):
        assert _host(url) in proxy.tunnels, url
    assert sandbox.state.requests["vault GET /secrets"] >= 1


@pytest.mark.usefixtures("no_proxy_environment")
async def test_without_a_named_proxy_nothing_reaches_it(
    sandbox: Sandbox, settings: Settings
) -> None:
    async with ConnectProxy().serving() as proxy:  # listening, but named nowhere
        await _read_through_the_clients(settings)
    assert proxy.tunnels == []
    assert sandbox.state.requests["vault GET /secrets"] >= 1
