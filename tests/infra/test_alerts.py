"""Every alert rule's KQL, run (tests/infra/kql.py) against log lines the product really
writes: the rotator is driven through healthy and failing runs against the sandbox, its JSON
log lines become the `traces` rows Application Insights would hold, and each rule must fire
exactly when an operator needs it to. The queries are taken from alerts.bicep and spliced
as Bicep splices them (replace() of __PARSE__, __DAYS__ and __ARMED__)."""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from azure.functions.timer import TimerRequest

from rotation.azure.clients import Overrides
from rotation.http_api import Api
from rotation.service import RotationService
from rotation.settings import load_settings
from rotation.telemetry import logs
from sandbox.event_grid import NEW_VERSION
from sandbox.server import Sandbox
from sandbox.state import SecretVersion
from tests.infra import bicep, kql
from tests.infra.test_workbook import kql_analyzer
from tests.integration.conftest import FAST

ALERTS = (bicep.INFRA / "modules" / "alerts.bicep").read_text(encoding="utf-8")
NOW = datetime(2026, 12, 10, 3, 30, tzinfo=UTC)
ARMED = "2026-12-01T00:00:00Z"  # what dateTimeAdd(deployedAt, 'P2D', ...) renders


def query_text(variable: str) -> str:
    """A query variable's text as written in alerts.bicep ('''...''')."""
    match = re.search(rf"var {variable} = (?:replace\()?'''(.*?)'''", ALERTS, re.DOTALL)
    assert match, variable
    return match[1]


def query(rule: str, *, days: int = 14, armed: str = ARMED) -> str:
    """The query the rule runs, spliced as the Bicep splices it."""
    parse = query_text("parse").strip()
    text = query_text(rule)
    return (
        text.replace("__PARSE__", parse)
        .replace("__DAYS__", str(days))
        .replace("__ARMED__", armed)
        .strip()
    )


def traces(lines: str) -> list[dict[str, Any]]:
    """Application Insights `traces` rows for the product's JSON lines (the worker forwards
    each record's message; a host prefix must not matter, so one is added)."""
    return [
        {"timestamp": NOW, "message": f"Host.Function.Console: {line}"}
        for line in lines.splitlines()
        if line.strip()
    ]


def fires(rule: str, tables: kql.Tables, **options: Any) -> list[dict[str, Any]]:
    """The rows that make a rule alert (count > 0, or the silence rule's runs < 1)."""
    rows = kql.run(query(rule, **options), tables, NOW)
    if rule == "silenceQuery":
        return [r for r in rows if r["runs"] < 1]
    return rows


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The product's JSON log lines, as the Function App writes them."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.configure(**saved[2])


@pytest.fixture
async def api(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    env = sandbox.env(verify_timeout_seconds=1, http_verify_timeout_seconds=1)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    clock = sandbox.state.clock.now
    api = Api(
        load_settings(env),
        lambda s: RotationService.open(s, clock=clock, overrides=Overrides(backoff=FAST)),
    )
    yield api
    await api.close()


def test_the_rules_use_these_queries() -> None:
    assert "query: trim(replace(problemQuery, '__PARSE__', trim(parse)))" in ALERTS
    assert "query: trim(timerQuery)" in ALERTS
    assert "query: trim(replace(silenceQuery, '__PARSE__', trim(parse)))" in ALERTS
    main = bicep.MAIN.read_text(encoding="utf-8")
    assert "silenceArmedAfter: dateTimeAdd(deployedAt, 'P2D'" in main
    assert "param deployedAt string = utcNow(" in main


async def test_a_healthy_run_raises_nothing(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    sandbox.add_sender(lifetime=timedelta(days=3))

    assert (await api.timer())["ok"] is True

    tables = {"traces": traces(captured.getvalue())}
    assert fires("problemQuery", tables) == []
    assert fires("silenceQuery", tables) == []


async def test_a_failed_run_fires_the_problem_rule(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    sender = sandbox.add_sender(via="smtp-username", role=None, lifetime=timedelta(days=3))

    assert (await api.timer())["ok"] is False

    (row,) = fires("problemQuery", {"traces": traces(captured.getvalue())})
    assert (row["eventName"], row["failed"]) == ("run.finished", 1)
    assert row["runId"]
    assert sender.app_id not in str(row)  # the row points at the run; app.failed names apps


async def test_dry_runs_do_not_count_as_runs_and_do_not_alert(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    sandbox.add_sender(lifetime=timedelta(days=3))

    reader = sandbox.add_api_user(roles=["Rotation.Read"])
    auth = {"Authorization": f"Bearer {sandbox.user_token(reader)}"}
    status, body = await api.rotations(b'{"dryRun": true}', auth)

    assert (status, body["dryRun"]) == (200, True)
    assert '"dry_run": true' in captured.getvalue()
    tables = {"traces": traces(captured.getvalue())}
    assert fires("problemQuery", tables) == []
    assert fires("silenceQuery", tables) == [{"runs": 0}]


RULES = ("problemQuery", "timerQuery", "silenceQuery")


def every_rule(lines: str, raised: BaseException | None = None) -> dict[str, list[Any]]:
    """Each rule's alerting rows for these log lines (and the host's record of the timer
    invocation when there was one: `raised` or a clean run)."""
    tables: kql.Tables = {"traces": traces(lines), **host_records(raised)}
    return {rule: fires(rule, tables) for rule in RULES}


async def test_an_expiry_a_dry_run_sees_alerts_and_nothing_else_of_it_does(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    """Issue 27 item 2, decided in docs/deploy.md ("Dry runs and the alerts"): an app 10 days
    from expiry is overdue whoever notices, so the dry run that sees it raises the expiry
    alert; it neither fails nor counts as a run. The real run after it rotates the app, and
    then no rule fires."""
    sender = sandbox.add_sender()
    assert (await api.timer())["counts"] == {"rotated": 1}
    sandbox.state.clock.advance(timedelta(days=170))  # 10 days left on the Key Vault password
    captured.truncate(0)
    captured.seek(0)
    reader = sandbox.add_api_user(roles=["Rotation.Read"])
    auth = {"Authorization": f"Bearer {sandbox.user_token(reader)}"}

    status, body = await api.rotations(b'{"dryRun": true}', auth)

    assert (status, body["counts"]) == (200, {"planned": 1})
    dry = every_rule(captured.getvalue())
    (near,) = dry["problemQuery"]
    assert (near["eventName"], near["appId"]) == ("app.expiry_near", sender.app_id)
    assert 9 < near["daysLeft"] <= 10
    assert dry["timerQuery"] == []
    assert dry["silenceQuery"] == [{"runs": 0}]  # a dry run is no run: silence still stands

    captured.truncate(0)
    captured.seek(0)
    assert (await api.timer())["counts"] == {"rotated": 1}

    assert every_rule(captured.getvalue()) == {
        "problemQuery": [],
        "timerQuery": [],
        "silenceQuery": [],
    }


async def test_a_run_that_fails_before_its_report_fires_at_once(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    """Discovery refused by ARM (the identity lost Reader): no run.finished is ever logged."""
    sandbox.add_sender()
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != sandbox.rotator.principal_id
    ]

    with pytest.raises(Exception, match="AuthorizationFailed"):
        await api.timer()

    tables = {"traces": traces(captured.getvalue())}
    (row,) = fires("problemQuery", tables)
    assert row["eventName"] == "run.failed"
    assert "AuthorizationFailed" in row["error"]
    assert fires("silenceQuery", tables) == [{"runs": 0}]


async def test_a_run_that_starts_no_due_app_fails_and_fires_and_names_the_app_left_out(
    sandbox: Sandbox, api: Api, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27: a run whose budget fits no app said ok. Now it is a failure (the problem
    rule and, through the raised invocation, the timer rule), and an app that fell due ten
    daily runs ago and is left out again is named (app.left_unstarted)."""
    stale = sandbox.add_sender()
    assert (await api.timer())["counts"] == {"rotated": 1}  # Key Vault serves a 180-day secret
    sandbox.state.clock.advance(timedelta(days=160))  # due since ten days: ten daily runs
    fresh = sandbox.add_sender(lifetime=timedelta(days=29))  # due, but no run has missed it yet
    captured.truncate(0)
    captured.seek(0)
    api.timer_budget_seconds = 0.001  # discovery alone outlives it: nothing can start
    created = sandbox.state.requests["graph POST /applications/{id}/addPassword"]
    import function_app

    monkeypatch.setattr(function_app, "api", api)
    with pytest.raises(RuntimeError, match="2 app\\(s\\) due and none started") as caught:
        await function_app.rotation_timer(TimerRequest())

    assert fires("timerQuery", host_records(caught.value)) != []
    rows = fires("problemQuery", {"traces": traces(captured.getvalue())})
    (run,) = [r for r in rows if r["eventName"] == "run.finished"]
    assert (run["starved"], run["failed"], run["unfinished"]) == (True, 0, 2)
    (left,) = [r for r in rows if r["eventName"] == "app.left_unstarted"]
    assert left["appId"] == stale.app_id
    assert fresh.app_id not in str(rows)
    assert sandbox.state.requests["graph POST /applications/{id}/addPassword"] == created


async def test_a_run_that_started_its_due_apps_is_not_starved(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    sandbox.add_sender(lifetime=timedelta(days=20))

    report = await api.timer()

    assert (report["ok"], report["counts"]) == (True, {"rotated": 1})
    assert '"starved": false' in captured.getvalue()
    assert fires("problemQuery", {"traces": traces(captured.getvalue())}) == []


async def test_silence_waits_until_the_first_scheduled_run_could_have_happened() -> None:
    """A fresh deployment has no run yet: quiet until two days after it, then it alerts."""
    empty: kql.Tables = {"traces": []}

    assert fires("silenceQuery", empty, armed="2026-12-11T00:00:00Z") == []
    assert fires("silenceQuery", empty, armed="2026-12-09T00:00:00Z") == [{"runs": 0}]


async def test_an_app_near_expiry_that_was_not_rotated_fires(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    sender = sandbox.add_sender(via="both", lifetime=timedelta(days=3))
    assert (await api.timer())["ok"] is True
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != sender.principal_id
    ]  # from now on ACS refuses its AUTH: the next rotation fails
    sandbox.state.clock.advance(timedelta(days=170))
    captured.truncate(0)
    captured.seek(0)

    await api.timer()

    tables = {"traces": traces(captured.getvalue())}
    events = sorted(r["eventName"] for r in fires("problemQuery", tables))
    assert events == ["app.expiry_near", "run.finished"]
    (near,) = [r for r in fires("problemQuery", tables) if r["eventName"] == "app.expiry_near"]
    assert 9 < near["daysLeft"] <= 10
    assert [r["eventName"] for r in fires("problemQuery", tables, days=5)] == ["run.finished"]


async def test_invalid_settings_fire_the_problem_and_timer_rules(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, captured: io.StringIO
) -> None:
    for key, value in sandbox.env(grace_hours="soon").items():
        monkeypatch.setenv(key, value)
    import function_app

    module = importlib.reload(function_app)  # keeps the root handlers: `captured` sees it
    with pytest.raises(Exception, match="ROTATION_GRACE_HOURS") as caught:
        await module.rotation_timer(TimerRequest())

    rows = fires("problemQuery", {"traces": traces(captured.getvalue())})
    assert {r["eventName"] for r in rows} <= {"settings.invalid", "run.failed"}
    assert "run.failed" in {r["eventName"] for r in rows}
    assert all("soon" not in r["error"] for r in rows)
    assert fires("timerQuery", host_records(caught.value)) != []


async def test_a_hand_written_version_fires_the_problem_rule_and_its_repeat_does_not(
    sandbox: Sandbox, api: Api, captured: io.StringIO
) -> None:
    """Drift (issue 26): a version of a managed secret the rotator did not write alerts
    once, with the app and what SMTP AUTH said; our own promotion's event alerts nothing."""
    grid = sandbox.event_grid
    assert grid is not None
    sender = sandbox.add_sender()
    await api.timer()  # a fresh secret is not due: promote one first
    operator = {"Authorization": f"Bearer {sandbox.user_token(sandbox.add_api_user())}"}
    body = json.dumps({"appIds": [sender.app_id], "mode": "force"}).encode()
    assert (await api.rotations(body, operator))[0] == 200
    ours = sandbox.state.vault[f"acs-smtp-{sender.app_id}"][-1]
    await api.vault_event(grid.event(NEW_VERSION, ours))
    assert handled(captured)[-1] == ("event.ignored", "written by the rotator (its own promotion)")
    assert fires("problemQuery", {"traces": traces(captured.getvalue())}) == []

    now = sandbox.state.clock.now()
    hand = SecretVersion(ours.name, "ab" * 16, "pasted", None, {}, True, None, None, now, now)
    sandbox.state.vault[ours.name.lower()].append(hand)
    await api.vault_event(grid.event(NEW_VERSION, hand))
    assert handled(captured)[-1][0] == "vault.drift_detected"
    await api.vault_event(grid.event(NEW_VERSION, hand))  # a repeat
    assert handled(captured)[-1][1].startswith("drift already caught and checked")

    (row,) = fires("problemQuery", {"traces": traces(captured.getvalue())})
    assert (row["eventName"], row["appId"]) == ("vault.drift_detected", sender.app_id)
    assert "pasted" not in captured.getvalue()


def handled(captured: io.StringIO) -> list[tuple[str, str | None]]:
    """What became of each event, as the product logs it: (event name, reason)."""
    parsed = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    return [
        (line["event"], line.get("reason"))
        for line in parsed
        if line["event"] in ("event.ignored", "event.malformed", "vault.drift_detected")
    ]


def host_records(raised: BaseException | None) -> kql.Tables:
    """What the Functions host writes for one rotation_timer invocation: a `requests` row
    (success false when the function raised) and, if it raised, an `exceptions` row."""
    request = {
        "timestamp": NOW,
        "name": "rotation_timer",
        "success": raised is None,
        "resultCode": "0" if raised is None else "1",
    }
    exceptions = (
        []
        if raised is None
        else [{"timestamp": NOW, "operation_Name": "rotation_timer", "outerMessage": str(raised)}]
    )
    return {"requests": [request], "exceptions": exceptions}


async def test_the_timer_rule_fires_on_a_failed_invocation_only(
    sandbox: Sandbox, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_sender(lifetime=timedelta(days=3))
    report = await api.timer()
    assert report["ok"] is True
    assert fires("timerQuery", host_records(None)) == []

    sandbox.add_sender(via="smtp-username", role=None, lifetime=timedelta(days=3))
    import function_app

    monkeypatch.setattr(function_app, "api", api)
    with pytest.raises(RuntimeError, match="1 app\\(s\\) failed") as caught:
        await function_app.rotation_timer(TimerRequest())

    problems = sorted(r["problem"] for r in fires("timerQuery", host_records(caught.value)))
    assert problems == ["exception", "invocation failed"]


def test_every_rule_is_valid_kql_for_microsofts_language_service() -> None:
    """Kusto's own parser and binder (tests/infra/kql/analyze.js, with the traces, requests
    and exceptions schemas) accept each rule's query as deployed."""
    command = kql_analyzer()
    rules = ["problemQuery", "timerQuery", "silenceQuery"]
    texts = [query(rule, armed="2026-12-01T00:00:00Z") for rule in rules]

    done = subprocess.run(  # noqa: S603 (our own script, fixed arguments)
        command, input=json.dumps(texts), capture_output=True, text=True, check=True
    )

    errors = {
        rule: [d["message"] for d in diagnostics if d["severity"] == "Error"]
        for rule, diagnostics in zip(rules, json.loads(done.stdout), strict=True)
    }
    assert errors == {rule: [] for rule in rules}
