"""infra/scripts/*.sh against a fake `az` (tests/infra/fake_az.py): they add only what is
missing, find apps through SMTP Usernames, and fail loudly, naming what they could not do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotation import doctor
from tests.infra import bicep

SCRIPTS = bicep.INFRA / "scripts"
ROTATOR = "7a0e0a0e-0000-4000-8000-000000000001"
OWNED = "aaaaaaaa-0000-4000-8000-000000000001"
NOT_YET = "bbbbbbbb-0000-4000-8000-000000000002"
OTHER = "cccccccc-0000-4000-8000-000000000003"
SUB = "11111111-0000-4000-8000-000000000000"
ACS = f"/subscriptions/{SUB}/resourceGroups/rg-email/providers/Microsoft.Communication/CommunicationServices/acs-one"

BASH = shutil.which("bash") or "bash"


class FakeAz:
    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        launcher = self.bin / "az"
        launcher.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).with_name("fake_az.py")}" "$@"\n'
        )
        launcher.chmod(0o755)
        self.world_path = tmp_path / "world.json"
        self.world_path.write_text(
            json.dumps(
                {
                    "default_subscription": SUB,
                    "owners": {OWNED: [ROTATOR], NOT_YET: [], OTHER: []},
                    "resources": {SUB: [ACS]},
                    "smtp_usernames": {ACS: [NOT_YET.upper()]},
                    "graph_sp": "graph-sp-object-id",
                    "app_roles": [],
                }
            )
        )

    @property
    def world(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.world_path.read_text())
        return loaded

    def update(self, **changes: object) -> None:
        self.world_path.write_text(json.dumps({**self.world, **changes}))

    def calls(self, prefix: str) -> list[str]:
        log = self.world_path.with_suffix(".log")
        lines = log.read_text().splitlines() if log.exists() else []
        return [line for line in lines if line.startswith(prefix)]

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": f"{self.bin}:/usr/bin:/bin",  # no azd: the scripts must not need it
            "FAKE_AZ_WORLD": str(self.world_path),
            "HOME": os.environ.get("HOME", str(self.bin)),
            **env,
        }
        return subprocess.run(  # noqa: S603 (our own scripts, our own arguments)
            [BASH, str(SCRIPTS / script), *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
            check=False,
        )


@pytest.fixture
def az(tmp_path: Path) -> FakeAz:
    return FakeAz(tmp_path)


def test_add_owner_adds_only_the_missing_owners(az: FakeAz) -> None:
    done = az.run("add-owner.sh", "--principal-id", ROTATOR, OWNED, NOT_YET)

    assert done.returncode == 0, done.stderr
    assert az.world["owners"] == {OWNED: [ROTATOR], NOT_YET: [ROTATOR], OTHER: []}
    assert f"ok     {OWNED}" in done.stdout
    assert f"added  {NOT_YET}" in done.stdout
    assert len(az.calls("ad app owner add")) == 1


def test_add_owner_run_twice_changes_nothing_the_second_time(az: FakeAz) -> None:
    az.run("add-owner.sh", "--principal-id", ROTATOR, NOT_YET)
    again = az.run("add-owner.sh", "--principal-id", ROTATOR, NOT_YET)

    assert again.returncode == 0
    assert f"ok     {NOT_YET}" in again.stdout
    assert len(az.calls("ad app owner add")) == 1


def test_add_owner_names_each_app_it_could_not_do_and_fails(az: FakeAz) -> None:
    az.update(not_mine=[OTHER])
    missing = "dddddddd-0000-4000-8000-000000000004"

    done = az.run("add-owner.sh", NOT_YET, OTHER, missing, ROTATOR_PRINCIPAL_ID=ROTATOR)

    assert done.returncode == 1
    assert f"added  {NOT_YET}" in done.stdout  # the others still get done
    assert f"FAIL   {OTHER}: could not add the owner" in done.stderr
    assert f"FAIL   {missing}: no such application" in done.stderr
    assert "2 app(s) not done" in done.stderr


def test_add_owner_discovers_apps_from_smtp_usernames_and_acs_app_ids(az: FakeAz) -> None:
    done = az.run(
        "add-owner.sh", "--discover", ROTATOR_PRINCIPAL_ID=ROTATOR, ACS_APP_IDS=f"{OTHER}, {OWNED}"
    )

    assert done.returncode == 0, done.stderr
    assert az.world["owners"] == {OWNED: [ROTATOR], NOT_YET: [ROTATOR], OTHER: [ROTATOR]}
    assert az.calls("resource list --subscription " + SUB)


def test_add_owner_without_a_principal_or_apps_says_what_is_missing(az: FakeAz) -> None:
    no_principal = az.run("add-owner.sh", NOT_YET)
    no_apps = az.run("add-owner.sh", ROTATOR_PRINCIPAL_ID=ROTATOR)

    assert no_principal.returncode == 2
    assert "--principal-id" in no_principal.stderr
    assert no_apps.returncode == 2
    assert "ACS_APP_IDS" in no_apps.stderr
    assert not az.calls("ad app owner add")


GRAPH_ROLES = {
    "Application.ReadWrite.OwnedBy": "18a4783c-866b-4cc7-a460-3d5e5662c884",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
}


def test_grant_graph_permission_assigns_each_graph_role_once(az: FakeAz) -> None:
    first = az.run("grant-graph-permission.sh", "--principal-id", ROTATOR)
    second = az.run("grant-graph-permission.sh", ROTATOR_PRINCIPAL_ID=ROTATOR)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert az.world["app_roles"] == [
        {"principalId": ROTATOR, "resourceId": "graph-sp-object-id", "appRoleId": role}
        for role in GRAPH_ROLES.values()
    ]
    assert second.stdout.count("already holds") == 3
    assert all("graph.example.test/v1.0/" in c for c in az.calls("rest"))


def test_graph_role_ids_are_the_same_in_the_scripts_and_the_template() -> None:
    module = (bicep.INFRA / "modules" / "graph-permission.bicep").read_text(encoding="utf-8")
    for role in GRAPH_ROLES.values():
        for script in ("grant-graph-permission.sh", "grant-graph-permission.ps1"):
            assert role in (SCRIPTS / script).read_text()
        assert f"'{role}'" in module


def test_postprovision_hands_acs_app_ids_to_add_owner_and_never_fails_the_deployment(
    az: FakeAz,
) -> None:
    az.update(not_mine=[OTHER])

    done = az.run(
        "postprovision.sh",
        ROTATOR_PRINCIPAL_ID=ROTATOR,
        ACS_APP_IDS=f"{NOT_YET},{OTHER}",
        FUNCTION_URL="https://func.example.test/api",
        API_APP_ID_URI="api://tenant/acs-smtp-rotation-x",
    )

    assert done.returncode == 0
    assert az.world["owners"][NOT_YET] == [ROTATOR]
    assert "grant-graph-permission.sh --principal-id " + ROTATOR in done.stdout
    assert "run infra/scripts/add-owner.sh again" in done.stderr
    # the API takes an Entra token for its application ID URI, no function key
    assert "az account get-access-token --resource api://tenant/acs-smtp-rotation-x" in done.stdout
    assert 'curl "https://func.example.test/api/doctor" -H "$AUTH"' in done.stdout
    assert "code=" not in done.stdout


def test_preprovision_fails_with_the_register_command_when_microsoft_app_is_missing(
    az: FakeAz,
) -> None:
    missing = az.run("preprovision.sh", AZURE_SUBSCRIPTION_ID=SUB)
    az.update(providers={"Microsoft.App": "Registered"})
    registered = az.run("preprovision.sh", AZURE_SUBSCRIPTION_ID=SUB)

    assert missing.returncode == 1
    assert "'NotRegistered'" in missing.stderr
    assert (
        f"az provider register --namespace Microsoft.App --wait --subscription {SUB}"
        in missing.stderr
    )
    assert registered.returncode == 0, registered.stderr
    assert az.calls(
        f"provider show --namespace Microsoft.App --query registrationState -o tsv --subscription {SUB}"
    )


def test_preprovision_asks_for_az_login_when_signed_out(az: FakeAz) -> None:
    az.update(signed_out=True, providers={"Microsoft.App": "Registered"})

    done = az.run("preprovision.sh")

    assert done.returncode == 1
    assert "Run: az login" in done.stderr
    assert not az.calls("provider show")


def test_azure_yaml_runs_the_preprovision_hook_on_both_platforms() -> None:
    text = (bicep.ROOT / "azure.yaml").read_text(encoding="utf-8")
    hooks = text.split("hooks:")[1]

    assert "preprovision:" in hooks
    assert "run: ./infra/scripts/preprovision.sh" in hooks
    assert "run: ./infra/scripts/preprovision.ps1" in hooks
    assert (SCRIPTS / "preprovision.ps1").read_text().count("Microsoft.App") >= 2


# ----- postdeploy: doctor's lines at the end of azd up --------------------------------------

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0." + "s" * 40
API = "api://tenant/acs-smtp-rotation-x"


class FakeFunctionApp:
    """The deployed app, as the hook meets it: `answers` in turn (the last one repeats),
    every request's path and Authorization header recorded."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, str | None]] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                app.seen.append((self.path, self.headers.get("Authorization")))
                status, text = app.answers[min(len(app.seen), len(app.answers)) - 1]
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def function_app() -> Iterator[Callable[[list[tuple[int, str]]], FakeFunctionApp]]:
    made: list[FakeFunctionApp] = []

    def make(answers: list[tuple[int, str]]) -> FakeFunctionApp:
        made.append(FakeFunctionApp(answers))
        return made[-1]

    yield make
    for app in made:
        app.close()


def postdeploy(az: FakeAz, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return az.run(
        "postdeploy.sh",
        FUNCTION_URL=url,
        API_APP_ID_URI=API,
        DOCTOR_PAUSE_SECONDS="0",
        **env,
    )


#: What doctor answers right after a first `azd up`: the Graph grant not made yet.
FIRST_HOUR = doctor.text(
    [
        doctor.Check("settings", "ok", "every ROTATION_* setting is valid"),
        doctor.Check(
            "graph roles",
            "fail",
            "the identity's token has no Application.ReadWrite.OwnedBy",
            "infra/scripts/grant-graph-permission.sh --principal-id <id>",
        ),
    ]
)


def test_postdeploy_waits_for_the_app_then_prints_doctors_lines_and_never_fails(
    az: FakeAz, function_app: Callable[[list[tuple[int, str]]], FakeFunctionApp]
) -> None:
    az.update(access_token=TOKEN, api=API, token_after=1)  # a role granted a moment ago
    app = function_app(
        [
            (404, "Function host is not running."),
            (503, "<html>Service Unavailable</html>"),  # the platform's, not doctor's
            (503, FIRST_HOUR),
        ]
    )

    done = postdeploy(az, app.url)

    assert done.returncode == 0, done.stderr
    assert "".join(f"  {line}\n" for line in FIRST_HOUR.splitlines()) in done.stdout
    assert "fix: infra/scripts/grant-graph-permission.sh" in done.stdout
    assert "The deployment succeeded; each failed check above has its fix" in done.stdout
    assert done.stdout.count("waiting for the app to start") == 3  # no token, 404, platform 503
    # the deployer's token in the header only
    assert app.seen == [("/api/doctor?format=text", f"Bearer {TOKEN}")] * 3
    assert TOKEN not in done.stdout + done.stderr
    assert az.calls(f"account get-access-token --resource {API} --query accessToken -o tsv")


def test_postdeploy_prints_every_line_of_a_healthy_doctor_without_a_fix_note(
    az: FakeAz, function_app: Callable[[list[tuple[int, str]]], FakeFunctionApp]
) -> None:
    az.update(access_token=TOKEN)
    healthy = doctor.text([doctor.Check("settings", "ok", "every ROTATION_* setting is valid")])
    app = function_app([(200, healthy)])

    done = postdeploy(az, app.url)

    assert done.returncode == 0
    assert "  1 checks: 0 failed, 0 warnings" in done.stdout
    assert "has its fix" not in done.stdout
    assert "waiting" not in done.stdout


def test_postdeploy_gives_up_with_the_commands_to_run_later_and_still_succeeds(
    az: FakeAz, function_app: Callable[[list[tuple[int, str]]], FakeFunctionApp]
) -> None:
    app = function_app([(200, FIRST_HOUR)])

    no_token = postdeploy(az, app.url, DOCTOR_ATTEMPTS="3")  # no role: no token at all
    az.update(access_token=TOKEN)
    down = function_app([(502, "Bad Gateway")])
    no_doctor = postdeploy(az, down.url, DOCTOR_ATTEMPTS="2")
    refused = function_app([(403, '{"error": {"code": "role_missing", "message": "x"}}')])
    no_role = postdeploy(az, refused.url, DOCTOR_ATTEMPTS="5")
    unset = az.run("postdeploy.sh")

    assert (no_token.returncode, no_doctor.returncode, unset.returncode) == (0, 0, 0)
    assert no_role.returncode == 0
    assert "No token for the API could be had" in no_token.stdout
    assert app.seen == []  # nothing asked without a token
    assert "doctor did not answer (last: HTTP 502)" in no_doctor.stdout
    assert len(down.seen) == 2
    assert "no Rotation.Read role" in no_role.stdout
    assert len(refused.seen) == 1  # a refusal is not waited out
    assert "FUNCTION_URL or API_APP_ID_URI is not set" in unset.stdout
    for done in (no_token, no_doctor, no_role, unset):
        assert "/doctor?format=text" in done.stdout
        assert "az account get-access-token --resource" in done.stdout


def test_azure_yaml_runs_doctor_after_the_deploy_on_both_platforms() -> None:
    hooks = yaml.safe_load((bicep.ROOT / "azure.yaml").read_text(encoding="utf-8"))["hooks"]

    postdeploy = hooks["postdeploy"]
    assert postdeploy["posix"]["run"] == "./infra/scripts/postdeploy.sh"
    assert postdeploy["windows"]["run"] == "./infra/scripts/postdeploy.ps1"
    assert postdeploy["posix"]["continueOnError"] is True
    assert postdeploy["windows"]["continueOnError"] is True
    twin = (SCRIPTS / "postdeploy.ps1").read_text(encoding="utf-8")
    for shared in ("/doctor?format=text", "Authorization", "get-access-token", "checks: "):
        assert shared in twin
        assert shared in (SCRIPTS / "postdeploy.sh").read_text(encoding="utf-8")
    assert os.access(SCRIPTS / "postdeploy.sh", os.X_OK)
