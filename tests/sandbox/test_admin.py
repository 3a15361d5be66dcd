"""The sandbox's admin surface, its lifecycle, TLS and `python -m sandbox`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import ssl
import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rotation.settings import load_settings
from sandbox import tokens
from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]


async def _call(
    sandbox: Sandbox, method: str, path: str, body: object = None
) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{sandbox.admin_url}{path}", json=body, ssl=sandbox.client_ssl()
        ) as r,
    ):
        text = await r.text()
        payload = await r.json() if r.content_type == "application/json" else None
        return r.status, payload, text


# ----- admin surface -------------------------------------------------------------------------


async def test_snapshot_shows_the_world_without_secret_values(sandbox: Sandbox) -> None:
    sender = sandbox.add_sender()
    status, body, text = await _call(sandbox, "GET", "/snapshot")
    assert status == 200
    assert {a["appId"] for a in body["applications"]} == {
        sandbox.rotator.client_id,
        sandbox.api.client_id,  # the rotator's own API (sandbox/api_app.py)
        sender.app_id,
    }
    assert sender.client_secret not in text
    assert sandbox.rotator.client_secret not in text


async def test_seeding_a_sender_returns_ids_but_no_password(sandbox: Sandbox) -> None:
    status, body, text = await _call(
        sandbox, "POST", "/senders", {"via": "both", "resource": "acs-admin", "lifetimeDays": 10}
    )
    assert status == 201
    app = sandbox.state.application_by_app_id(body["appId"])
    assert app is not None
    assert sandbox.rotator.sp.object_id in app.owners
    assert len(body["usernames"]) == 2
    assert body["resourceId"].endswith("/communicationServices/acs-admin")
    assert app.passwords[0].secret_text not in text
    assert app.passwords[0].end - app.passwords[0].start == timedelta(days=10)


async def test_faults_can_be_injected_listed_and_cleared(sandbox: Sandbox) -> None:
    route = "admin GET /snapshot"
    status, fault, _ = await _call(
        sandbox, "POST", "/faults", {"route": route, "status": 429, "retryAfter": 7, "times": 1}
    )
    assert status == 201
    assert fault["remaining"] == 1
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sandbox.admin_url}/snapshot", ssl=sandbox.client_ssl()) as throttled,
    ):
        assert throttled.status == 429
        assert throttled.headers["Retry-After"] == "7"
    _, listed, _ = await _call(sandbox, "GET", "/faults")
    assert listed["faults"][0]["hits"] == 1
    assert (await _call(sandbox, "DELETE", "/faults"))[0] == 204
    assert sandbox.state.faults.faults == []


async def test_a_fault_without_a_route_is_refused(sandbox: Sandbox) -> None:
    status, body, _ = await _call(sandbox, "POST", "/faults", {"status": 503})
    assert status == 400
    assert body["error"]["code"] == "BadRequest"


async def test_a_secret_can_be_soft_deleted_through_the_admin_surface(sandbox: Sandbox) -> None:
    status, body, _ = await _call(
        sandbox, "POST", "/deleted-secrets", {"name": "acs-smtp-x", "finishingInSeconds": 5}
    )
    refused, _, _ = await _call(sandbox, "POST", "/deleted-secrets", {})

    assert status == 201
    assert body["name"] == "acs-smtp-x"
    assert "acs-smtp-x" in sandbox.state.deleted_secrets
    assert refused == 400


async def test_propagation_delay_and_clock_can_be_set(sandbox: Sandbox) -> None:
    assert (await _call(sandbox, "PUT", "/propagation-delay", {"seconds": 12}))[0] == 204
    assert sandbox.state.propagation_delay == timedelta(seconds=12)
    status, body, _ = await _call(sandbox, "POST", "/clock/advance", {"days": 2})
    assert status == 200
    assert sandbox.state.clock.offset == timedelta(days=2)
    assert body["now"] == sandbox.state.clock.now().isoformat()[: len(body["now"])] or body["now"]


async def test_counters_can_be_read_and_reset(sandbox: Sandbox) -> None:
    _, body, _ = await _call(sandbox, "GET", "/requests")
    assert body["requests"]["admin GET /requests"] == 1
    assert (await _call(sandbox, "DELETE", "/requests"))[0] == 204
    _, body, _ = await _call(sandbox, "GET", "/requests")
    assert body["requests"] == {"admin GET /requests": 1}


# ----- lifecycle, TLS, settings -----------------------------------------------------------------


async def test_env_loads_into_valid_settings(sandbox: Sandbox) -> None:
    settings = load_settings(sandbox.env(grace_hours=0, ROTATION_SMTP_PORT=2525))
    assert settings.key_vault_url == sandbox.vault_url
    assert settings.graph_endpoint == sandbox.graph_url
    assert settings.authority == sandbox.login_url
    assert settings.subscription_ids == [sandbox.subscription_id]
    assert settings.grace_hours == 0
    assert settings.smtp_port == 2525
    assert settings.ca_bundle == sandbox.ca_path


async def test_stopping_releases_every_port_and_the_ca_file() -> None:
    sandbox = Sandbox()
    await sandbox.start()
    ca_path, url = sandbox.ca_path, sandbox.graph_url
    await sandbox.stop()
    assert not ca_path.exists()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(url, ssl=False)


async def test_tls_below_1_2_is_refused(sandbox: Sandbox) -> None:
    assert sandbox.server_ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    old = sandbox.client_ssl()
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"{sandbox.graph_url}/v1.0/applications", ssl=old)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_the_certificate_names_every_loopback_spelling(sandbox: Sandbox, host: str) -> None:
    url = sandbox.login_url.replace("127.0.0.1", host)
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{url}/{sandbox.tenant_id}/v2.0/.well-known/openid-configuration",
            ssl=sandbox.client_ssl(),
        ) as r,
    ):
        assert r.status == 200


async def test_an_untrusted_client_is_refused_by_its_own_checks(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(sandbox.graph_url, ssl=ssl.create_default_context())


async def test_python_m_sandbox_prints_settings_and_stops_on_ctrl_c() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--propagation-delay",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    lines: list[str] = []

    async def until_ready() -> None:
        assert process.stdout is not None
        while not lines or not lines[-1].startswith("Sandbox ready"):
            lines.append((await process.stdout.readline()).decode())

    try:
        await asyncio.wait_for(until_ready(), timeout=30)
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
    output = "".join(lines)
    assert "export ROTATION_KEY_VAULT_URL=https://127.0.0.1:" in output
    assert "export ROTATION_CA_BUNDLE=" in output
    assert "billing-app" in output
    assert process.returncode == 0
    assert b"Sandbox stopped." in rest


async def test_an_api_operator_gets_the_token_azure_cli_would_print(sandbox: Sandbox) -> None:
    status, body, _ = await _call(
        sandbox,
        "POST",
        "/api-operators",
        {"name": "ops@sandbox.example", "roles": ["Rotation.Read"]},
    )
    assert status == 200
    claims = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[1] + "=="))
    assert (claims["roles"], claims["preferred_username"], claims["aud"]) == (
        ["Rotation.Read"],
        "ops@sandbox.example",
        sandbox.api.client_id,
    )
    assert body["applicationIdUri"] == sandbox.api.identifier_uri
    status, body, _ = await _call(sandbox, "POST", "/api-operators", {"roles": ["Admin"]})
    assert status == 400
    status, rotated, _ = await _call(sandbox, "POST", "/signing-key/rotate")
    assert (status, sandbox.state.published_keys) == (200, [0, 1])
    assert rotated["kid"] == tokens.key_id(1)
