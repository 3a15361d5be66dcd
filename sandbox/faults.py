"""Faults the sandbox injects on demand, per route, to exercise retries and recovery.

A route key names what a fault applies to, the same key the request counters use:
``"<service> <METHOD> <route template>"`` for HTTP (for example
``"graph POST /applications/{id}/addPassword"``) and ``"smtp <VERB>"`` for the relay
(``"smtp CONNECT"``, ``"smtp AUTH"``). A key may end in ``*`` to match a prefix
(``"vault *"`` hits every Key Vault route).

A fault may also *rewrite* one item of a route's JSON answer (`Rewrite`): the route answers
200 as usual, but the object that matches has one field removed, nulled or replaced. That is
the malformed answer an upstream service can send for one item among many (a Graph
application whose ``passwordCredentials`` is not a list, a Key Vault listing item whose
``tags`` is a string); issue 23 asks that it stays that one item's problem.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Rewrite:
    """Edits one field of the JSON objects of an answer that match `match`.

    `match` maps dotted paths to values (compared as case-insensitive strings): an object
    anywhere in the answer whose fields all equal them is edited. `path` is a dotted path
    inside that object (list items by index: ``passwordCredentials.0.endDateTime``); the
    field there is removed when `delete`, else set to `value` (any JSON, null included).
    Parents along the path must exist: a rewrite never invents structure it was not given.
    """

    match: dict[str, Any]
    path: str
    value: Any = None
    delete: bool = False
    edited: int = 0

    def apply(self, body: Any) -> Any:
        """`body` with every matching object edited (in place; returned for convenience)."""
        for item in _objects(body):
            if all(_same(_get(item, k), v) for k, v in self.match.items()) and self._edit(item):
                self.edited += 1
        return body

    def _edit(self, item: dict[str, Any]) -> bool:
        *parents, last = self.path.split(".")
        node: Any = item
        for part in parents:
            node = _child(node, part)
            if node is None:
                return False
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            if self.delete:
                del node[int(last)]
            else:
                node[int(last)] = self.value
            return True
        if not isinstance(node, dict):
            return False
        if self.delete:
            return node.pop(last, _ABSENT) is not _ABSENT
        node[last] = self.value
        return True


_ABSENT = object()


def _objects(body: Any) -> list[dict[str, Any]]:
    """Every JSON object in `body`, outermost first."""
    found: list[dict[str, Any]] = []
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.append(node)
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return None


def _get(item: dict[str, Any], path: str) -> Any:
    node: Any = item
    for part in path.split("."):
        node = _child(node, part)
    return node


def _same(found: Any, wanted: Any) -> bool:
    return found is not None and str(found).lower() == str(wanted).lower()


@dataclass
class Fault:
    """One injected behaviour. `status` answers with that HTTP status (SMTP: that reply
    code); `latency` delays the answer; `drop` closes the connection without a reply.
    `after` (HTTP only) lets the route do its work first and then answers `status`
    instead of its reply: a gateway timeout after the write landed, which is how a
    504 from Graph can follow a created credential. `page` answers `status` with that
    text as an HTML page instead of the service's JSON error body: what a gateway or an
    intercepting proxy in front of a service sends, even with a 200."""

    route: str
    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    drop: bool = False
    probability: float = 1.0
    remaining: int | None = None  # None: until cleared
    hits: int = 0
    after: bool = False
    rewrite: Rewrite | None = None  # edits one item of the answer (the route runs as usual)
    page: str | None = None

    def matches(self, route: str) -> bool:
        if self.route.endswith("*"):
            return route.startswith(self.route[:-1])
        return route == self.route


@dataclass
class FaultInjector:
    faults: list[Fault] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(1234))

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def inject(
        self,
        route: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        latency: float = 0.0,
        drop: bool = False,
        probability: float = 1.0,
        times: int | None = None,
        after: bool = False,
        rewrite: Rewrite | None = None,
        page: str | None = None,
    ) -> Fault:
        return self.add(
            Fault(
                route,
                status,
                retry_after,
                latency,
                drop,
                probability,
                times,
                after=after,
                rewrite=rewrite,
                page=page,
            )
        )

    def rewrite(
        self, route: str, match: dict[str, Any], path: str, *, value: Any = None,
        delete: bool = False,
    ) -> Rewrite:  # fmt: skip
        """Malforms one item of `route`'s answers until cleared (see `Rewrite`)."""
        edit = Rewrite(match, path, value, delete)
        self.inject(route, rewrite=edit)
        return edit

    def clear(self, route: str | None = None) -> None:
        self.faults = [f for f in self.faults if route is not None and f.route != route]

    def take(self, route: str) -> list[Fault]:
        """The faults to apply to this request (latency adds up; the first status or
        drop wins), counting each down."""
        hit = []
        for fault in self.faults:
            if fault.remaining == 0 or not fault.matches(route):
                continue
            if fault.probability < 1.0 and self.rng.random() >= fault.probability:
                continue
            fault.hits += 1
            if fault.remaining is not None:
                fault.remaining -= 1
            hit.append(fault)
        return hit
