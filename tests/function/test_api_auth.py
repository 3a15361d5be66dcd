"""Who may call the HTTP API, through function_app's triggers, against the sandbox's Entra.

Every row of the matrix (no token; malformed; alg none; HMAC with the public key; a key Entra
does not publish; another tenant; another audience; a v1.0 token; expired; not yet valid; no
role; the wrong role for the mode; each role on its own routes) gets its status, its error
code, its WWW-Authenticate challenge, and changes nothing. Tokens come from the sandbox's
Entra (sandbox/api_app.py) or are forged with its keys; the product checks them against the
keys the sandbox publishes at its OpenID Connect metadata, exactly as against Entra's.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import aiohttp
import azure.functions as func
import pytest

from rotation.auth import LEEWAY_SECONDS, TokenCheck
from rotation.azure.clients import Overrides
from rotation.azure.signing_keys import SigningKeys
from rotation.http_api import Api
from rotation.service import RotationService
from sandbox import api_app, tokens
from sandbox.api_app import TokenRefused
from sandbox.server import Sandbox
from tests.function.test_function_app import load, trigger, writes
from tests.infra.log_lines import json_lines, rotator_lines
from tests.integration.conftest import FAST

KEYS_ROUTE = "login GET /{tenant}/discovery/v2.0/keys"
READ, ROTATE, EMERGENCY = api_app.ROLES


@pytest.fixture
async def fa(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModuleType]:
    module = load(sandbox, monkeypatch)
    yield module
    await module.api.close()


async def call(
    module: ModuleType, route: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, Any], str | None]:
    """(status, JSON body, WWW-Authenticate) of one request through the trigger."""
    method = "POST" if route == "rotations" else "GET"
    data = json.dumps(body).encode() if body is not None else b""
    request = func.HttpRequest(method, f"/api/{route}", body=data, headers=headers)
    response: func.HttpResponse = await trigger(module, route)(request)
    assert response.mimetype == "application/json"
    return (
        response.status_code,
        json.loads(response.get_body()),
        response.headers.get("WWW-Authenticate"),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forged(sandbox: Sandbox, key: int | None = None, **changes: Any) -> str:
    """A token like the sandbox's Entra issues an operator holding every role, with
    `changes` to its claims (None removes one), signed with `key` (default: the current)."""
    claims = tokens.api_claims(
        issuer=api_app.issuer(sandbox.login_url, sandbox.tenant_id),
        audience=sandbox.api.client_id,
        tenant_id=sandbox.tenant_id,
        object_id="1b2c3d4e-0000-4000-8000-00000000000a",
        client_id=api_app.AZURE_CLI_APP_ID,
        roles=list(api_app.ROLES),
        issued=datetime.now(UTC),
        lifetime=timedelta(hours=1),
        user=("mallory@sandbox.example", "Mallory"),
        scope=api_app.SCOPE,
    )
    claims = {k: v for k, v in (claims | changes).items() if v is not None}
    return tokens.encode(claims, sandbox.state.signing_key if key is None else key)


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        (part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature))
    )


def hs256_with_public_key(sandbox: Sandbox) -> str:
    """The classic key-confusion forgery: HMAC keyed with the RSA public key's PEM."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    pem = (
        tokens.signing_key(0)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"typ": "JWT", "alg": "HS256", "kid": tokens.key_id(0)}
    claims = json.loads(base64.urlsafe_b64decode(forged(sandbox).split(".")[1] + "=="))
    head, body, _ = unsigned(header, claims).split(".")
    mac = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return unsigned(header, claims, mac)


def tampered(token: str, part: int = 2) -> str:
    """`token` with one character of a part changed (2: the signature, 1: the claims)."""
    parts = token.split(".")
    text = parts[part]
    middle = len(text) // 2
    parts[part] = text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]
    return ".".join(parts)


def no_alg(sandbox: Sandbox) -> str:
    claims = json.loads(base64.urlsafe_b64decode(forged(sandbox).split(".")[1] + "=="))
    return unsigned({"typ": "JWT", "alg": "none"}, claims)


# ----- 401: no valid token ---------------------------------------------------------------------

BAD_TOKENS = {
    "no token": (lambda sb: {}, "token_missing"),
    "empty header": (lambda sb: {"Authorization": ""}, "token_missing"),
    "not bearer": (lambda sb: {"Authorization": "Basic b3BzOnB3"}, "token_malformed"),
    "bearer without token": (lambda sb: {"Authorization": "Bearer"}, "token_malformed"),
    "not a JWT": (lambda sb: bearer("not.a.jwt"), "token_malformed"),
    "two parts": (lambda sb: bearer("abc.def"), "token_malformed"),
    "huge": (lambda sb: bearer("a" * 20_000), "token_malformed"),
    "alg none": (lambda sb: bearer(no_alg(sb)), "token_algorithm_refused"),
    "HS256 keyed with the public key": (
        lambda sb: bearer(hs256_with_public_key(sb)),
        "token_algorithm_refused",
    ),
    "no kid": (
        lambda sb: bearer(tokens.encode(json.loads("{}"), 0, kid=None)),
        "token_malformed",
    ),
    "signed with a key Entra does not publish": (
        lambda sb: bearer(forged(sb, key=7)),
        "token_unknown_key",
    ),
    "published kid, another key's signature": (
        lambda sb: bearer(tokens.encode(json.loads("{}") | {"x": 1}, 7, kid=tokens.key_id(0))),
        "token_signature_invalid",
    ),
    "signature altered": (lambda sb: bearer(tampered(forged(sb))), "token_signature_invalid"),
    "claims altered": (
        lambda sb: bearer(tampered(forged(sb, roles=[READ]), part=1)),
        "token_signature_invalid",
    ),
    "another tenant": (
        lambda sb: bearer(
            forged(
                sb,
                iss=api_app.issuer(sb.login_url, "8f0e5f1c-7a3b-4d2e-9c1b-2a3b4c5d6e7f"),
                tid="8f0e5f1c-7a3b-4d2e-9c1b-2a3b4c5d6e7f",
            )
        ),
        "token_wrong_issuer",
    ),
    "this issuer, another tid": (
        lambda sb: bearer(forged(sb, tid="8f0e5f1c-7a3b-4d2e-9c1b-2a3b4c5d6e7f")),
        "token_wrong_tenant",
    ),
    "another audience": (
        lambda sb: bearer(forged(sb, aud=tokens.GRAPH_APP_ID)),
        "token_wrong_audience",
    ),
    "the application ID URI as audience": (
        lambda sb: bearer(forged(sb, aud=sb.api.identifier_uri)),
        "token_wrong_audience",
    ),
    "a v1.0 token": (
        lambda sb: bearer(forged(sb, iss=f"https://sts.windows.net/{sb.tenant_id}/", ver="1.0")),
        "token_wrong_issuer",
    ),
    "expired": (
        lambda sb: bearer(forged(sb, exp=int(datetime.now(UTC).timestamp()) - LEEWAY_SECONDS - 5)),
        "token_expired",
    ),
    "not yet valid": (
        lambda sb: bearer(forged(sb, nbf=int(datetime.now(UTC).timestamp()) + LEEWAY_SECONDS + 60)),
        "token_not_yet_valid",
    ),
    "no exp": (lambda sb: bearer(forged(sb, exp=None)), "token_claims_missing"),
    "no oid": (lambda sb: bearer(forged(sb, oid=None)), "token_claims_missing"),
    "oid not a GUID": (lambda sb: bearer(forged(sb, oid="admin")), "token_invalid"),
    "roles not a list": (lambda sb: bearer(forged(sb, roles=ROTATE)), "token_invalid"),
    "idtyp app with a user's scp": (lambda sb: bearer(forged(sb, idtyp="app")), "token_invalid"),
}


@pytest.mark.parametrize("route", ["rotations", "status", "doctor"])
async def test_a_request_without_a_valid_token_gets_401_with_a_bearer_challenge_and_changes_nothing(
    sandbox: Sandbox, fa: ModuleType, route: str
) -> None:
    sandbox.add_sender()
    body = {"mode": "force"} if route == "rotations" else None
    got = {}
    for case, (make, _) in BAD_TOKENS.items():
        status, answer, challenge = await call(fa, route, make(sandbox), body)
        got[case] = (status, answer["error"]["code"], challenge)
    assert {case: row[:2] for case, row in got.items()} == {
        case: (401, code) for case, (_, code) in BAD_TOKENS.items()
    }
    for _, code, challenge in got.values():
        assert challenge is not None
        assert challenge.startswith("Bearer ")
        if code == "token_missing":
            assert "error=" not in challenge  # RFC 6750 3.1: no error code without credentials
        else:
            assert f'error_description="{code}"' in challenge
    assert writes(sandbox.state) == 0


async def test_function_keys_and_easy_auth_headers_authorize_nothing(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    """The routes are anonymous to the host and the app reads neither."""
    sandbox.add_sender()
    spoofed = {
        "x-functions-key": "a-real-looking-function-key",
        "X-MS-CLIENT-PRINCIPAL-NAME": "admin@contoso.example",
        "X-MS-CLIENT-PRINCIPAL-ID": "9f1c0e1e-0000-4000-8000-000000000001",
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(b'{"auth_typ":"aad","claims":[]}').decode(),
    }
    request = func.HttpRequest(
        "POST", "/api/rotations", body=b'{"mode": "force"}', headers=spoofed, params={"code": "k"}
    )
    response = await trigger(fa, "rotations")(request)
    assert response.status_code == 401
    assert json.loads(response.get_body())["error"]["code"] == "token_missing"
    assert writes(sandbox.state) == 0


# ----- 403: the token passes, the role does not ------------------------------------------------


async def test_entra_issues_no_token_to_a_user_or_app_without_a_role(sandbox: Sandbox) -> None:
    """Assignment is required: a principal holding no role gets no token at all."""
    with pytest.raises(TokenRefused, match="AADSTS50105"):
        sandbox.user_token(sandbox.add_api_user(roles=()))
    with pytest.raises(TokenRefused, match="AADSTS50105"):
        sandbox.app_token(sandbox.add_api_client(roles=()))
    with pytest.raises(TokenRefused, match="AADSTS65001"):
        sandbox.user_token(sandbox.add_api_user(), client_id="11111111-2222-3333-4444-555555555555")


async def test_a_token_without_any_of_the_apis_roles_gets_403(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    for token in (forged(sandbox, roles=None), forged(sandbox, roles=["Directory.Read.All"])):
        for route in ("status", "doctor", "rotations"):
            status, answer, challenge = await call(fa, route, bearer(token), {"dryRun": True})
            assert (status, answer["error"]["code"]) == (403, "role_missing")
            assert challenge is not None
            assert 'error="insufficient_scope"' in challenge


async def test_a_users_token_without_the_apis_scope_gets_403(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    status, answer, _ = await call(fa, "status", bearer(forged(sandbox, scp="openid")))
    assert (status, answer["error"]["code"]) == (403, "scope_missing")


# Each role on its own routes: what it may do, and that it may do nothing else.
ALLOWED = {
    READ: {"status", "doctor", "dry run"},
    ROTATE: {"due", "force"},
    EMERGENCY: {"emergency"},
}
REQUESTS = {
    "status": ("status", None),
    "doctor": ("doctor", None),
    "dry run": ("rotations", {"dryRun": True, "mode": "emergency", "appIds": ["<app>"]}),
    "due": ("rotations", {}),
    "force": ("rotations", {"mode": "force", "appIds": ["<app>"]}),
    "emergency": ("rotations", {"mode": "emergency", "appIds": ["<app>"]}),
}


@pytest.mark.parametrize("role", api_app.ROLES)
@pytest.mark.parametrize("kind", ["user", "app"])
async def test_each_role_opens_its_own_routes_and_modes_and_no_other(
    sandbox: Sandbox, fa: ModuleType, role: str, kind: str
) -> None:
    sender = sandbox.add_sender()
    if kind == "user":
        token = sandbox.user_token(sandbox.add_api_user(roles=[role]))
    else:
        token = sandbox.app_token(sandbox.add_api_client(roles=[role]))
    for name, (route, body) in REQUESTS.items():
        if body is not None and "appIds" in body:
            body = {**body, "appIds": [sender.app_id]}
        before = writes(sandbox.state)
        status, answer, challenge = await call(fa, route, bearer(token), body)
        if name in ALLOWED[role]:
            assert status == 200, (name, answer)
        else:
            assert (status, answer["error"]["code"]) == (403, "role_missing"), (name, answer)
            assert role in answer["error"]["message"]  # names what the token carries
            assert challenge is not None
            assert 'error="insufficient_scope"' in challenge
            assert writes(sandbox.state) == before


async def test_a_workload_gets_its_token_from_the_token_endpoint_and_calls_the_api(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    """Client credentials over HTTP, as a pipeline would: scope <application ID URI>/.default."""
    client = sandbox.add_api_client(roles=[READ])
    form = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "scope": f"{sandbox.api.identifier_uri}/.default",
    }
    url = f"{sandbox.login_url}/{sandbox.tenant_id}/oauth2/v2.0/token"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=form, ssl=sandbox.client_ssl()) as got,
    ):
        assert got.status == 200
        token = (await got.json())["access_token"]
    status, _, _ = await call(fa, "status", bearer(token))
    assert status == 200
    stranger = sandbox.add_api_client(roles=())
    form |= {"client_id": stranger.client_id, "client_secret": stranger.client_secret}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=form, ssl=sandbox.client_ssl()) as got,
    ):
        assert got.status == 400
        assert (await got.json())["error_codes"] == [50105]


# ----- Entra's signing keys ----------------------------------------------------------------------


def api_with_keys(sandbox: Sandbox, module: ModuleType, **options: Any) -> Api:
    keys = SigningKeys(sandbox.login_url, sandbox.tenant_id, _trusting(sandbox), **options)
    check = TokenCheck(keys, audience=sandbox.api.client_id, tenant_id=sandbox.tenant_id)
    clock = sandbox.state.clock.now
    return Api(
        module.settings,
        lambda s: RotationService.open(s, clock=clock, overrides=Overrides(backoff=FAST)),
        tokens=check,
    )


def _trusting(sandbox: Sandbox) -> ssl.SSLContext:
    return sandbox.client_ssl()


async def test_a_rotated_signing_key_is_fetched_when_a_token_first_names_it(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    fa.api = api_with_keys(sandbox, fa, refresh_cooldown=0)
    user = sandbox.add_api_user(roles=[READ])
    assert (await call(fa, "status", bearer(sandbox.user_token(user))))[0] == 200
    assert sandbox.state.requests[KEYS_ROUTE] == 1
    assert (await call(fa, "status", bearer(sandbox.user_token(user))))[0] == 200
    assert sandbox.state.requests[KEYS_ROUTE] == 1  # cached

    sandbox.state.rotate_signing_key()
    status, answer, _ = await call(fa, "status", bearer(sandbox.user_token(user)))
    assert status == 200, answer
    assert sandbox.state.requests[KEYS_ROUTE] == 2  # fetched once more, for the new kid
    old = forged(sandbox, key=0)  # tokens signed before the roll-over keep working
    assert (await call(fa, "status", bearer(old)))[0] == 200
    await fa.api.close()


async def test_made_up_key_ids_fetch_the_keys_at_most_once_per_cooldown(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    """A stream of tokens naming unknown keys does not turn into a stream of requests to Entra."""
    fa.api = api_with_keys(sandbox, fa)  # PyJWKClient's 30 s cooldown
    assert (await call(fa, "status", fa.auth))[0] == 200
    for n in range(20):
        status, answer, _ = await call(fa, "status", bearer(forged(sandbox, key=10 + n % 2)))
        assert (status, answer["error"]["code"]) == (401, "token_unknown_key")
    assert sandbox.state.requests[KEYS_ROUTE] == 1
    await fa.api.close()


async def test_unreadable_signing_keys_refuse_every_call_with_503_and_run_nothing(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    sandbox.add_sender()
    sandbox.state.faults.inject(KEYS_ROUTE, status=503)
    status, answer, challenge = await call(fa, "rotations", fa.auth, {"mode": "force"})
    assert (status, answer["error"]["code"]) == (503, "signing_keys_unavailable")
    assert challenge is None
    assert "discovery/v2.0/keys" in answer["error"]["message"]
    assert writes(sandbox.state) == 0
    sandbox.state.faults.clear()
    assert (await call(fa, "status", fa.auth))[0] == 200  # the next call tries again


async def test_without_the_api_client_id_every_route_but_health_refuses_by_name(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load(sandbox, monkeypatch, api_client_id=None)
    try:
        for route in ("status", "doctor", "rotations"):
            status, answer, _ = await call(module, route, module.auth, {})
            assert (status, answer["error"]["code"]) == (503, "api_not_configured")
            assert "ROTATION_API_CLIENT_ID" in answer["error"]["message"]
        health = await trigger(module, "health")(func.HttpRequest("GET", "/api/health", body=b""))
        assert health.status_code == 200
    finally:
        await module.api.close()


# ----- the audit ---------------------------------------------------------------------------------


async def test_the_caller_is_on_every_line_of_the_request_and_its_run_and_in_the_report(
    sandbox: Sandbox, fa: ModuleType
) -> None:
    sender = sandbox.add_sender()
    user = sandbox.add_api_user(roles=[ROTATE], name="alice@sandbox.example")
    token = sandbox.user_token(user)
    with json_lines() as lines:
        status, report, _ = await call(
            fa, "rotations", bearer(token), {"mode": "force", "appIds": [sender.app_id]}
        )
        refused = await call(
            fa, "rotations", bearer(token), {"mode": "emergency", "appIds": [sender.app_id]}
        )
    assert status == 200
    who = {
        "type": "user",
        "objectId": user.object_id,
        "appId": api_app.AZURE_CLI_APP_ID,
        "name": "alice@sandbox.example",
        "role": ROTATE,
    }
    assert report["requestedBy"] == who
    ours = rotator_lines(lines)
    run_lines = [x for x in ours if x.get("run_id") == report["runId"]]
    assert {"run.started", "app.finished", "run.finished"} <= {x["event"] for x in run_lines}
    for line in [
        *run_lines,
        *(x for x in ours if x["event"] in ("http.authorized", "http.rotation_requested")),
    ]:
        assert (line["caller_object_id"], line["caller_app_id"], line["caller_role"]) == (
            user.object_id,
            api_app.AZURE_CLI_APP_ID,
            ROTATE,
        ), line["event"]
        assert line["caller_name"] == "alice@sandbox.example"
    assert refused[0] == 403
    (denied,) = [x for x in ours if x["event"] == "http.refused"]
    assert (denied["code"], denied["caller_object_id"]) == ("role_missing", user.object_id)
    assert "Rotation.Emergency" in denied["reason"]
    text = json.dumps(lines)
    assert token not in text
    assert token.split(".")[1] not in text  # not even the claims, encoded
