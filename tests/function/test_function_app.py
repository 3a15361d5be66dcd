"""function_app.py as the Functions host sees it: what it indexes, and each trigger called
with azure.functions request objects against the sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from rotation.azure.clients import Overrides
from rotation.errors import PermissionDenied, SettingsError
from rotation.http_api import Api
from rotation.service import RotationService
from rotation.settings import Settings
from rotation.timebudget import function_timeout_seconds, load_timer_budget, timer_budget_seconds
from sandbox.seed import ROTATOR_GRAPH_ROLES
from sandbox.server import Sandbox
from sandbox.state import SandboxState
from tests import lockfile
from tests.integration.conftest import FAST
from tests.unit.test_lockfile import pins
from tests.waiting import until

APP_A = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
README = Path("README.md").read_text()


def writes(state: SandboxState) -> int:
    return sum(
        n
        for k, n in state.requests.items()
        if k.split()[0] in ("graph", "vault") and k.split()[1] in WRITES
    )


def load(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    step_margin: float | None = None,
    **overrides: object,
) -> ModuleType:
    """Imports function_app afresh, as a worker start does, with settings for `sandbox`
    (and a shorter step margin for tests scaled down in time)."""
    for key, value in sandbox.env(**overrides).items():
        monkeypatch.setenv(key, value)
    import function_app

    module = importlib.reload(function_app)
    assert isinstance(module.api, Api), f"the whole app is refused: {module.api.health()}"
    clock = sandbox.state.clock.now

    def open_service(settings: Settings) -> RotationService:
        config = settings.run_config()
        if step_margin is not None:
            config = dataclasses.replace(config, step_margin=step_margin)
        wiring = Overrides(backoff=FAST)
        return RotationService.open(settings, clock=clock, overrides=wiring, config=config)

    module.api = Api(
        module.settings,
        open_service,
        timer_budget_seconds=module.api.timer_budget_seconds,  # from host.json
        timer_refusal=module.api.timer_refusal,  # from host.json and ROTATION_SCHEDULE
        site=module.site,
    )
    # An operator holding every app role of the API, with the token Azure CLI would get.
    module.auth = {"Authorization": f"Bearer {sandbox.user_token(sandbox.add_api_user())}"}
    return module


async def warm_lease_token(module: ModuleType) -> None:
    """The lease store's token cached too (GET /api/status reads no storage)."""
    leases = module.api.service.clients.leases
    assert leases is not None
    await leases.ready()


@pytest.fixture
async def fa(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModuleType]:
    module = load(sandbox, monkeypatch)
    yield module
    await module.api.close()


def indexed(module: ModuleType) -> list[Any]:
    """What the host indexes. FunctionApp.get_functions() may run once per app object
    (a second call reports every function as a duplicate), as in the host."""
    if not hasattr(module, "_indexed"):
        module._indexed = module.app.get_functions()
    return module._indexed  # type: ignore[no-any-return]


def trigger(module: ModuleType, name: str) -> Callable[..., Any]:
    (function,) = [f for f in indexed(module) if f.get_function_name() == name]
    return function.get_user_function()  # type: ignore[no-any-return]


async def post(
    module: ModuleType, body: bytes | dict[str, Any] = b""
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"content-type": "application/json", **getattr(module, "auth", {})}
    request = func.HttpRequest("POST", "/api/rotations", body=data, headers=headers)
    response: func.HttpResponse = await trigger(module, "rotations")(request)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


async def get(module: ModuleType, name: str) -> tuple[int, dict[str, Any]]:
    request = func.HttpRequest("GET", f"/api/{name}", body=b"", headers=getattr(module, "auth", {}))
    response: func.HttpResponse = await _maybe_await(trigger(module, name)(request))
    return response.status_code, json.loads(response.get_body())


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


# ----- what the host indexes ----------------------------------------------------------------


def bindings(module: ModuleType) -> dict[str, list[dict[str, Any]]]:
    return {
        f.get_function_name(): json.loads(f.get_function_json())["bindings"]
        for f in indexed(module)
    }


FUNCTIONS = {"rotation_timer", "rotations", "status", "doctor", "health", "key_vault_events"}


async def test_host_indexes_six_functions_with_their_routes_methods_and_auth(
    fa: ModuleType,
) -> None:
    found = bindings(fa)
    assert set(found) == FUNCTIONS
    http = {name: b[0] for name, b in found.items() if b[0]["type"] == "httpTrigger"}
    # Anonymous to the host: the caller's Entra token is checked in the app (test_api_auth.py)
    assert {n: (b["route"], b["methods"], b["authLevel"]) for n, b in http.items()} == {
        "rotations": ("rotations", ["POST"], "ANONYMOUS"),
        "status": ("status", ["GET"], "ANONYMOUS"),
        "doctor": ("doctor", ["GET"], "ANONYMOUS"),
        "health": ("health", ["GET"], "ANONYMOUS"),
    }
    for name in http:
        assert found[name][1] == {"direction": "OUT", "type": "http", "name": "$return"}


async def test_timer_runs_on_the_configured_schedule_without_startup_run(fa: ModuleType) -> None:
    (timer,) = bindings(fa)["rotation_timer"]
    assert timer == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": "%ROTATION_SCHEDULE%",
        "runOnStartup": False,
        "useMonitor": True,
    }


def test_host_json_and_requirements_fit_the_app() -> None:
    host = json.loads(Path("host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensions"]["http"]["routePrefix"] == "api"
    # pinned with hashes, from pyproject.toml: tests/unit/test_lockfile.py
    assert set(pins(lockfile.RUNTIME)) >= {
        "azure-functions",
        "azure-identity",
        "msgraph-sdk",
        "azure-keyvault-secrets",
        "azure-mgmt-communication",
        "structlog",
    }


async def test_bad_setting_still_indexes_and_every_trigger_names_it_without_its_value(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The host indexes every function; health says 503 and which setting, every other
    route gives the same line, doctor reports it, and the timer fails with it."""
    bad = "tenant-of-contoso"
    for key, value in sandbox.env(tenant_id=bad, WEBSITE_SITE_NAME="func-x").items():
        monkeypatch.setenv(key, value)
    import function_app

    module = importlib.reload(function_app)

    assert set(bindings(module)) == FUNCTIONS
    status, health = await get(module, "health")
    line = health["error"]["message"]
    assert (status, health["status"], health["error"]["code"]) == (
        503,
        "misconfigured",
        "invalid_settings",
    )
    assert line.startswith("invalid settings: ROTATION_TENANT_ID:")
    assert await get(module, "status") == (503, {"error": health["error"]})
    assert await post(module, {"dryRun": True}) == (503, {"error": health["error"]})
    status, doctor = await get(module, "doctor")
    assert (status, doctor["ok"]) == (503, False)
    as_text = await doctor_text(module, "text")
    assert (as_text.status_code, as_text.mimetype) == (503, "text/plain")
    assert as_text.get_body().decode().startswith(f"fail  settings  {line}\n")
    assert doctor["checks"] == [
        {
            "check": "settings",
            "status": "fail",
            "detail": line,
            "fix": "azd provision (the deployment sets ROTATION_TENANT_ID itself); or at once, "
            "until the next provision: az functionapp config appsettings set -g <resource group> "
            "-n func-x --settings ROTATION_TENANT_ID=<value>",
        }
    ]
    with pytest.raises(SettingsError) as caught:
        await trigger(module, "rotation_timer")(TimerRequest())
    assert str(caught.value) == line
    # Raised, so Event Grid delivers the event again (then dead-letters it), not lost.
    event = func.EventGridEvent(
        id="e", data={}, topic="t", subject="s", event_type="x", event_time=None, data_version="1"
    )
    with pytest.raises(SettingsError):
        await trigger(module, "key_vault_events")(event)
    assert bad not in json.dumps([health, doctor]) + line + caplog.text
    assert "run.failed" in caplog.text
    assert sandbox.state.requests.total() == 0  # nothing was called with half a configuration


async def the_rest_still_works(module: ModuleType, sandbox: Sandbox) -> None:
    """What a timer-only refusal must not take down (finding 9): an emergency, and Key
    Vault events (a malformed one is dropped, not raised for Event Grid to retry)."""
    sender = sandbox.add_sender()
    status, report = await post(module, {"appIds": [sender.app_id], "mode": "emergency"})
    assert (status, report["apps"][0]["outcome"]) == (200, "rotated")
    assert [p.key_id for p in sender.app.passwords] == [report["apps"][0]["newKeyId"]]
    event = func.EventGridEvent(
        id="e", data={}, topic="t", subject="s", event_type="x", event_time=None, data_version="1"
    )
    assert await trigger(module, "key_vault_events")(event) is None


async def timer_refused(module: ModuleType, sandbox: Sandbox) -> str:
    """The refusal's line, after checking that health, doctor and the timer give it."""
    status, health = await get(module, "health")
    line: str = health["error"]["message"]
    assert (status, health["status"], health["error"]["code"]) == (
        503,
        "misconfigured",
        "invalid_settings",
    )
    status, doctor = await get(module, "doctor")
    settings = {c["check"]: c for c in doctor["checks"]}["settings"]
    assert (status, doctor["ok"], settings["status"], settings["detail"]) == (
        503,
        False,
        "fail",
        line,
    )
    before = sandbox.state.requests.total()
    with pytest.raises(SettingsError) as caught:
        await trigger(module, "rotation_timer")(TimerRequest())
    assert (str(caught.value), sandbox.state.requests.total()) == (line, before)
    return line


async def test_a_function_timeout_too_short_for_one_app_is_refused_by_the_timer_health_and_doctor(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 27: with functionTimeout 00:05:00 every timer run started nothing and said ok.
    Now health, doctor and the timer name both values and the fix; the HTTP runs and Key
    Vault events, with budgets of their own, keep working (finding 9)."""
    from rotation import timebudget

    short = tmp_path / "host.json"
    short.write_text(json.dumps({"version": "2.0", "functionTimeout": "00:05:00"}))
    real = timebudget.load_timer_budget
    monkeypatch.setattr(timebudget, "load_timer_budget", lambda _path: real(short))
    module = load(sandbox, monkeypatch, WEBSITE_SITE_NAME="func-x", schedule="0 0 3 * * *")
    try:
        line = await timer_refused(module, sandbox)
        for named in ("functionTimeout 00:05:00", "270 s", "360 s", "at least 00:06:40"):
            assert named in line
        _status, doctor = await get(module, "doctor")
        assert "ROTATION_VERIFY_TIMEOUT_SECONDS=<value>" in doctor["checks"][0]["fix"]
        await the_rest_still_works(module, sandbox)
    finally:
        await module.api.close()


async def test_in_azure_an_unset_schedule_is_refused_by_the_timer_health_and_doctor(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROTATION_SCHEDULE", raising=False)
    module = load(sandbox, monkeypatch, WEBSITE_SITE_NAME="func-x")
    try:
        line = await timer_refused(module, sandbox)
        assert line.startswith("invalid settings: ROTATION_SCHEDULE is not set")
        await the_rest_still_works(module, sandbox)
    finally:
        await module.api.close()


async def test_bad_function_timeout_in_host_json_still_indexes_and_names_it(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A host.json functionTimeout the timer budget cannot read is served like a bad
    setting by what needs it: every function indexes, health answers 503 with the line,
    the timer fails with it; the HTTP runs, with their own budget, still work."""
    from rotation import timebudget

    bad = tmp_path / "host.json"
    bad.write_text(json.dumps({"version": "2.0", "functionTimeout": "half an hour"}))
    real = timebudget.load_timer_budget
    monkeypatch.setattr(timebudget, "load_timer_budget", lambda _path: real(bad))
    module = load(sandbox, monkeypatch)
    try:
        assert set(bindings(module)) == FUNCTIONS
        assert "functionTimeout 'half an hour'" in await timer_refused(module, sandbox)
        await the_rest_still_works(module, sandbox)
    finally:
        await module.api.close()


# ----- health and status ------------------------------------------------------------------


async def test_health_says_up_and_nothing_else(fa: ModuleType) -> None:
    assert await get(fa, "health") == (200, {"status": "up"})


async def test_status_lists_the_inventory(sandbox: Sandbox, fa: ModuleType) -> None:
    sender = sandbox.add_sender(via="smtp-username")
    status, body = await get(fa, "status")
    assert status == 200
    (row,) = body["apps"]
    assert row["appId"] == sender.app_id
    assert row["smtpUsername"] == sender.username
    assert row["state"] == "no-password"


# ----- POST /api/rotations: 2xx ------------------------------------------------------------


async def test_empty_body_rotates_every_due_app(sandbox: Sandbox, fa: ModuleType) -> None:
    sender = sandbox.add_sender()
    status, report = await post(fa)
    assert status == 200
    assert report["ok"] is True
    (app,) = report["apps"]
    assert (app["appId"], app["outcome"]) == (sender.app_id, "rotated")
    assert sandbox.state.live_secret(app["secretName"]) is not None


async def test_force_rotates_only_the_named_app(sandbox: Sandbox, fa: ModuleType) -> None:
    one, other = sandbox.add_sender(), sandbox.add_sender()
    await post(fa)
    status, report = await post(fa, {"appIds": [one.app_id.upper()], "mode": "force"})
    assert status == 200
    assert [(a["appId"], a["outcome"]) for a in report["apps"]] == [(one.app_id, "rotated")]
    assert len(other.app.passwords) == 2


async def test_emergency_leaves_only_the_new_secret(sandbox: Sandbox, fa: ModuleType) -> None:
    sender = sandbox.add_sender()
    status, report = await post(fa, {"appIds": [sender.app_id], "mode": "emergency"})
    assert status == 200
    (app,) = report["apps"]
    assert app["removedKeyIds"] == [sender.password.key_id]
    assert [p.key_id for p in sender.app.passwords] == [app["newKeyId"]]


async def test_dry_run_reports_the_plan_and_writes_nothing(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    sandbox.add_sender()
    status, report = await post(fa, {"dryRun": True, "mode": "force"})
    assert status == 200
    assert report["dryRun"] is True
    assert [a["outcome"] for a in report["apps"]] == ["planned"]
    assert writes(sandbox.state) == 0


async def test_answer_lists_what_the_http_budget_left_unfinished(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    module = load(sandbox, monkeypatch, http_verify_timeout_seconds=1)
    try:
        await get(module, "status")  # tokens cached before secrets slow down
        await warm_lease_token(module)
        sandbox.state.propagation_delay = timedelta(hours=1)
        status, report = await post(module)
    finally:
        await module.api.close()
    assert status == 200
    assert report["unfinished"] == [sender.app_id]
    (app,) = report["apps"]
    assert app["outcome"] == "unfinished"
    assert "next timer run" in app["error"]
    assert [p.key_id for p in sender.app.passwords] == [sender.password.key_id]  # rolled back
    assert sandbox.state.vault == {}


async def test_readme_curl_bodies_work_form_urlencoded_as_curl_sends_them(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    """`curl -d` sends `Content-Type: application/x-www-form-urlencoded` with the JSON text
    unchanged; the API reads the body as JSON whatever the content type says."""
    sender = sandbox.add_sender()
    await post(fa)  # the app has a password
    examples = re.findall(r"curl -s -X POST \"\$FN/rotations\" -H \"\$AUTH\" -d '([^']*)'", README)
    assert len(examples) >= 3, examples
    for text in examples:
        body = text.replace("<app id>", sender.app_id).encode()
        request = func.HttpRequest(
            "POST",
            "/api/rotations",
            body=body,
            headers={"content-type": "application/x-www-form-urlencoded", **fa.auth},
        )
        response = await trigger(fa, "rotations")(request)
        assert response.status_code == 200, (text, response.get_body())
        assert json.loads(response.get_body())["ok"] is True


# ----- POST /api/rotations: 4xx, and nothing rotates ---------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b'{"appIds": ["not-a-guid"]}', 400, "invalid_request"),
        (b'{"mode": "panic"}', 400, "invalid_request"),
        (b'{"appIds": [], "force": true}', 400, "invalid_request"),
        (b'{"dryRun": "false"}', 400, "invalid_request"),
        (b'{"mode": "force", "mode": "due"}', 400, "duplicate_key"),
        (b"[" * 2000 + b"]" * 2000, 400, "malformed_json"),
        (b'{"mode": "emergency"}', 400, "emergency_needs_app_ids"),
        (b'["list"]', 400, "invalid_request"),
        (json.dumps({"appIds": [APP_A]}).encode(), 404, "unknown_apps"),
    ],
)
async def test_bad_request_gets_a_4xx_json_error_and_nothing_rotates(
    sandbox: Sandbox, fa: ModuleType, body: bytes, status: int, code: str
) -> None:
    sandbox.add_sender()
    got, answer = await post(fa, body)
    assert got == status
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert writes(sandbox.state) == 0


async def test_rotation_already_under_way_gets_409(sandbox: Sandbox, fa: ModuleType) -> None:
    sender = sandbox.add_sender()
    await get(fa, "status")  # tokens cached before secrets slow down
    await warm_lease_token(fa)
    sandbox.state.propagation_delay = timedelta(hours=1)
    first = asyncio.create_task(post(fa, {"appIds": [sender.app_id], "mode": "force"}))
    await until(lambda: sandbox.state.requests["smtp AUTH"] >= 1)  # verifying now
    status, answer = await post(fa, {"appIds": [sender.app_id], "mode": "force"})
    assert status == 409
    assert answer["error"]["appIds"] == [sender.app_id]
    sandbox.state.propagation_delay = timedelta(0)
    status, report = await first
    assert status == 200
    assert report["apps"][0]["outcome"] == "rotated"
    assert len(sender.app.passwords) == 2  # the refused request created nothing


# ----- doctor --------------------------------------------------------------------------------


async def test_doctor_route_reports_each_check_with_the_fix_for_an_unowned_app(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    owned = sandbox.add_sender()
    stranger = sandbox.add_sender(owned=False)

    status, body = await get(fa, "doctor")

    assert (status, body["ok"]) == (503, False)  # not ready to rotate every app
    by_name = {c["check"]: c for c in body["checks"]}
    assert by_name[f"owner {owned.app_id}"]["status"] == "ok"
    assert by_name[f"owner {stranger.app_id}"] == {
        "check": f"owner {stranger.app_id}",
        "status": "fail",
        "detail": f"pending: {stranger.app.display_name} does not list the rotator's identity "
        "as an owner, so Graph refuses to add or remove its passwords; an owner added now "
        "counts at the next call (no new token needed)",
        "fix": f"az ad app owner add --id {stranger.app_id} "
        f"--owner-object-id {sandbox.rotator.principal_id}",
    }
    assert [c["check"] for c in body["checks"] if c["status"] == "fail"] == [
        f"owner {stranger.app_id}"
    ]
    assert writes(sandbox.state) == 0


# ----- the timer -------------------------------------------------------------------------------


async def test_timer_rotates_due_apps(sandbox: Sandbox, fa: ModuleType) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=3))
    await trigger(fa, "rotation_timer")(TimerRequest())
    assert len(sender.app.passwords) == 2
    assert sandbox.state.live_secret(f"acs-smtp-{sender.app_id}") is not None


async def test_failed_timer_run_raises_with_app_ids_and_no_secret(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender(via="smtp-username", role=None)  # AUTH always refused
    module = load(sandbox, monkeypatch, verify_timeout_seconds=1)
    try:
        with pytest.raises(RuntimeError, match="1 app\\(s\\) failed") as caught:
            await trigger(module, "rotation_timer")(TimerRequest())
    finally:
        await module.api.close()
    assert sender.app_id in str(caught.value)
    assert not any(secret in str(caught.value) for secret in sandbox.state.issued_secrets)


@pytest.mark.parametrize("via", ["role", "smtp-username"])
async def test_a_timer_run_before_the_graph_grant_fails_once_with_one_line(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    via: Literal["role", "smtp-username"],
) -> None:
    """Right after `azd up` the Graph permission is not granted yet: the run fails as a
    whole, with the grant to make, not once per app (role holders fail discovery; SMTP
    Username senders failed each app's read before)."""
    role = "Contributor" if via == "role" else None  # no role holder for Graph to look up
    senders = [sandbox.add_sender(via=via, role=role, lifetime=timedelta(days=3)) for _ in range(3)]
    sandbox.rotator.sp.graph_roles.clear()
    module = load(sandbox, monkeypatch)
    try:
        with pytest.raises(PermissionDenied, match=r"Application\.ReadWrite\.OwnedBy"):
            await trigger(module, "rotation_timer")(TimerRequest())
    finally:
        await module.api.close()

    lines = [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    failures = [line for line in lines if line["level"] == "error"]
    assert [line["event"] for line in failures] == ["run.failed"]
    assert "hours" in failures[0]["error"]  # and when a new token will carry the grant
    assert not any(s.app_id in caplog.text for s in senders)  # no line per app
    assert writes(sandbox.state) == 0


async def doctor_text(module: ModuleType, wanted: str) -> func.HttpResponse:
    request = func.HttpRequest(
        "GET",
        "/api/doctor",
        body=b"",
        params={"format": wanted},
        headers=getattr(module, "auth", {}),
    )
    response: func.HttpResponse = await trigger(module, "doctor")(request)
    return response


async def test_doctor_as_text_gives_the_command_lines_lines_with_the_same_status(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the azd postdeploy hook prints: the lines, not JSON, and 503 while a check fails
    (here the most likely one right after `azd up`: the Graph grant not made yet)."""
    sandbox.add_sender()
    sandbox.rotator.sp.graph_roles.clear()
    module = load(sandbox, monkeypatch)
    try:
        failing = await doctor_text(module, "text")
        unknown = await doctor_text(module, "yaml")
        sandbox.rotator.sp.graph_roles.update(ROTATOR_GRAPH_ROLES)  # doctor gets a new token
        passing = await doctor_text(module, "TEXT")
    finally:
        await module.api.close()

    assert (failing.status_code, failing.mimetype) == (503, "text/plain")
    lines = failing.get_body().decode().splitlines()
    assert lines[0].startswith("ok    settings")
    assert any(line.startswith("fail  graph roles") for line in lines)
    assert any("fix: " in line and "grant-graph-permission" in line for line in lines)
    assert re.fullmatch(r"\d+ checks: [1-9]\d* failed, \d+ warnings", lines[-1])
    assert unknown.status_code == 400
    assert json.loads(unknown.get_body())["error"]["field"] == "format"
    assert passing.status_code == 200, passing.get_body().decode()
    assert " 0 failed, " in passing.get_body().decode().splitlines()[-1]


async def test_timer_budget_comes_from_host_json(fa: ModuleType) -> None:
    assert fa.api.timer_budget_seconds == load_timer_budget(Path("host.json"))


@pytest.mark.slow
async def test_a_first_run_too_big_for_one_invocation_completes_over_several_none_killed(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16, scaled down in time: functionTimeout 8 s, verification up to 3 s, one
    SMTP handshake 1.5 s, two apps at a time. Each timer run starts apps only while one can
    still finish, lets those finish, reports the rest unfinished, and returns before the
    host's timeout (simulated with asyncio.timeout); the next runs take the rest. (The
    window in which a run may start an app, 8 x 0.9 - 3.5 = 3.7 s, leaves a loaded machine
    time for discovery: a run that could start nothing would be starved, which fails.)"""
    senders = [sandbox.add_sender(lifetime=timedelta(days=10)) for _ in range(8)]
    sandbox.state.faults.inject("smtp CONNECT", latency=1.5)
    # the 60 s step margin, scaled down with the rest
    module = load(sandbox, monkeypatch, 0.5, max_concurrency=2, verify_timeout_seconds=3)
    host_timeout = function_timeout_seconds({"functionTimeout": "00:00:08"})
    assert host_timeout is not None
    module.api.timer_budget_seconds = timer_budget_seconds(host_timeout)
    reports: list[dict[str, Any]] = []
    timer_run = module.api.timer

    async def recorded() -> dict[str, Any]:
        reports.append(await timer_run())
        return reports[-1]

    module.api.timer = recorded
    try:
        while not reports or reports[-1]["unfinished"]:
            assert len(reports) < 6, [r["counts"] for r in reports]
            async with asyncio.timeout(host_timeout):  # the host kills what outlives it
                await trigger(module, "rotation_timer")(TimerRequest())
    finally:
        await module.api.close()

    assert len(reports) > 1, "one run did everything: the test no longer tests the budget"
    assert all(report["ok"] for report in reports)
    rotated = [a["appId"] for r in reports for a in r["apps"] if a["outcome"] == "rotated"]
    assert sorted(rotated) == sorted(s.app_id for s in senders)  # each once, none lost
    for report in reports[:-1]:
        unfinished = [a for a in report["apps"] if a["outcome"] == "unfinished"]
        assert {a["error"] for a in unfinished} == {
            "not started: no time left in this run; the next run completes it"
        }  # none was cut short
    for sender in senders:
        live = sandbox.state.live_secret(f"acs-smtp-{sender.app_id}")
        assert live is not None
        assert sandbox.state.smtp_login(sender.username, live.value).ok


async def test_no_answer_ever_carries_a_secret(sandbox: Sandbox, fa: ModuleType) -> None:
    sandbox.add_sender()
    answers = [
        await post(fa),
        await post(fa, {"mode": "emergency"}),
        await get(fa, "status"),
        await post(fa, b"{"),
    ]
    text = json.dumps(answers)
    assert sandbox.state.issued_secrets
    assert not any(secret in text for secret in sandbox.state.issued_secrets)
