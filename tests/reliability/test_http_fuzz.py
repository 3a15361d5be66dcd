"""Fuzzing the HTTP triggers: thousands of malformed requests, zero 5xx, zero rotations.

Requests go through function_app's decorated functions with azure.functions HttpRequest
objects, as the Functions host delivers them, against a sandbox with managed apps whose
real ids the fuzzer mixes into its bodies. Bodies are random bytes, random JSON, and
near-valid objects (the three known fields with wrong types, wrong cases, unknown
modes, non-GUID ids, real ids next to junk, unknown extra fields, ...).

The oracle is written here, independently of the product's parser: a body is a valid
request only if it is a JSON object with no keys but appIds (a list of GUID strings),
mode ("due", "force" or "emergency") and dryRun (a JSON boolean). Valid requests that ask
for a rotation are a legitimate order, not a malformed request, so the fuzzer leaves them
out (and runs only a tenth of the other valid ones, which cost a real run each);
everything else must never rotate. Every answer must be below 500, and an invalid
body must get a 4xx with an error that names the problem.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import MakeWorld, World, function_handlers, load_function_app

EXAMPLES = 2000
ADD = "graph POST /applications/{id}/addPassword"
FIELDS = ("appIds", "mode", "dryRun")
MODES = ("due", "force", "emergency")
MAX_BODY = 64 * 1024  # the API's body limit (413 beyond it)

PARAMS = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


def app_ids(real: list[str]) -> st.SearchStrategy[Any]:
    one = st.one_of(
        st.sampled_from(real),
        st.sampled_from(real).map(str.upper),
        st.sampled_from(real).map(lambda a: "{" + a + "}"),
        st.uuids().map(str),
        st.text(max_size=40),
        st.integers(),
        st.none(),
    )
    return st.one_of(st.lists(one, max_size=5), json_values)


def near_valid(real: list[str]) -> st.SearchStrategy[bytes]:
    values = {
        "appIds": app_ids(real),
        "mode": st.one_of(st.sampled_from(MODES), st.sampled_from(MODES).map(str.upper), json_values),
        "dryRun": st.one_of(st.booleans(), st.sampled_from(["true", "false", 0, 1, None]), json_values),
    }  # fmt: skip
    known = st.fixed_dictionaries({}, optional=values)
    extra = st.dictionaries(st.text(max_size=12), json_values, max_size=2)
    return st.tuples(known, extra).map(lambda d: json.dumps({**d[1], **d[0]}).encode())


def bodies(real: list[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
        near_valid(real),
        near_valid(real).map(lambda b: b[: len(b) // 2]),  # cut short
    )


def is_guid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def oracle(body: bytes) -> tuple[bool, bool]:
    """(valid, asks for a rotation), decided without the product's code."""
    if len(body) > MAX_BODY:
        return False, False
    if not body.strip():
        return True, False  # an empty body means every *due* app
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return False, False
    if not isinstance(data, dict) or set(data) - set(FIELDS):
        return False, False
    ids = data.get("appIds", [])
    mode = data.get("mode", "due")
    dry = data.get("dryRun", False)
    valid = (
        isinstance(ids, list)
        and len(ids) <= 1000
        and all(is_guid(i) and len(i) <= 64 for i in ids)
        and mode in MODES
        and isinstance(dry, bool)
    )
    return valid, valid and not dry and mode != "due"


@dataclass
class Target:
    """function_app over a sandbox with two managed apps, and what the fuzzer saw."""

    world: World
    handlers: dict[str, Callable[..., Awaitable[Any]]]
    real: list[str]
    rotations_before: int
    bodies: st.SearchStrategy[bytes]
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def rotations(self) -> int:
        return self.world.count(ADD) - self.rotations_before

    async def post(self, body: bytes, params: dict[str, str], evidence: LeakScan) -> None:
        valid, _ = oracle(body)
        request = func.HttpRequest("POST", "/api/rotations", body=body, params=params, headers={})
        response = await self.handlers["rotations"](request)
        text = response.get_body().decode()
        evidence.add("HTTP answer", text)
        self.statuses[response.status_code] += 1
        assert response.status_code < 500, text
        assert self.rotations == 0, f"a malformed request rotated: {body!r}"
        if not valid:
            assert 400 <= response.status_code < 500, (body, text)
            error = json.loads(text)["error"]
            assert error["code"]
            assert error["message"]
            self.codes[error["code"]] += 1


@pytest.fixture
async def target(
    make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch, evidence: LeakScan, ledger: Ledger
) -> AsyncIterator[Target]:
    world = make_world(2)
    await world.service.run()  # the apps have passwords, none is due
    module = load_function_app(monkeypatch, world)
    real = [s.app_id for s in world.senders]
    target = Target(world, function_handlers(module), real, world.count(ADD), bodies(real))
    yield target
    await module.api.close()
    total = sum(target.statuses.values())
    if total >= 100:
        ledger.record(
            "HTTP trigger fuzzing (hypothesis, through function_app's decorated functions)",
            f"{total} POST /api/rotations requests: random bytes, random JSON, near-valid "
            "objects mixing the managed apps' real ids with junk, random query parameters",
            f"0 answers >= 500; {target.rotations} rotations (addPassword requests); statuses "
            f"{dict(sorted(target.statuses.items()))}; error codes {dict(target.codes.most_common())}",
            ok=target.rotations == 0,
        )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_malformed_requests_never_5xx_and_never_rotate(
    target: Target, evidence: LeakScan, data: st.DataObject
) -> None:
    body = data.draw(target.bodies, label="body")
    valid, rotates = oracle(body)
    assume(not rotates)  # a valid order to rotate is not a malformed request
    # Valid requests (dry runs, due runs, unknown ids) run the service: keep a few.
    assume(not valid or data.draw(st.integers(0, 9), label="keep valid") == 0)
    params = data.draw(PARAMS, label="query")
    await target.post(body, params, evidence)


EDGES = {
    "too large": json.dumps({"appIds": [], "pad": " " * 70_000}).encode(),
    "too large but valid inside": b" " * 70_000 + b"{}",
    "1001 ids": json.dumps({"appIds": ["x"] * 1001}).encode(),
    "dryRun as a string": b'{"appIds": ["<real>"], "mode": "force", "dryRun": "false"}',
    "unknown field": b'{"appIds": ["<real>"], "mode": "force", "extra": 1}',
    "real id next to junk": b'{"appIds": ["<real>", "nope"], "mode": "emergency"}',
    "mode in capitals": b'{"appIds": ["<real>"], "mode": "FORCE"}',
    "ids not a list": b'{"appIds": "<real>", "mode": "force"}',
}


async def test_malformed_edge_bodies_are_refused_and_get_routes_ignore_junk(
    target: Target, evidence: LeakScan
) -> None:
    for name, body in EDGES.items():
        body = body.replace(b"<real>", target.real[0].encode())
        assert not oracle(body)[0], name
        await target.post(body, {}, evidence)
    assert all(400 <= status < 500 for status in target.statuses)
    for route in ("status", "health"):
        for junk in (b"", b"{", b"\xff" * 10, json.dumps({"mode": "force"}).encode()):
            request = func.HttpRequest(
                "GET", f"/api/{route}", body=junk, params={"x": "1"}, headers={}
            )
            response = await target.handlers[route](request)
            evidence.add("HTTP answer", response.get_body().decode())
            assert response.status_code == 200
    assert target.rotations == 0
