"""Transports that answer with recorded exchanges instead of the network: an azure-core
AsyncHttpTransport (Key Vault, ARM) and an httpx transport (msgraph-sdk). The SDKs above
them run unchanged (pipelines, retries, challenge handling, deserialization), so an
adapter fed through them meets the bytes Azure really sent.

Answers are handed out in the recorded order; a request whose method differs from the
next recorded one fails the test. Key Vault's SDK probes a vault once without a token to
learn its tenant from the 401 challenge and caches what it learnt per host for the whole
process, so whether it probes depends on earlier tests: an unauthenticated request is
answered with the recording's own challenge, and a recorded challenge the SDK no longer
needs is skipped.
"""

from __future__ import annotations

import http.client
import io
import json
import time
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import HttpRequest
from azure.core.rest._http_response_impl_async import RestAsyncHttpClientTransportResponse

from tests.recorded.recording import Entry


class Answers:
    """The recorded answers still to give, in order."""

    def __init__(self, entries: Iterable[Entry], challenge: Entry | None = None) -> None:
        self.pending = deque(e for e in entries if e.seed is None)
        self.challenge = challenge
        self.sent: list[tuple[str, str]] = []

    def next(self, method: str, url: str, authorized: bool) -> Entry:
        self.sent.append((method, url))
        if self.pending and self.pending[0].status == 401 and authorized:
            self.pending.popleft()  # the SDK already knows the challenge
        recorded_challenge = bool(self.pending) and self.pending[0].status == 401
        if not authorized and self.challenge is not None and not recorded_challenge:
            return self.challenge
        if not self.pending:
            raise AssertionError(f"no recorded answer left for {method} {url}")
        entry = self.pending.popleft()
        if entry.method != method:
            raise AssertionError(
                f"{method} {url} sent where {entry.method} {entry.uri} was recorded"
            )
        return entry


def _raw(entry: Entry) -> tuple[dict[str, str], bytes]:
    body = b"" if entry.body is None else json.dumps(entry.body).encode()
    headers = dict(entry.headers)
    if body and "content-type" not in headers:
        headers["content-type"] = "application/json"
    headers["content-length"] = str(len(body))
    return headers, body


class _Socket:
    """What http.client.HTTPResponse reads a response from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, *_: Any, **__: Any) -> io.BytesIO:
        return io.BytesIO(self._data)


def _http_client_response(entry: Entry) -> http.client.HTTPResponse:
    headers, body = _raw(entry)
    head = f"HTTP/1.1 {entry.status} {http.client.responses.get(entry.status, '')}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    response = http.client.HTTPResponse(_Socket(head.encode() + body))  # type: ignore[arg-type]
    response.begin()
    return response


class AzureReplay(AsyncHttpTransport):
    """azure-core transport answering from a recording."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    async def send(
        self, request: HttpRequest, **kwargs: Any
    ) -> RestAsyncHttpClientTransportResponse:
        authorized = "authorization" in {k.lower() for k in request.headers}
        entry = self.answers.next(request.method, request.url, authorized)
        response = RestAsyncHttpClientTransportResponse(
            request=request, internal_response=_http_client_response(entry)
        )
        await response.read()
        return response

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AzureReplay:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        return None


class HttpxReplay(httpx.AsyncBaseTransport):
    """httpx transport answering from a recording (msgraph-sdk's middleware runs above it)."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        authorized = "authorization" in request.headers
        entry = self.answers.next(request.method, str(request.url), authorized)
        headers, body = _raw(entry)
        return httpx.Response(entry.status, headers=headers, content=body, request=request)


class RecordedToken:
    """A credential handing out a fixed token: the recordings' requests carried one
    ("Authorization: Sanitized"), which no replay checks."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("recorded", int(time.time()) + 3600)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("recorded", int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> RecordedToken:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None
