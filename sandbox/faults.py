"""Faults the sandbox injects on demand, per route, to exercise retries and recovery.

A route key names what a fault applies to, the same key the request counters use:
``"<service> <METHOD> <route template>"`` for HTTP (for example
``"graph POST /applications/{id}/addPassword"``) and ``"smtp <VERB>"`` for the relay
(``"smtp CONNECT"``, ``"smtp AUTH"``). A key may end in ``*`` to match a prefix
(``"vault *"`` hits every Key Vault route).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Fault:
    """One injected behaviour. `status` answers with that HTTP status (SMTP: that reply
    code); `latency` delays the answer; `drop` closes the connection without a reply.
    `after` (HTTP only) lets the route do its work first and then answers `status`
    instead of its reply: a gateway timeout after the write landed, which is how a
    504 from Graph can follow a created credential."""

    route: str
    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    drop: bool = False
    probability: float = 1.0
    remaining: int | None = None  # None: until cleared
    hits: int = 0
    after: bool = False

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
    ) -> Fault:
        return self.add(
            Fault(route, status, retry_after, latency, drop, probability, times, after=after)
        )

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
