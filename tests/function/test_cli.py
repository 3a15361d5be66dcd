"""`python -m rotation` as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from rotation import answers
from sandbox.server import Sandbox


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_module("rotation", *args, env=env, timeout=timeout)


def run_module(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m module args` with none of this process's ROTATION_/AZURE_ settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROTATION_", "AZURE_"))}
    return subprocess.run(  # noqa: S603 (our own module, fixed arguments)
        [sys.executable, "-m", module, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_demo_runs_a_real_rotation_and_passes() -> None:
    done = run_module("demo")
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
    doctor_part = done.stdout.split("6. doctor")[1]
    (failure,) = [line for line in doctor_part.splitlines() if line.startswith("fail")]
    assert "legacy-app does not list the rotator's identity as an owner" in failure
    assert "fix: az ad app owner add --id " in doctor_part
    assert "1 failed" in doctor_part
    assert "demo passed" in done.stdout


def test_bad_setting_exits_2_with_one_line_naming_it() -> None:
    done = run_cli("plan", env={"ROTATION_KEY_VAULT_URL": "http://kv", "ROTATION_TENANT_ID": "x"})
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "ROTATION_KEY_VAULT_URL" in line
    assert "ROTATION_TENANT_ID" in line


#: The top-level keys of each command's --json: those of the HTTP API's answer models.
REPORT = list(answers.RunReport.model_json_schema(mode="serialization")["properties"])
answers_of = {"plan": REPORT, "run": REPORT, "status": ["apps"]}


@pytest.mark.parametrize("command", ["plan", "run", "status"])
async def test_json_output_and_exit_codes_against_a_sandbox(sandbox: Sandbox, command: str) -> None:
    sandbox.add_sender()
    env = sandbox.env()
    done = await _run_async(command, "--json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(done.stdout)
    assert list(body) == answers_of[command]  # the HTTP API's shape (answers.Status, RunReport)
    if command == "status":
        assert body["apps"][0]["state"] == "no-password"
    else:
        assert body["apps"][0]["outcome"] == ("planned" if command == "plan" else "rotated")
    assert not any(secret in done.stdout + done.stderr for secret in sandbox.state.issued_secrets)


@pytest.mark.slow
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


@pytest.mark.slow
async def test_doctor_prints_one_line_per_check_and_exits_1_with_the_fix(
    sandbox: Sandbox,
) -> None:
    sandbox.add_sender()
    stranger = sandbox.add_sender(owned=False)
    sandbox.add_api_user()  # someone holds each of the API's roles: no warning there

    done = await _run_async("doctor", env=sandbox.env())
    as_json = await _run_async("doctor", "--json", env=sandbox.env())

    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    (failure,) = [i for i, line in enumerate(lines) if line.startswith("fail")]
    assert f"owner {stranger.app_id}" in lines[failure]
    assert lines[failure + 1].strip() == (
        f"fix: az ad app owner add --id {stranger.app_id} "
        f"--owner-object-id {sandbox.rotator.principal_id}"
    )
    assert as_json.returncode == 1
    body = json.loads(as_json.stdout)
    assert body["ok"] is False
    assert {c["status"] for c in body["checks"]} == {"ok", "fail"}


async def test_doctor_with_bad_settings_fails_the_settings_check() -> None:
    done = await _run_async("doctor", "--json", env={"ROTATION_KEY_VAULT_URL": "http://kv"})

    assert done.returncode == 1
    (check,) = json.loads(done.stdout)["checks"]
    assert (check["check"], check["status"]) == ("settings", "fail")
    assert "ROTATION_KEY_VAULT_URL" in check["detail"]
    assert check["fix"] == "export ROTATION_KEY_VAULT_URL=<value> ROTATION_TENANT_ID=<value>"


@pytest.mark.slow
async def test_emergency_over_every_app_needs_all_apps_and_a_confirmation(
    sandbox: Sandbox,
) -> None:
    senders = [sandbox.add_sender(), sandbox.add_sender()]
    env = sandbox.env()
    assert (await _run_async("run", env=env)).returncode == 0
    keys = {s.app_id: {p.key_id for p in s.app.passwords} for s in senders}

    done = await _run_async("run", "--emergency", env=env)
    assert done.returncode == 2
    assert "--app APP_ID" in done.stderr
    assert "--all-apps" in done.stderr
    done = await _run_async("run", "--emergency", "--all-apps", env=env)  # no terminal
    assert done.returncode == 2
    assert "--yes-all-apps" in done.stderr
    assert {s.app_id: {p.key_id for p in s.app.passwords} for s in senders} == keys

    done = await _run_async("run", "--emergency", "--all-apps", "--yes-all-apps", "--json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert [a["outcome"] for a in report["apps"]] == ["rotated", "rotated"]
    assert all(len(s.app.passwords) == 1 for s in senders), "every other secret went at once"
    assert '"event": "run.requested"' in done.stderr


@pytest.mark.slow
async def test_force_without_app_needs_no_confirmation(sandbox: Sandbox) -> None:
    sandbox.add_sender()
    env = sandbox.env()
    assert (await _run_async("run", env=env)).returncode == 0
    done = await _run_async("run", "--force", "--json", env=env)
    assert done.returncode == 0
    assert json.loads(done.stdout)["apps"][0]["outcome"] == "rotated"
