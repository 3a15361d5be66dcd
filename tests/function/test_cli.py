"""`python -m rotation` as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from sandbox.server import Sandbox


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROTATION_", "AZURE_"))}
    return subprocess.run(  # noqa: S603 (our own module, fixed arguments)
        [sys.executable, "-m", "rotation", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_a_real_rotation_and_passes() -> None:
    done = run_cli("demo")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for step in (
        "discovery",
        "create -> verify (SMTP AUTH) -> promote",
        "sends mail",
        "old secrets go",
        "changes nothing",
    ):
        assert step in done.stdout
    assert "write requests to Graph and Key Vault in that run: 0" in done.stdout
    assert "demo passed" in done.stdout


def test_bad_setting_exits_2_with_one_line_naming_it() -> None:
    done = run_cli("plan", env={"ROTATION_KEY_VAULT_URL": "http://kv", "ROTATION_TENANT_ID": "x"})
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "ROTATION_KEY_VAULT_URL" in line
    assert "ROTATION_TENANT_ID" in line


@pytest.mark.parametrize("command", ["plan", "run", "status"])
async def test_json_output_and_exit_codes_against_a_sandbox(sandbox: Sandbox, command: str) -> None:
    sandbox.add_sender()
    env = sandbox.env()
    done = await _run_async(command, "--json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(done.stdout)
    if command == "status":
        assert body[0]["state"] == "no-password"
    else:
        assert body["apps"][0]["outcome"] == ("planned" if command == "plan" else "rotated")
    assert not any(secret in done.stdout + done.stderr for secret in sandbox.state.issued_secrets)


async def test_run_exits_1_when_an_app_fails(sandbox: Sandbox) -> None:
    sandbox.add_sender(via="smtp-username", role=None)
    done = await _run_async("run", env=sandbox.env(verify_timeout_seconds=1))
    assert done.returncode == 1
    assert "failed" in done.stdout


async def _run_async(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The sandbox serves from this test's event loop, so the CLI runs in a thread."""
    return await asyncio.to_thread(run_cli, *args, env=env)


async def test_a_sovereign_cloud_runs_only_with_an_explicit_smtp_host(sandbox: Sandbox) -> None:
    """ACS documents an SMTP host for the public cloud only: elsewhere the operator names it."""
    sandbox.add_sender()
    missing = await _run_async("plan", env=sandbox.env(cloud="usgov", smtp_host=None))
    explicit = await _run_async("run", "--json", env=sandbox.env(cloud="usgov"))

    assert missing.returncode == 2
    (line,) = missing.stderr.strip().splitlines()
    assert "ROTATION_SMTP_HOST" in line
    assert "usgov" in line
    assert explicit.returncode == 0, explicit.stderr[-2000:]
    assert json.loads(explicit.stdout)["apps"][0]["outcome"] == "rotated"
