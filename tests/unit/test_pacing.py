"""The verification schedule (rotation.core.pacing), checked as the pure function it is."""

from __future__ import annotations

import itertools

import pytest

from bench.pacing import allowed_lateness, attempt_starts
from rotation.core.pacing import (
    Backoff,
    next_start,
    wait_before_next,
)

#: One failed-then-passing SMTP conversation (connect, STARTTLS, AUTH) takes time too; the
#: bench world adds 150 ms per connection, real ACS a few hundred ms.
HANDSHAKE = 0.4
VERIFY_TIMEOUT = 300.0


def first_start_at_or_after(starts: list[float], delay: float) -> float:
    return next(t for t in starts if t >= delay)


@pytest.mark.parametrize("jitter", [0.0, Backoff().jitter])
def test_every_delay_up_to_the_verify_timeout_is_verified_within_the_target(
    jitter: float,
) -> None:
    """delay + max(2 s, 15 %) for each delay from 0.1 s to the verify timeout, with the
    largest jitter on every gap and a handshake on top."""
    starts = attempt_starts(Backoff(), VERIFY_TIMEOUT + 60, jitter=jitter)
    late = []
    for tenths in range(1, int(VERIFY_TIMEOUT * 10) + 1):
        delay = tenths / 10
        verified = first_start_at_or_after(starts, delay) + HANDSHAKE
        if verified - delay > allowed_lateness(delay):
            late.append(delay)
    assert late == []


@pytest.mark.parametrize("delay", [3.0, 15.0, 60.0])
def test_the_issue_delays_are_verified_within_the_target(delay: float) -> None:
    backoff = Backoff()
    starts = attempt_starts(backoff, 2 * delay + 10, jitter=backoff.jitter)
    assert first_start_at_or_after(starts, delay) + HANDSHAKE <= delay + allowed_lateness(delay)


@pytest.mark.parametrize("jitter", [0.0, Backoff().jitter])
def test_a_secret_that_never_works_costs_at_most_one_attempt_per_5_s_of_the_verify_timeout(
    jitter: float,
) -> None:
    attempts = len(attempt_starts(Backoff(), VERIFY_TIMEOUT, jitter=jitter))
    assert attempts <= VERIFY_TIMEOUT / 5


def test_doubling_would_have_missed_the_target_at_15_s() -> None:
    """Why the schedule changed: 1, 2, 4, 8 s waits start attempts at 0, 1, 3, 7, 15, 31."""
    doubling = [0.0, 1.0, 3.0, 7.0, 15.0, 31.0]
    assert first_start_at_or_after(doubling, 15.1) - 15.1 > allowed_lateness(15.1)


def test_gaps_grow_with_time_spent_between_initial_and_max() -> None:
    backoff = Backoff(initial=1.0, max=20.0, jitter=0.0, fraction=0.1)
    assert backoff.gap(0.0) == 1.0
    assert backoff.gap(50.0) == pytest.approx(5.0)
    assert backoff.gap(10_000.0) == 20.0
    starts = attempt_starts(backoff, 1_000.0)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(gaps))
    assert max(gaps) == pytest.approx(20.0)


def test_the_wait_counts_from_the_previous_attempt_start_not_its_end() -> None:
    backoff = Backoff(initial=2.0, max=30.0, jitter=0.0, fraction=0.1)
    assert next_start(backoff, 10.0) == 12.0
    assert wait_before_next(backoff, started=10.0, now=10.5) == pytest.approx(1.5)
    assert wait_before_next(backoff, started=10.0, now=13.0) == 0.0  # the attempt overran
    assert wait_before_next(backoff, started=10.0, now=10.5, jitter=0.25) == pytest.approx(1.75)


def test_allowed_lateness_is_2_s_or_15_percent() -> None:
    assert allowed_lateness(3.0) == 2.0
    assert allowed_lateness(15.0) == pytest.approx(2.25)
    assert allowed_lateness(60.0) == pytest.approx(9.0)
