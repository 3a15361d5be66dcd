"""Issue 10 end to end, on the sandbox with the real SDKs: one app's bug stays that app's
failure, retirement attempts every removal, overlapping whole runs leave held apps to their
holder, an emergency never waits behind a whole run over other apps, status and plan agree
on "due", an emergency needs named apps, and manual runs name their caller."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from pydantic import SecretStr

from rotation.model import Action, Mode, Outcome, RunOptions
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import (
    MakeWorld,
    fast_verifier,
    function_handlers,
    load_function_app,
    open_service,
    set_propagation_delay,
    wait_until,
)

REMOVE = "graph POST /applications/{id}/removePassword"


class BuggyVerifier:
    """Our Verifier port, raising a KeyError (a changed response shape, say) for one user."""

    def __init__(self, real: Any, username: str) -> None:
        self.real = real
        self.username = username

    async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
        if username == self.username:
            raise KeyError("passwordCredentials")
        return int(await self.real.verify(username, password, timeout))


async def test_one_apps_bug_is_that_apps_failure_only(
    make_world: MakeWorld, ledger: Ledger
) -> None:
    world = make_world(3)
    buggy = world.senders[1]
    verifier = BuggyVerifier(fast_verifier(world.settings), buggy.username)
    async with open_service(world.sandbox, world.settings, verifier) as service:
        report = await service.run()
        assert service.busy([s.app_id for s in world.senders]) == []
    by_app = {o.app_id: o for o in report.outcomes}
    failed = by_app[buggy.app_id]
    assert failed.outcome is Outcome.FAILED
    assert failed.error == "internal error: KeyError"
    assert world.key_ids(buggy) == {buggy.password.key_id}, "the unproven secret was rolled back"
    assert world.live(buggy) is None, "nothing reached Key Vault"
    others = [s for s in world.senders if s is not buggy]
    assert all(by_app[s.app_id].outcome is Outcome.ROTATED for s in others)
    assert all(world.password_works(s) for s in others)
    again = await world.service.run()
    assert again.ok
    assert world.password_works(buggy)
    ledger.record(
        "one app's bug (KeyError inside its verify step), 3 apps",
        "the engine's Verifier port raises KeyError for one app; then a normal run "
        "(tests/unit/test_engine_isolation.py: hypothesis, 400 runs over in-memory fakes, any "
        "of 12 exception types at any call of the three ports, before or after its effect)",
        "a report came back; that app FAILED with 'internal error: KeyError' (no text), its "
        "new secret rolled back, Key Vault untouched; the other 2 rotated; no busy mark left; "
        "the next run rotated it",
    )


async def test_retirement_attempts_every_removal_and_reports_each_failure(
    make_world: MakeWorld, ledger: Ledger
) -> None:
    world = make_world(1, grace_hours=0)
    sender = world.senders[0]
    assert (await world.service.run()).ok
    for _ in range(2):
        world.state.add_password(sender.app, display_name="made by a person")
    # Graph's 403 (not retried): the first removal of the run fails, the others must still go.
    world.state.faults.inject(REMOVE, status=403, times=1)
    report = await world.service.run(RunOptions(mode=Mode.FORCE))
    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.FAILED
    assert len(outcome.cleanup_failures) == 1
    assert len(outcome.removed_key_ids) == 2, "every removal after the failed one was attempted"
    assert "1 of 3 old credential(s) could not be removed" in (outcome.error or "")
    assert world.password_works(sender)
    world.state.faults.clear()
    assert (await world.service.run()).ok
    assert world.key_ids(sender) == {world.live_key_id(sender)}
    ledger.record(
        "retirement with a failing removal (Graph 403 on the first of 3)",
        "forced rotation, grace 0, three old secrets to remove; then a due run",
        "the 2 removals after the failure were still made; the failure is in the report "
        "(cleanupFailures and the error); the Key Vault password worked; the next run "
        "removed the last one",
    )


class HeldVerifier:
    """Our Verifier port around the real one: the named usernames wait until released."""

    def __init__(self, real: Any, usernames: set[str]) -> None:
        self.real = real
        self.usernames = usernames
        self.waiting: set[str] = set()
        self.release = asyncio.Event()

    async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
        if username in self.usernames:
            self.waiting.add(username)
            await self.release.wait()
        return int(await self.real.verify(username, password, timeout))


async def test_an_emergency_never_waits_behind_a_whole_run_over_other_apps(
    make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    world = make_world(3)
    first, second, urgent = world.senders
    assert (await world.service.run()).ok
    for sender in (first, second):  # due: the timer run takes them, and holds them
        for password in sender.app.passwords:
            password.end = world.state.clock.now() + timedelta(days=10)
    before = world.key_ids(urgent)
    held = HeldVerifier(fast_verifier(world.settings), {first.username, second.username})
    module = load_function_app(monkeypatch, world, held)
    handlers = function_handlers(module)
    try:
        timer = asyncio.ensure_future(handlers["rotation_timer"](TimerRequest(past_due=False)))
        await wait_until(lambda: len(held.waiting) == 2, "the timer run verifying two apps")
        body = json.dumps({"appIds": [urgent.app_id], "mode": "emergency"}).encode()
        status, report = await post(handlers, body, world.auth)
        assert status == 200, report
        assert report["apps"][0]["outcome"] == "rotated"
        assert world.key_ids(urgent).isdisjoint(before), "emergency: the old secret went at once"
        assert world.password_works(urgent)
        assert not timer.done(), "the emergency did not wait for the whole run"
        both = json.dumps({"appIds": [first.app_id, urgent.app_id], "mode": "force"}).encode()
        status, answer = await post(handlers, both, world.auth)
        held.release.set()
        await timer
    finally:
        await module.api.close()
    error = answer["error"]
    (timer_run,) = {a["heldBy"] for a in error["report"]["apps"] if a["outcome"] == "busy"}
    assert status == 409
    assert error["appIds"] == [first.app_id]
    assert f"run {timer_run}: {first.app_id}" in error["message"]
    assert {a["appId"]: a["outcome"] for a in error["report"]["apps"]}[urgent.app_id] == "rotated"
    assert all(world.password_works(s) for s in world.senders)
    ledger.record(
        "an emergency while a whole run works on other apps (one instance)",
        "a timer run holding 2 due apps in verification; POST emergency for a third; then "
        "POST force for one held app and the third",
        "the emergency answered 200 and rotated its app (old secret gone) while the timer "
        "run went on; the second request got 409 naming only the held app and the timer "
        "run's id, with the third rotated in its report",
    )


async def test_overlapping_whole_runs_leave_held_apps_to_their_holder(
    make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    world = make_world(2)
    module = load_function_app(monkeypatch, world)
    handlers = function_handlers(module)
    try:
        await handlers["status"](
            func.HttpRequest("GET", "/api/status", body=b"", headers=world.auth)
        )
        set_propagation_delay(world.sandbox, 3600)  # new secrets wait: the HTTP run holds
        first = asyncio.ensure_future(post(handlers, b"", world.auth))
        await wait_until(lambda: world.count("smtp AUTH") >= 2, "both apps verifying")
        timer = await module.api.timer()  # finds both apps busy and ends first
        assert [a["outcome"] for a in timer["apps"]] == ["busy", "busy"]  # leases held
        status, answer = await post(handlers, b"", world.auth)
        assert status == 409, answer  # still held by the first run, whatever ended meanwhile
        assert len(answer["error"]["appIds"]) == 2
        set_propagation_delay(world.sandbox, 0)
        status, report = await first
        assert status == 200
        assert report["counts"] == {"rotated": 2}
        status, _ = await post(handlers, b"", world.auth)
        assert status == 200
    finally:
        await module.api.close()
    ledger.record(
        "overlapping whole runs (HTTP run, timer run inside it)",
        "a whole HTTP run held in verification; a timer run starts and finishes inside it; "
        "then another whole HTTP run (tests/unit/test_http_api_runs.py: 200 random "
        "interleavings of timer and HTTP runs)",
        "the timer run reported both apps busy; another whole HTTP run got 409 naming both "
        "while the first still held them; 200 once it ended",
    )


async def test_status_and_plan_agree_when_the_current_version_is_disabled(
    make_world: MakeWorld, ledger: Ledger
) -> None:
    world = make_world(1)
    sender = world.senders[0]
    assert (await world.service.run()).ok
    newest = world.state.vault[world.secret_name(sender).lower()][-1]
    newest.enabled = False
    (row,) = await world.service.status()
    plan = await world.service.run(RunOptions(dry_run=True))
    assert row.state == "due"
    assert plan.outcomes[0].action is Action.ROTATE
    assert "disabled" in plan.outcomes[0].reason
    ledger.record(
        "one source of 'due': current Key Vault version disabled",
        "status and a dry run on the same state (tests/unit/test_due.py: status's state and "
        "plan's action compared on 500 random observed states)",
        "status says due, plan says rotate ('the current Key Vault version ... is disabled'); "
        "status said ok before",
    )


async def test_emergency_needs_named_apps_and_manual_runs_name_their_caller(
    make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch, evidence: LeakScan, ledger: Ledger
) -> None:
    world = make_world(2)
    module = load_function_app(monkeypatch, world)
    handlers = function_handlers(module)
    token = world.auth["Authorization"].removeprefix("Bearer ")
    evidence.add_secret(token)  # a bearer token is a credential: never in a log or an answer
    user = next(iter(world.sandbox.state.users.values()))
    headers = {**world.auth, "X-MS-CLIENT-PRINCIPAL-NAME": "admin@contoso.example"}
    try:
        assert (await world.service.run()).ok
        writes = world.writes()
        for body in (b'{"mode": "emergency"}', b'{"mode": "emergency", "appIds": []}'):
            status, answer = await post(handlers, body, headers)
            assert status == 400
            assert answer["error"]["code"] == "emergency_needs_app_ids"
        refused_writes = world.writes() - writes
        assert refused_writes == 0
        one = world.senders[0]
        body = json.dumps({"appIds": [one.app_id], "mode": "emergency"}).encode()
        status, report = await post(handlers, body, headers)
        assert status == 200
        assert report["apps"][0]["outcome"] == "rotated"
        assert report["requestedBy"]["role"] == "Rotation.Emergency"
    finally:
        await module.api.close()
    assert evidence.capture is not None
    lines = [json.loads(x) for x in evidence.capture.getvalue().splitlines() if x]
    asked = [x for x in lines if x["event"] in ("http.rotation_requested", "http.refused")]
    assert len(asked) == 3
    # the token's ids, never the spoofable Easy Auth header (Easy Auth is not in front)
    assert all(x["caller_object_id"] == user.object_id for x in asked)
    assert all(x["caller_name"] == user.user_principal_name for x in asked)
    assert "admin@contoso.example" not in json.dumps(lines)
    ledger.record(
        "emergency without appIds; who asked",
        "POST {mode: emergency} with no or empty appIds, then with one app id, with an "
        "operator's Entra token (and a spoofed Easy Auth principal header)",
        f"400 emergency_needs_app_ids and {refused_writes} writes for the refused ones; the named "
        "app rotated; all 3 requests logged with the token's object id and sign-in name (never "
        "the spoofed header's name), never the token",
    )


async def post(
    handlers: dict[str, Any], body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    request = func.HttpRequest("POST", "/api/rotations", body=body, headers=headers or {})
    response = await handlers["rotations"](request)
    return response.status_code, json.loads(response.get_body())
