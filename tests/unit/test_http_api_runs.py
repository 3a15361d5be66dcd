"""The HTTP API's run bookkeeping over a fake service: no run keeps another out as a whole
(timer and HTTP runs in any order); a 409 names the held apps and the runs holding them;
every manual run logs who asked (the token's ids and role), never the token."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.http_api import Api
from rotation.model import Action, AppOutcome, Outcome, RunOptions, RunReport
from rotation.service import RotationService
from tests.infra.log_lines import json_lines
from tests.tokens import OPERATOR, bearer, token_check
from tests.unit.test_engine_isolation import NOW
from tests.unit.test_engine_isolation import SETTINGS as ENGINE_SETTINGS

APP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
SETTINGS = ENGINE_SETTINGS.model_copy(
    update={"api_client_id": "7d3e8f10-5b2a-4c6d-9e8f-0a1b2c3d4e5f"}
)
AUTH = bearer(SETTINGS)


class FakeService:
    """Each run waits until the test releases it."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.arrived = asyncio.Event()
        self.outcomes: list[AppOutcome] = []  # what each run reports

    async def run(self, options: RunOptions | None = None, **kwargs: Any) -> RunReport:
        gate = asyncio.Event()
        self.gates.append(gate)
        self.arrived.set()
        await gate.wait()
        options = options or RunOptions()
        return RunReport("r", options.mode, options.dry_run, NOW, outcomes=list(self.outcomes))

    def busy(self, app_ids: list[str]) -> list[str]:
        return []

    async def aclose(self) -> None:
        return None


def make_api() -> tuple[Api, FakeService]:
    fake = FakeService()
    return Api(SETTINGS, lambda s: cast(RotationService, fake), tokens=token_check(SETTINGS)), fake


async def started(fake: FakeService, task: asyncio.Future[Any]) -> bool:
    """True once `task`'s run reached the service; False if it was answered without one."""
    arrived = asyncio.ensure_future(fake.arrived.wait())
    await asyncio.wait({task, arrived}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    arrived.cancel()
    fake.arrived.clear()
    return not task.done()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["timer", "http"]), st.integers(0, 5)), max_size=12))
def test_no_run_refuses_another_as_a_whole(steps: list[tuple[str, int]]) -> None:
    """Steps start a run (timer or HTTP) or, with index n, finish the n-th running one;
    whatever runs are going, every new request reaches the service: each app's lease and
    busy mark decide who works on it, never the API."""

    async def scenario() -> None:
        api, fake = make_api()
        running: list[tuple[asyncio.Event, asyncio.Task[Any]]] = []
        for kind, n in steps:
            if n % 2 and running:  # finish one
                gate, task = running.pop(n % len(running))
                gate.set()
                await task
            else:
                coro = api.timer() if kind == "timer" else api.rotations(b"", AUTH)
                task = asyncio.ensure_future(coro)
                assert await started(fake, task), (steps, len(running))
                running.append((fake.gates[-1], task))
            emergency = f'{{"appIds": ["{APP}"], "mode": "emergency"}}'.encode()
            for body in (b"{}", emergency):
                assert await asyncio.wait_for(_probe(api, fake, body), 5) == 200, steps
        for gate, task in running:
            gate.set()
            await task

    asyncio.run(scenario())


async def _probe(api: Api, fake: FakeService, body: bytes) -> int:
    """A run asked for over HTTP: started (and released at once), or answered without one."""
    task = asyncio.ensure_future(api.rotations(body, AUTH))
    if await started(fake, task):
        fake.gates[-1].set()
        fake.gates.pop()
    status, _ = await task
    return status


def test_a_409_names_exactly_the_held_apps_and_the_runs_holding_them() -> None:
    held = ["0b5f0a55-3f0c-4a8e-bd0e-9d0f2a1f7d12", "8d2f6f4e-54b5-4a4e-9a51-0a1f36a8a0c1"]
    unnamed = "c2a3a1e2-8f51-4d8b-9c55-3c1d5b0f3e77"

    async def scenario() -> tuple[int, dict[str, Any]]:
        api, fake = make_api()
        fake.outcomes = [
            AppOutcome(APP, "s", Action.ROTATE, "forced", Outcome.ROTATED),
            *(
                AppOutcome(a, "s", Action.ROTATE, "forced", Outcome.BUSY, held_by="5c0ffee5a1b2")
                for a in held
            ),
            AppOutcome(unnamed, "s", Action.ROTATE, "forced", Outcome.BUSY),
        ]
        task = asyncio.ensure_future(api.rotations(b'{"mode": "force"}', AUTH))
        assert await started(fake, task)
        fake.gates[0].set()
        return await task

    status, answer = asyncio.run(scenario())
    error = answer["error"]
    assert status == 409
    assert error["appIds"] == [*held, unnamed]
    assert f"run 5c0ffee5a1b2: {held[0]}, {held[1]}" in error["message"]
    assert f"unnamed: {unnamed}" in error["message"]
    assert APP not in error["message"]
    assert [a["heldBy"] for a in error["report"]["apps"]] == [None, *["5c0ffee5a1b2"] * 2, None]


def test_emergency_without_app_ids_is_refused_and_runs_nothing() -> None:
    async def scenario() -> None:
        api, fake = make_api()
        for body in (b'{"mode": "emergency"}', b'{"mode": "emergency", "appIds": []}'):
            status, answer = await api.rotations(body, AUTH)
            assert status == 400
            assert answer["error"]["code"] == "emergency_needs_app_ids"
            assert "appIds" in answer["error"]["message"]
        assert fake.gates == []
        force = asyncio.ensure_future(api.rotations(b'{"mode": "force"}', AUTH))
        assert await started(fake, force)  # force without appIds stays allowed (it keeps the grace)
        fake.gates[0].set()
        assert (await force)[0] == 200

    asyncio.run(scenario())


def test_every_manual_run_logs_who_asked_and_never_the_token() -> None:
    headers = {**AUTH, "X-Forwarded-For": "198.51.100.9, 203.0.113.7:51234"}
    token = AUTH["Authorization"].removeprefix("Bearer ")

    async def scenario() -> list[dict[str, Any]]:
        api, fake = make_api()
        with json_lines() as logged:
            task = asyncio.ensure_future(
                api.rotations(f'{{"appIds": ["{APP}"]}}'.encode(), headers)
            )
            assert await started(fake, task)
            fake.gates[0].set()
            await task
            await api.rotations(b'{"mode": "emergency"}', headers)
            await api.rotations(b"{}", {"X-Forwarded-For": "198.51.100.9, 203.0.113.7:51234"})
        return logged

    logged = asyncio.run(scenario())
    requested = next(e for e in logged if e["event"] == "http.rotation_requested")
    refused = [e for e in logged if e["event"] == "http.refused"]
    assert {k: v for k, v in requested.items() if k.startswith("caller_")} == {
        "caller_type": "user",
        "caller_object_id": OPERATOR,
        "caller_app_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "caller_name": "ops@contoso.example",
        "caller_role": "Rotation.Rotate",
    }
    bad_body, no_token = refused
    assert (bad_body["code"], bad_body["caller_object_id"]) == ("emergency_needs_app_ids", OPERATOR)
    assert (no_token["status"], no_token["code"]) == (401, "token_missing")
    assert "caller_object_id" not in no_token
    assert no_token["client_ip"] == "203.0.113.7:51234"  # the address Azure's front end added
    assert token not in repr(logged)
    assert token.split(".")[1] not in repr(logged)  # nor its claims
