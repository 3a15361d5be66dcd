"""Sends a recording's requests to a running sandbox, in order, with the ids mapped.

The recorded hosts become the sandbox's services; ids the recorded answers handed out
(secret versions, object ids, next links) are learnt from the sandbox's answers to the
same requests and swapped into the later requests; seed steps (see recording.py) set up
what the product never creates itself. Requests carry a real token from the sandbox's
Entra unless the recorded one carried none (Key Vault's first, challenged request).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from sandbox.server import Sandbox
from sandbox.vault_api import challenge_resource
from tests.recorded import seeds
from tests.recorded.recording import NEXT_LINKS, Answer, Entry, Recording, differences

#: Keys whose values are ids to learn (the recorded one -> the sandbox's one).
ID_KEYS = ("id", "keyId", "recoveryId", "appId", "principalId", "roleDefinitionId")
_ORIGIN = re.compile(r"^https://[^/]+")

Token = Callable[[str], Awaitable[str]]


@dataclass
class Ids:
    """Recorded ids and links -> the sandbox's (learnt as the replay goes)."""

    links: dict[str, str] = field(default_factory=dict)
    words: dict[str, str] = field(default_factory=dict)

    def learn(self, recorded: Any, here: Any) -> None:
        if isinstance(recorded, dict) and isinstance(here, dict):
            for key, value in recorded.items():
                if key in NEXT_LINKS and isinstance(value, str) and isinstance(here.get(key), str):
                    self.links[_local(value)] = here[key]
                elif key in ID_KEYS and isinstance(value, str) and isinstance(here.get(key), str):
                    self._words(value, here[key])
                else:
                    self.learn(value, here.get(key))
        elif isinstance(recorded, list) and isinstance(here, list):
            for rec, got in zip(recorded, here, strict=False):
                self.learn(rec, got)

    def _words(self, recorded: str, here: str) -> None:
        rec = [s for s in _local(recorded).split("?")[0].split("/") if s]
        got = [s for s in _local(here).split("?")[0].split("/") if s]
        if len(rec) == len(got):
            for a, b in zip(rec, got, strict=True):
                if a != b and len(a) >= 8:  # ids, not path words such as "secrets"
                    self.words[a] = b

    def swap(self, text: str) -> str:
        for recorded in sorted(self.words, key=len, reverse=True):
            text = text.replace(recorded, self.words[recorded])
        return text

    def url(self, recorded_uri: str, base: str) -> str:
        local = _local(recorded_uri)
        if local in self.links:
            return self.links[local]
        return base + self.swap(local)


def _local(uri: str) -> str:
    """A URI without scheme, host and port: how a next link and the request that follows
    it are matched (recordings sanitise the host of one and not the other)."""
    return _ORIGIN.sub("", uri)


@dataclass(frozen=True)
class Result:
    entry: Entry
    answer: Answer
    found: list[str]


async def replay(
    recording: Recording, sandbox: Sandbox, http: httpx.AsyncClient, token: Token
) -> list[Result]:
    ids = Ids()
    results = []
    for entry in recording.entries:
        if entry.seed is not None:
            ids.words.update(seeds.run(sandbox, json.loads(ids.swap(json.dumps(entry.seed)))))
            continue
        answer = await _send(entry, recording.service, sandbox, http, token, ids)
        ids.learn(entry.body, answer.body)
        results.append(Result(entry, answer, differences(entry, answer)))
    return results


async def _send(
    entry: Entry, service: str, sandbox: Sandbox, http: httpx.AsyncClient, token: Token, ids: Ids
) -> Answer:
    base = {"vault": sandbox.vault_url, "arm": sandbox.arm_url, "graph": sandbox.graph_url}[service]
    headers: dict[str, str] = {}
    if entry.authorized:
        headers["Authorization"] = "Bearer " + await token(_scope(service, sandbox))
    for name in ("x-ms-client-request-id", "client-request-id"):
        if name in entry.request_headers:
            headers[name] = str(uuid.uuid4())
    body = entry.request_body
    content = None if body is None else ids.swap(json.dumps(body)).encode()
    if content is not None:
        headers["Content-Type"] = "application/json"
    response = await http.request(
        entry.method, ids.url(entry.uri, base), content=content, headers=headers
    )
    return Answer(
        response.status_code,
        {k.lower(): v for k, v in response.headers.items()},
        response.json() if response.content else None,
    )


def _scope(service: str, sandbox: Sandbox) -> str:
    if service == "vault":
        return challenge_resource(sandbox.vault_url) + "/.default"
    return {"arm": sandbox.arm_url, "graph": sandbox.graph_url}[service] + "/.default"


def keyed(recording: Recording, results: list[Result]) -> dict[str, str]:
    """Each difference as its table key (`case#entry METHOD: difference`) -> the recorded
    request, for the failure message."""
    out: dict[str, str] = {}
    for r in results:
        path = urlsplit(r.entry.uri).path
        for text in r.found:
            out[f"{recording.case}#{r.entry.index} {r.entry.method}: {text}"] = path
    return out
