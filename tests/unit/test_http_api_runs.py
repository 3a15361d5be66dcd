"""The HTTP API's run bookkeeping over a fake service: overlapping whole runs (timer and
HTTP, in any order) keep new whole runs out until the last of them ends; every manual run
logs who asked, never the key."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.caller import key_fingerprint
from rotation.http_api import Api
from rotation.model import RunOptions, RunReport
from rotation.service import RotationService
from tests.unit.test_engine_isolation import NOW, SETTINGS

APP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
KEY = "pretend-function-key-value-0123456789abcdef"


class FakeService:
    """Each run waits until the test releases it."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.arrived = asyncio.Event()

    async def run(self, options: RunOptions | None = None, **kwargs: Any) -> RunReport:
        gate = asyncio.Event()
        self.gates.append(gate)
        self.arrived.set()
        await gate.wait()
        options = options or RunOptions()
        return RunReport("r", options.mode, options.dry_run, NOW)

    def busy(self, app_ids: list[str]) -> list[str]:
        return []

    async def aclose(self) -> None:
        return None


def make_api() -> tuple[Api, FakeService]:
    fake = FakeService()
    return Api(SETTINGS, lambda s: cast(RotationService, fake)), fake


async def started(fake: FakeService, task: asyncio.Future[Any]) -> bool:
    """True once `task`'s run reached the service; False if it was answered without one."""
    arrived = asyncio.ensure_future(fake.arrived.wait())
    await asyncio.wait({task, arrived}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    arrived.cancel()
    fake.arrived.clear()
    return not task.done()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["timer", "http"]), st.integers(0, 5)), max_size=12))
def test_whole_run_guard_holds_for_any_overlap(steps: list[tuple[str, int]]) -> None:
    """Steps start a whole run (timer or HTTP) or, with index n, finish the n-th running one;
    after each, a new whole HTTP run is refused exactly while some whole run is going."""

    async def scenario() -> None:
        api, fake = make_api()
        running: list[tuple[asyncio.Event, asyncio.Task[Any]]] = []
        for kind, n in steps:
            if n % 2 and running:  # finish one
                gate, task = running.pop(n % len(running))
                gate.set()
                await task
            else:
                coro = api.timer() if kind == "timer" else api.rotations(b"")
                task = asyncio.ensure_future(coro)
                if await started(fake, task):
                    running.append((fake.gates[-1], task))
                else:  # an HTTP whole run while another goes: refused
                    assert kind == "http"
                    assert running
                    assert task.result()[0] == 409
            probe = await asyncio.wait_for(_probe(api, fake), 5)
            assert probe == (409 if running else 200), (steps, len(running))
        for gate, task in running:
            gate.set()
            await task

    asyncio.run(scenario())


async def _probe(api: Api, fake: FakeService) -> int:
    """A whole HTTP run: refused (409) or started; a started one is released at once."""
    task = asyncio.ensure_future(api.rotations(b"{}"))
    if await started(fake, task):
        fake.gates[-1].set()
        fake.gates.pop()
    status, _ = await task
    return status


def test_first_finishing_run_does_not_clear_the_guard_of_another() -> None:
    async def scenario() -> None:
        api, fake = make_api()
        http = asyncio.ensure_future(api.rotations(b""))
        assert await started(fake, http)
        timer = asyncio.ensure_future(api.timer())
        assert await started(fake, timer)
        fake.gates[1].set()  # the timer ends first
        await timer
        assert (await api.rotations(b""))[0] == 409  # the HTTP run still goes on
        fake.gates[0].set()
        assert (await http)[0] == 200

    asyncio.run(scenario())


def test_emergency_without_app_ids_is_refused_and_runs_nothing() -> None:
    async def scenario() -> None:
        api, fake = make_api()
        for body in (b'{"mode": "emergency"}', b'{"mode": "emergency", "appIds": []}'):
            status, answer = await api.rotations(body)
            assert status == 400
            assert answer["error"]["code"] == "emergency_needs_app_ids"
            assert "appIds" in answer["error"]["message"]
        assert fake.gates == []
        force = asyncio.ensure_future(api.rotations(b'{"mode": "force"}'))
        assert await started(fake, force)  # force without appIds stays allowed (it keeps the grace)
        fake.gates[0].set()
        assert (await force)[0] == 200

    asyncio.run(scenario())


def test_every_manual_run_logs_who_asked_and_never_the_key() -> None:
    headers = {
        "X-MS-CLIENT-PRINCIPAL-NAME": "ops@contoso.example",
        "X-MS-CLIENT-PRINCIPAL-ID": "9f1c0e1e-0000-4000-8000-000000000001",
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
        "x-functions-key": KEY,
        "X-Forwarded-For": "203.0.113.7:51234, 10.0.0.1",
    }

    async def scenario() -> list[dict[str, Any]]:
        api, fake = make_api()
        with structlog.testing.capture_logs() as logged:
            task = asyncio.ensure_future(
                api.rotations(f'{{"appIds": ["{APP}"]}}'.encode(), headers, {})
            )
            assert await started(fake, task)
            fake.gates[0].set()
            await task
            await api.rotations(b'{"mode": "emergency"}', {}, {"code": KEY})
        return logged

    logged = asyncio.run(scenario())
    requested, refused = (
        next(e for e in logged if e["event"] == name)
        for name in ("http.rotation_requested", "http.rotation_refused")
    )
    assert requested["principal_name"] == "ops@contoso.example"
    assert requested["identity_provider"] == "aad"
    assert requested["client_ip"] == "203.0.113.7:51234"
    fingerprint = key_fingerprint(KEY)
    assert requested["function_key"] == f"sha256:{fingerprint} (via header x-functions-key)"
    assert refused["function_key"] == f"sha256:{fingerprint} (via query parameter code)"
    assert refused["code"] == "emergency_needs_app_ids"
    assert KEY not in repr(logged)
