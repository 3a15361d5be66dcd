"""When to try SMTP AUTH again while a new secret propagates (pure: no clock, no I/O).

A new Entra secret works only after seconds to a minute or more; until then ACS answers 535.
Two costs pull against each other: every attempt is an AUTH (and an Entra token request) at
ACS, and every second between the secret starting to work and the next attempt is time the
rotation waits for nothing. Doubling waits (1, 2, 4, 8 s, ...) overshoot a delay of D seconds
by up to about D. Here the gap between two attempt starts is a share of the time already
spent (`fraction`), never below `initial` nor above `max`, so the overshoot stays within
max(`initial`, `fraction` x D) plus jitter and one handshake, for every delay; and a secret
that never works costs few attempts over the verify timeout, because late gaps are long.

With the defaults, worst cases (no handshake time counted) are 1.5 s late for delays up to
about 13 s and 11 % of the delay beyond, that is within delay + max(2 s, 15 %) with half a
second left for the handshake; over a 300 s verify timeout one app makes 39 attempts (one per
7.7 s). `bench/pacing.py` measures both against the sandbox relay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The verification schedule: gap(t) = min(max, max(initial, fraction x t)) + jitter,
    where t is the start of the attempt that failed, in seconds since verification began."""

    initial: float = 1.4
    max: float = 30.0
    jitter: float = 0.1
    fraction: float = 0.11

    def gap(self, started: float) -> float:
        """Seconds from the start of an attempt begun `started` s in to the next start,
        jitter left out."""
        return min(self.max, max(self.initial, self.fraction * started))


def next_start(backoff: Backoff, started: float, jitter: float = 0.0) -> float:
    """When the attempt after one begun at `started` begins (`jitter` in [0, backoff.jitter])."""
    return started + backoff.gap(started) + jitter


def wait_before_next(backoff: Backoff, started: float, now: float, jitter: float = 0.0) -> float:
    """Seconds to sleep at `now` (since verification began) before the next attempt, the
    previous one having begun at `started`; 0 when that attempt took longer than the gap."""
    return max(0.0, next_start(backoff, started, jitter) - now)
