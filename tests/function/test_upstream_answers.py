"""GET /api/status and POST /api/rotations with answers upstream services should never send
(issue 23 item 2), through function_app's triggers: one unreadable item marks its app and
the route still answers 200; a whole answer that cannot be read is a 502 problem naming the
service; nothing upstream returns makes a route answer 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType

import pytest

from sandbox.server import Sandbox
from tests.function.test_function_app import get, load, post

APPS = "graph GET /applications"
ACS = "arm GET /subscriptions/{sub}/providers/Microsoft.Communication/communicationServices"
ASSIGNMENTS = "arm GET /{scope}/providers/Microsoft.Authorization/roleAssignments"


@pytest.fixture
async def fa(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModuleType]:
    module = load(sandbox, monkeypatch)
    yield module
    await module.api.close()


async def test_status_answers_for_the_apps_it_can_read_and_marks_the_other(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    good, bad = sandbox.add_sender(), sandbox.add_sender()
    sandbox.state.faults.rewrite(APPS, {"appId": bad.app_id}, "passwordCredentials", value="x")
    status, body = await get(fa, "status")
    assert status == 200, body
    rows = {r["appId"]: r for r in body["apps"]}
    assert rows[bad.app_id]["state"] == "unreadable"
    assert "passwordCredentials: should be a valid list" in rows[bad.app_id]["reason"]
    assert rows[bad.app_id]["smtpUsername"] == bad.username  # still shown as the app it is
    assert rows[good.app_id]["state"] == "no-password"  # read as usual: nothing in Key Vault yet
    status, report = await post(fa, {"mode": "force", "appIds": [good.app_id, bad.app_id]})
    assert status == 200, report
    outcomes = {o["appId"]: o["outcome"] for o in report["apps"]}
    assert outcomes == {good.app_id: "rotated", bad.app_id: "failed"}


@pytest.mark.parametrize(
    ("route", "path", "service"),
    [
        (APPS, "value", "Microsoft Graph"),
        ("vault GET /secrets", "value", "Key Vault"),
        (ACS, "value", "Azure Resource Manager"),
        (ACS, "nextLink", "Azure Resource Manager"),
        (ASSIGNMENTS, "value", "Azure Resource Manager"),
        (ASSIGNMENTS, "nextLink", "Azure Resource Manager"),
    ],
)
async def test_a_whole_answer_that_cannot_be_read_is_a_502_naming_the_service(
    sandbox: Sandbox, fa: ModuleType, route: str, path: str, service: str
) -> None:
    sandbox.add_sender()
    edit = sandbox.state.faults.rewrite(route, {}, path, value=42)
    status, body = await get(fa, "status")
    assert edit.edited >= 1
    assert status == 502, body
    assert body["error"]["code"] == "upstream_failed"
    assert service in body["error"]["message"]
    assert "cannot be read" in body["error"]["message"]


async def test_no_route_answers_500_for_items_of_every_malformed_kind(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    """The issue's table at once, through HTTP: a Graph application, a vault listing item,
    a role assignment and a service principal each malformed for one of four senders."""
    senders = [sandbox.add_sender() for _ in range(4)]
    status, _ = await post(fa)  # every password in Key Vault first
    assert status == 200
    faults = sandbox.state.faults
    faults.rewrite(APPS, {"appId": senders[0].app_id}, "passwordCredentials.0.endDateTime")
    faults.rewrite("vault GET /secrets", {"tags.app-id": senders[1].app_id}, "tags", value="x")
    faults.rewrite("arm GET *", {"properties.principalId": senders[2].principal_id}, "properties", value="Contributor")  # fmt: skip
    faults.rewrite("graph GET /servicePrincipals", {"appId": senders[3].app_id}, "appId", value="not-a-guid")  # fmt: skip
    for mode in ("due", "force"):
        status, report = await post(fa, {"mode": mode})
        assert status == 200, report
        assert len(report["skippedItems"]) == 1
    status, body = await get(fa, "status")
    assert status == 200, body
    states = {r["appId"]: r["state"] for r in body["apps"]}
    assert states[senders[0].app_id] == "unreadable"
    assert states[senders[1].app_id] == "ok"
    assert senders[2].app_id not in states
    assert states[senders[3].principal_id.lower()] == "skipped"
