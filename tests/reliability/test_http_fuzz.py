"""Fuzzing the HTTP triggers: thousands of hostile requests, zero 5xx, zero writes.

Requests go through function_app's decorated functions with azure.functions HttpRequest
objects, as the Functions host delivers them, against a sandbox with managed apps whose
real ids the fuzzer mixes into its bodies. Bodies are structure-aware (tests/json_bodies.py):
JSON text with duplicate keys, nesting thousands deep, integer literals of thousands of
digits, NaN, odd Unicode, other encodings, and every JSON type at every field; headers
come as curl sends them (form-urlencoded `-d` bodies) or with junk caller identities, and a second
run sends hostile Authorization headers (junk, other schemes, forged JWTs with odd algorithms,
key ids and claim types) that must get a 401 whatever the body, valid orders to rotate too.

The oracle (tests/json_bodies.py) is written independently of the product's parser.
Valid requests that ask for a change are a legitimate order, not a malformed request,
so the fuzzer leaves them out (and runs only a tenth of the other valid ones, which cost a
real run each); everything else must never write. Every answer must be JSON below 500, and
an invalid body must get a 4xx with an error that names the problem.

`HTTP_FUZZ_EXAMPLES` sets the number of requests (2,000 by default; `make soak` 20,000).
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.json_bodies import bodies, oracle
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import MakeWorld, World, function_handlers, load_function_app

EXAMPLES = int(os.environ.get("HTTP_FUZZ_EXAMPLES", "2000"))

PARAMS = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        # curl -d sends this content type with the JSON text unchanged (README examples)
        "content-type": st.sampled_from(
            ["application/json", "application/x-www-form-urlencoded", "text/plain", "\u00ff"]
        ),
        "x-functions-key": st.text(max_size=60),
        "x-ms-client-principal-name": st.text(max_size=300),
        "x-forwarded-for": st.text(max_size=40),
    },
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


JSON_PART = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
#: A JOSE header or claims set an attacker might send: odd algs, kids and claim types.
HEADER_PART = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["none", "None", "HS256", "RS256", "ES256", "PS256", ""])
        | JSON_PART,
        "kid": st.text(max_size=40) | JSON_PART,
        "typ": st.just("JWT"),
        "jku": st.just("https://attacker.example/keys"),
        "crit": st.lists(st.text(max_size=5), max_size=2),
    },
)
FORGED = st.builds(
    lambda header, claims, sig: (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{sig}"
    ),
    HEADER_PART,
    st.dictionaries(
        st.sampled_from(["aud", "iss", "exp", "nbf", "roles", "oid", "tid", "azp", "scp"]),
        JSON_PART,
    ),
    st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=40),
)
#: Hostile Authorization headers: every one must get a 401 (never a 5xx, never a run).
AUTHORIZATION = st.one_of(
    st.text(max_size=120),
    st.builds("Bearer {}".format, st.text(max_size=120)),
    st.builds("Bearer {}".format, FORGED),
    st.builds("bearer  {}".format, FORGED),
    st.builds("Basic {}".format, st.text(max_size=40)),
    st.sampled_from(
        ["Bearer", "Bearer ", "Bearer a.b", "Bearer ..", "Bearer a.b.c.d", "Bearer " + "e" * 20000]
    ),
)


@dataclass
class Target:
    """function_app over a sandbox with two managed apps, and what the fuzzer saw."""

    world: World
    handlers: dict[str, Callable[..., Awaitable[Any]]]
    real: list[str]
    writes_before: int
    bodies: st.SearchStrategy[bytes]
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def writes(self) -> int:
        """Graph and Key Vault write requests since the fuzzing began."""
        return self.world.writes() - self.writes_before

    async def post(
        self,
        body: bytes,
        params: dict[str, str],
        evidence: LeakScan,
        headers: dict[str, str] | None = None,
        authorization: str | None = None,
    ) -> None:
        """`authorization`: a hostile Authorization header (401 whatever the body), or None
        for the operator's valid token (then the body decides)."""
        valid, _ = oracle(body)
        auth = self.world.auth if authorization is None else {"Authorization": authorization}
        request = func.HttpRequest(
            "POST", "/api/rotations", body=body, params=params, headers={**(headers or {}), **auth}
        )
        response = await self.handlers["rotations"](request)
        text = response.get_body().decode()
        evidence.add("HTTP answer", text)
        self.statuses[response.status_code] += 1
        assert response.status_code < 500, text
        assert response.mimetype == "application/json"
        json.loads(text)
        assert self.writes == 0, f"a malformed request wrote: {body[:200]!r}"
        if authorization is not None:
            error = json.loads(text)["error"]
            assert response.status_code == 401, (authorization[:200], text)
            assert error["code"].startswith("token_")
            assert response.headers.get("WWW-Authenticate", "").startswith("Bearer ")
            self.codes[error["code"]] += 1
            return
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
    target = Target(world, function_handlers(module), real, world.writes(), bodies(real))
    yield target
    await module.api.close()
    total = sum(target.statuses.values())
    if total >= 100:
        ledger.record(
            "HTTP trigger fuzzing (hypothesis, structure-aware, through function_app)",
            f"{total} POST /api/rotations requests: JSON text with duplicate keys (also "
            "\\u-escaped), nesting up to 30,000 deep, integer literals of 4,000-6,000 digits, "
            "NaN/Infinity, lone surrogates and odd Unicode, BOM/UTF-16/Latin-1, every JSON type "
            "at every field, real app ids mixed with junk; curl's form-urlencoded content "
            "type, junk caller headers and query parameters, with an operator's valid token; "
            "or (a run of its own) hostile Authorization headers with any body: junk, other "
            "schemes, forged JWTs (alg none/HS256, odd kids and claim types)",
            f"0 answers >= 500 (all JSON); {target.writes} Graph/Key Vault writes; statuses "
            f"{dict(sorted(target.statuses.items()))}; error codes {dict(target.codes.most_common())}",
            ok=target.writes == 0,
        )


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
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
    headers = data.draw(HEADERS, label="headers")
    await target.post(body, params, evidence, headers)


@pytest.mark.slow
@settings(
    max_examples=max(EXAMPLES // 4, 50),
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_hostile_authorization_headers_get_401_and_never_rotate(
    target: Target, evidence: LeakScan, data: st.DataObject
) -> None:
    """Any body, valid orders to rotate included: without a valid token nothing runs."""
    body = data.draw(target.bodies, label="body")
    authorization = data.draw(AUTHORIZATION, label="authorization")
    await target.post(body, {}, evidence, data.draw(HEADERS, label="headers"), authorization)


EDGES = {
    "arrays 1,000 deep (2 kB)": b"[" * 1000 + b"]" * 1000,
    "appIds nested 1,000 deep": b'{"appIds": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "a 5,000-digit integer": b'{"dryRun": ' + b"9" * 5000 + b"}",
    "duplicate mode, force last": b'{"mode": "due", "mode": "force", "appIds": ["<real>"]}',
    "duplicate mode, escaped": b'{"mode": "due", "\\u006dode": "force", "appIds": ["<real>"]}',
    "NaN as dryRun": b'{"appIds": ["<real>"], "mode": "force", "dryRun": NaN}',
    "emergency without appIds": b'{"mode": "emergency"}',
    "emergency with empty appIds": b'{"mode": "emergency", "appIds": []}',
    "lone surrogate id": b'{"appIds": ["\\ud800"], "mode": "force"}',
    "invalid UTF-8": b'{"appIds": ["\xff\xfe"], "mode": "force"}',
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
                "GET", f"/api/{route}", body=junk, params={"x": "1"}, headers=target.world.auth
            )
            response = await target.handlers[route](request)
            evidence.add("HTTP answer", response.get_body().decode())
            assert response.status_code == 200
    assert target.writes == 0
