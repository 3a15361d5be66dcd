"""What every sandbox HTTP service shares: counters, injected faults, bearer tokens, errors.

Each service (``login``, ``graph``, ``vault``, ``arm``, ``admin``) is its own aiohttp
application on its own port, built with :func:`counted_app`. The middleware installed
there does three things for every request, in this order:

1. counts it in ``state.requests[key]``;
2. applies ``state.faults.take(key)``: the latencies add up, then the first fault with a
   ``status`` answers with that status (plus ``Retry-After`` when set) and an error body in
   the service's own shape, or the first fault with ``drop`` closes the connection with no
   reply at all; a fault marked ``after`` answers its status only once the route has run
   (the work is done, the caller hears a failure);
3. otherwise runs the route, turning an :class:`ApiError` into that service's error body,
   and lets each fault's ``rewrite`` edit the JSON answer (one malformed item).

The route key is ``"<service> <METHOD> <route template>"``, with the template as
registered (aiohttp's ``canonical``) minus the app's ``key_prefix``, e.g.
``"graph POST /applications/{id}/addPassword"`` or ``"vault GET /secrets/{name}"``.
Requests that match no route are counted as ``"<service> <METHOD> (unmatched)"``.

Route handlers call :func:`require_token` for a bearer token and raise
:class:`ApiError` (or return :func:`error_response`) for refusals. Nothing here ever puts a
secret value into a response.

Typical use (H2's vault/arm modules follow the same pattern)::

    def build_app(state: SandboxState) -> web.Application:
        app = counted_app("arm", state)
        app.router.add_get("/subscriptions/{sub}/providers/...", list_resources)
        return app

    async def list_resources(request: web.Request) -> web.Response:
        state = request.app[STATE]
        token = require_token(request, ARM_AUDIENCES)
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime

from aiohttp import web

from sandbox.faults import Rewrite
from sandbox.state import IssuedToken, SandboxState

#: The service name this app answers as: "login", "graph", "vault", "arm" or "admin".
SERVICE = web.AppKey("service", str)
#: The shared sandbox world.
STATE = web.AppKey("state", SandboxState)
#: A path prefix left out of route keys ("/v1.0" for Graph), so keys read like Graph docs.
KEY_PREFIX = web.AppKey("key_prefix", str)
#: The public base URL of this service (set by the server once the port is known).
BASE_URL = web.AppKey("base_url", str)
#: The WWW-Authenticate value of this service's 401s, set per app by the server.
CHALLENGE = web.AppKey("challenge", str)
#: This request's id, as the service reports it in headers and error bodies.
REQUEST_ID = web.RequestKey("request_id", str)

#: Service-specific error codes for statuses injected as faults.
_FAULT_CODES: dict[str, dict[int, str]] = {
    # Graph's documented codes (learn.microsoft.com/graph/errors): no timeout code is listed,
    # so a 504 carries the catch-all generalException.
    "graph": {
        429: "TooManyRequests",
        503: "serviceNotAvailable",
        500: "generalException",
        504: "generalException",
    },
    "vault": {429: "Throttled", 503: "ServiceUnavailable", 500: "InternalServerError"},
    "arm": {429: "TooManyRequests", 503: "ServiceUnavailable", 500: "InternalServerError"},
    "login": {429: "temporarily_unavailable", 503: "temporarily_unavailable"},
}
_FAULT_MESSAGES = {
    429: "Too many requests. Please retry after the time given in Retry-After.",
    500: "An internal server error occurred.",
    503: "The service is temporarily unavailable. Please retry.",
    504: "The gateway did not receive a timely response from the upstream service.",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A refusal a route raises; the middleware renders it in the service's error shape.

    `code` is the service's own error code ("Authorization_RequestDenied", "SecretNotFound",
    "invalid_client", ...); `extra` adds service-specific fields (Entra's error_codes).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def counted_app(service: str, state: SandboxState, *, key_prefix: str = "") -> web.Application:
    """A new aiohttp app for `service` with the counting/fault/error middleware installed.

    Handlers read the shared state via ``request.app[STATE]``.
    """
    app = web.Application(middlewares=[_middleware], client_max_size=4 * 1024 * 1024)
    app[SERVICE] = service
    app[STATE] = state
    app[KEY_PREFIX] = key_prefix
    return app


def route_key(request: web.Request) -> str:
    """The counter/fault key of this request: "<service> <METHOD> <route template>"."""
    service = request.app[SERVICE]
    resource = request.match_info.route.resource
    if resource is None or request.match_info.http_exception is not None:
        template = "(unmatched)"
    else:
        template = resource.canonical.removeprefix(request.app[KEY_PREFIX]) or "/"
    return f"{service} {request.method} {template}"


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[REQUEST_ID] = str(uuid.uuid4())
    loop = asyncio.get_running_loop()
    arrived = loop.time()
    response = await _answer(request, handler)
    _stamp(request, response)
    response_time = request.app[STATE].response_times.get(request.app[SERVICE], 0.0)
    if (wait := arrived + response_time - loop.time()) > 0:
        await asyncio.sleep(wait)
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    key = route_key(request)
    state.requests[key] += 1
    faults = state.faults.take(key)
    delay = sum(f.latency for f in faults)
    if delay > 0:
        await asyncio.sleep(delay)
    for fault in faults:
        if fault.drop:
            _drop(request)
            return web.Response(status=500)  # never sent: the connection is gone
        if fault.status is not None and fault.after:
            with contextlib.suppress(ApiError):
                await handler(request)  # the work lands; its answer is lost
            return _fault_response(request, fault.status, fault.retry_after)
        if fault.status is not None and fault.page is not None:
            return web.Response(status=fault.status, text=fault.page, content_type="text/html")
        if fault.status is not None:
            return _fault_response(request, fault.status, fault.retry_after)
    try:
        response = await handler(request)
    except ApiError as err:
        return error_response(
            request, err.status, err.code, err.message, headers=err.headers, extra=err.extra
        )
    return _rewritten(response, [f.rewrite for f in faults if f.rewrite is not None])


def _rewritten(response: web.StreamResponse, rewrites: list[Rewrite]) -> web.StreamResponse:
    """The answer with each rewrite applied to its JSON body (a 2xx JSON answer only)."""
    if not rewrites or not isinstance(response, web.Response) or response.status >= 300:
        return response
    if response.content_type != "application/json" or response.body is None:
        return response
    assert isinstance(response.body, bytes)  # json_response's body
    body = json.loads(response.body)
    for rewrite in rewrites:
        body = rewrite.apply(body)
    response.body = json.dumps(body).encode()
    return response


#: Graph's JSON media type with its OData parameters, as every recorded Graph answer carries
#: it (azure-sdk-assets, java/sdk/resourcemanager/azure-resourcemanager-authorization
#: RoleAssignmentTests.canCRUDRoleAssignment.json, @290e4820).
GRAPH_JSON = (
    "application/json; odata.metadata=minimal; odata.streaming=true; "
    "IEEE754Compatible=false; charset=utf-8"
)


def _stamp(request: web.Request, response: web.StreamResponse) -> None:
    """The request-id headers each service puts on every answer, errors included, and a
    401's WWW-Authenticate where the route gave none (RFC 6750 section 3 requires one).

    - Graph: ``request-id`` and ``client-request-id`` (the caller's, else the request id),
      the same ids its error bodies carry in innerError (learn.microsoft.com/graph/errors).
    - Key Vault and ARM: ``x-ms-request-id``, and the caller's ``x-ms-client-request-id``
      echoed (as the Key Vault recordings in Azure/azure-sdk-for-js show); ARM adds
      ``x-ms-correlation-request-id`` (learn.microsoft.com/azure/azure-resource-manager/
      management/request-limits-and-throttling lists these response headers).
    """
    if response.prepared:
        return
    service = request.app[SERVICE]
    rid = request[REQUEST_ID]
    headers = response.headers
    if service == "graph":
        headers["request-id"] = rid
        headers["client-request-id"] = request.headers.get("client-request-id") or rid
        if headers.get("Content-Type", "").startswith("application/json"):
            headers["Content-Type"] = GRAPH_JSON
    elif service in ("vault", "arm"):
        headers["x-ms-request-id"] = rid
        if "x-ms-client-request-id" in request.headers:
            headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
        if service == "arm":
            correlation = request.headers.get("x-ms-correlation-request-id") or rid
            headers["x-ms-correlation-request-id"] = correlation
    challenge = request.app.get(CHALLENGE)
    if response.status == 401 and challenge and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = challenge


def _fault_response(request: web.Request, status: int, retry_after: float | None) -> web.Response:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = _retry_after(retry_after)
    code = _FAULT_CODES.get(request.app[SERVICE], {}).get(status, "Error")
    message = _FAULT_MESSAGES.get(status, "Injected fault.")
    return error_response(request, status, code, message, headers=headers)


def _drop(request: web.Request) -> None:
    """Closes the TCP connection under the request without sending a response."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def _retry_after(seconds: float) -> str:
    # Retry-After carries whole seconds; fractional values are rounded up but a zero stays zero.
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)


def error_response(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> web.Response:
    """A JSON error in the shape the real service uses for `request.app[SERVICE]`."""
    body = error_body(request.app[SERVICE], code, message, request=request, extra=extra)
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def error_body(
    service: str,
    code: str,
    message: str,
    *,
    request: web.Request | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The error JSON of each service.

    - graph: ``{"error": {"code", "message", "innerError": {"date", "request-id",
      "client-request-id"}}}``
    - login (Entra): ``{"error", "error_description", "error_codes", "timestamp",
      "trace_id", "correlation_id"}``
    - vault, arm, admin: ``{"error": {"code", "message"}}``
    """
    now = datetime.now(UTC)
    client_request_id = ""
    request_id = str(uuid.uuid4())
    if request is not None:
        client_request_id = request.headers.get("client-request-id", "")
        request_id = request.get(REQUEST_ID, request_id)
    if service == "graph":
        graph_error: dict[str, object] = {"code": code, "message": message, **(extra or {})}
        graph_error["innerError"] = {
            "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id or request_id,
        }
        return {"error": graph_error}
    if service == "login":
        return {
            "error": code,
            "error_description": (
                f"{message}\r\nTrace ID: {uuid.uuid4()}\r\nCorrelation ID: "
                f"{client_request_id or uuid.uuid4()}\r\nTimestamp: "
                f"{now.strftime('%Y-%m-%d %H:%M:%SZ')}"
            ),
            "error_codes": list(extra.get("error_codes", [])) if extra else [],  # type: ignore[call-overload]
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": client_request_id or str(uuid.uuid4()),
        }
    error: dict[str, object] = {"code": code, "message": message}
    if extra:
        error.update(extra)
    return {"error": error}


def bearer(request: web.Request) -> str | None:
    """The bearer token of the request, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def normalize_audience(audience: str) -> str:
    """Audiences compare without "/.default", a trailing slash or case."""
    return audience.removesuffix("/.default").rstrip("/").lower()


def require_token(request: web.Request, audiences: Collection[str]) -> IssuedToken:
    """The caller's live token, issued for one of `audiences`; else raises a 401 ApiError.

    A missing token answers with the app's CHALLENGE (WWW-Authenticate) when one is set,
    which is how Key Vault starts its challenge-based authentication.
    """
    state = request.app[STATE]
    challenge = request.app.get(CHALLENGE)
    headers = {"WWW-Authenticate": challenge} if challenge else {}
    service = request.app[SERVICE]
    code = "InvalidAuthenticationToken" if service == "graph" else "Unauthorized"
    value = bearer(request)
    if value is None:
        message = (
            "Access token is empty."
            if service == "graph"
            else "AKV10000: Request is missing a Bearer or PoP token."
            if service == "vault"
            else "Authentication failed. The 'Authorization' header is missing."
        )
        raise ApiError(
            401, code if service != "arm" else "AuthenticationFailed", message, headers=headers
        )
    token = state.tokens.get(value)
    if token is None:
        raise ApiError(
            401, code, "Access token validation failure. Invalid token.", headers=headers
        )
    if token.expires <= datetime.now(UTC):  # real time: see entra_api (tokens ignore the clock)
        raise ApiError(
            401, code, "Lifetime validation failed, the token is expired.", headers=headers
        )
    wanted = {normalize_audience(a) for a in audiences}
    if normalize_audience(token.audience) not in wanted:
        raise ApiError(
            401, code, "Access token validation failure. Invalid audience.", headers=headers
        )
    return token


async def json_body(request: web.Request) -> dict[str, object]:
    """The request's JSON object body (empty when there is none); 400 when it is not JSON."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json(loads=json.loads)
    except ValueError:
        raise ApiError(400, "BadRequest", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", "The request body must be a JSON object.")
    return data


def arm_challenge(authority_url: str, tenant_id: str) -> str:
    """ARM's WWW-Authenticate on a 401: where to get a token, and why this one failed."""
    authority = f"{authority_url.rstrip('/')}/{tenant_id}"
    return (
        f'Bearer authorization_uri="{authority}", error="invalid_token", '
        'error_description="The access token is missing or invalid."'
    )


def graph_challenge(authority_url: str) -> str:
    """Graph's WWW-Authenticate on a 401 (its resource's well-known app id as client_id)."""
    authorize = f"{authority_url.rstrip('/')}/common/oauth2/authorize"
    return (
        f'Bearer realm="", authorization_uri="{authorize}", '
        'client_id="00000003-0000-0000-c000-000000000000"'
    )
