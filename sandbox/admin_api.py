"""A small JSON control surface for a running sandbox (for `python -m sandbox`, scripts, bench).

Loopback only and unauthenticated, like any local test fixture; it never returns a
secret value (seeded senders come back without their password).

- ``GET  /snapshot``                 state.snapshot()
- ``GET  /requests``                 request counters; ``DELETE /requests`` resets them
- ``GET  /faults``                   injected faults; ``POST /faults`` adds one
  (``{"route", "status", "retryAfter", "latency", "drop", "probability", "times",
  "after", "rewrite"}``; ``after``: the route runs, then the status answers instead of its
  reply; ``rewrite``: ``{"match": {path: value}, "path", "value" | "delete": true}`` edits one
  item of the route's JSON answer, see sandbox.faults.Rewrite);
  ``DELETE /faults[?route=...]`` clears them
- ``PUT  /propagation-delay``        ``{"seconds": 20}``
- ``POST /clock/advance``            ``{"days": 160}`` or ``{"seconds": 30}``
- ``POST /senders``                  seed an ACS sender: ``{"via", "role", "lifetimeDays",
  "owned", "name", "resource", "senders"}``
- ``POST /deleted-secrets``          soft-delete a Key Vault secret: ``{"name",
  "finishingInSeconds"}`` (the name then answers writes with Key Vault's 409)
- ``POST /api-operators``            a user holding app roles of the rotator's API, and the
  token Azure CLI would print for them: ``{"name", "roles"}`` -> ``{"objectId", "token",
  "applicationIdUri"}`` (a token, not a secret of the world: it opens only the rotator's API)
- ``POST /signing-key/rotate``       Entra rolls its token signing key over
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox import tokens
from sandbox.api_app import ROLES
from sandbox.faults import Rewrite
from sandbox.http_common import STATE, ApiError, counted_app, json_body
from sandbox.seed import Via
from sandbox.state import BUILTIN_ROLES, SandboxState

if TYPE_CHECKING:
    from sandbox.server import Sandbox

SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox")
_VIAS: tuple[Via, ...] = ("role", "smtp-username", "both")


def build_app(state: SandboxState, sandbox: Sandbox) -> web.Application:
    app = counted_app("admin", state)
    app[SANDBOX] = sandbox
    r = app.router
    r.add_get("/snapshot", snapshot)
    r.add_get("/requests", requests)
    r.add_delete("/requests", reset_requests)
    r.add_get("/faults", list_faults)
    r.add_post("/faults", add_fault)
    r.add_delete("/faults", clear_faults)
    r.add_put("/propagation-delay", set_propagation_delay)
    r.add_post("/clock/advance", advance_clock)
    r.add_post("/senders", add_sender)
    r.add_post("/deleted-secrets", soft_delete_secret)
    r.add_post("/api-operators", add_api_operator)
    r.add_post("/signing-key/rotate", rotate_signing_key)
    return app


async def snapshot(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].snapshot())


async def requests(request: web.Request) -> web.Response:
    return web.json_response({"requests": dict(request.app[STATE].requests)})


async def reset_requests(request: web.Request) -> web.Response:
    request.app[STATE].requests.clear()
    return web.Response(status=204)


async def list_faults(request: web.Request) -> web.Response:
    faults = [asdict(f) for f in request.app[STATE].faults.faults]
    return web.json_response({"faults": faults})


def _number(body: dict[str, Any], key: str, default: float | None) -> float | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, "BadRequest", f"'{key}' must be a number.")
    return float(value)


async def add_fault(request: web.Request) -> web.Response:
    body = await json_body(request)
    route = body.get("route")
    if not isinstance(route, str) or not route:
        raise ApiError(
            400,
            "BadRequest",
            "'route' is required, e.g. \"graph POST /applications/{id}/addPassword\".",
        )
    status, times = _number(body, "status", None), _number(body, "times", None)
    fault = request.app[STATE].faults.inject(
        route,
        status=int(status) if status is not None else None,
        retry_after=_number(body, "retryAfter", None),
        latency=_number(body, "latency", 0.0) or 0.0,
        drop=bool(body.get("drop", False)),
        probability=_number(body, "probability", 1.0) or 0.0,
        times=int(times) if times is not None else None,
        after=bool(body.get("after", False)),
        rewrite=_rewrite(body.get("rewrite")),
    )
    return web.json_response(asdict(fault), status=201)


def _rewrite(spec: object) -> Rewrite | None:
    if spec is None:
        return None
    match = spec.get("match") if isinstance(spec, dict) else None
    path = spec.get("path") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(match, dict) or not isinstance(path, str):
        raise ApiError(
            400,
            "BadRequest",
            '\'rewrite\' must be {"match": {field: value}, "path": "a.b", "value": ...} '
            'or with "delete": true instead of a value.',
        )
    return Rewrite(match, path, spec.get("value"), bool(spec.get("delete", False)))


async def clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear(request.query.get("route"))
    return web.Response(status=204)


async def set_propagation_delay(request: web.Request) -> web.Response:
    seconds = _number(await json_body(request), "seconds", None)
    if seconds is None or seconds < 0:
        raise ApiError(400, "BadRequest", "'seconds' must be a number >= 0.")
    request.app[STATE].propagation_delay = timedelta(seconds=seconds)
    return web.Response(status=204)


async def advance_clock(request: web.Request) -> web.Response:
    body = await json_body(request)
    delta = timedelta(
        days=_number(body, "days", 0.0) or 0.0, seconds=_number(body, "seconds", 0.0) or 0.0
    )
    state = request.app[STATE]
    state.clock.advance(delta)
    return web.json_response({"now": state.clock.now().isoformat()})


def _list(body: dict[str, Any], key: str) -> list[object]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise ApiError(400, "BadRequest", f"'{key}' must be a list.")
    return value


async def add_api_operator(request: web.Request) -> web.Response:
    body = await json_body(request)
    sandbox = request.app[SANDBOX]
    roles = [str(r) for r in _list(body, "roles")] or list(ROLES)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ApiError(400, "BadRequest", f"unknown roles {unknown}: the API has {list(ROLES)}.")
    user = sandbox.add_api_user(roles, name=str(body.get("name") or "operator@sandbox.example"))
    return web.json_response(
        {
            "objectId": user.object_id,
            "token": sandbox.user_token(user),
            "applicationIdUri": sandbox.api.identifier_uri,
        }
    )


async def rotate_signing_key(request: web.Request) -> web.Response:
    index = request.app[SANDBOX].state.rotate_signing_key()
    return web.json_response({"kid": tokens.key_id(index)})


async def add_sender(request: web.Request) -> web.Response:
    body = await json_body(request)
    sandbox = request.app[SANDBOX]
    via = body.get("via", "role")
    if via not in _VIAS:
        raise ApiError(400, "BadRequest", f"'via' must be one of {', '.join(_VIAS)}.")
    resource = None
    if body.get("resource"):
        resource = sandbox.state.resource_by_name(str(body["resource"]))
        if resource is None:
            resource = sandbox.add_acs_resource(str(body["resource"]))
    role = body.get("role", "Contributor")
    if role is not None and role not in BUILTIN_ROLES:
        names = ", ".join(BUILTIN_ROLES)
        raise ApiError(400, "BadRequest", f"'role' must be one of {names}, or null.")
    sender = sandbox.add_sender(
        resource,
        via=via,
        role=role,
        lifetime=timedelta(days=_number(body, "lifetimeDays", 180.0) or 180.0),
        owned=bool(body.get("owned", True)),
        name=str(body["name"]) if body.get("name") else None,
        senders=[str(s) for s in _list(body, "senders")],
    )
    return web.json_response(
        {
            "appId": sender.app_id,
            "objectId": sender.app.object_id,
            "servicePrincipalId": sender.principal_id,
            "keyId": sender.password.key_id,
            "resourceId": sender.resource.id,
            "usernames": list(sender.usernames),
        },
        status=201,
    )


async def soft_delete_secret(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "BadRequest", "'name' (a Key Vault secret name) is required.")
    finishing = _number(body, "finishingInSeconds", 0.0) or 0.0
    deleted = request.app[STATE].soft_delete_secret(name, finishing_in=timedelta(seconds=finishing))
    return web.json_response(
        {
            "name": deleted.name,
            "deleted": deleted.deleted.isoformat(),
            "ready": deleted.ready.isoformat(),
            "scheduledPurge": deleted.scheduled_purge.isoformat(),
            "versions": len(deleted.versions),
        },
        status=201,
    )
