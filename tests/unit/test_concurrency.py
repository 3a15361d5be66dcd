"""rotation.core.concurrency.bounded: many reads, a few at a time, results in the order given."""

from __future__ import annotations

import asyncio

import pytest

from rotation.core.concurrency import bounded


async def _yield(times: int) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


async def test_results_keep_the_order_of_the_work_not_of_completion() -> None:
    finished: list[int] = []

    async def item(i: int) -> str:
        await _yield(10 - i)  # the later an item, the sooner it finishes
        finished.append(i)
        return f"r{i}"

    results = await bounded(10, [item(i) for i in range(10)])

    assert finished == list(range(9, -1, -1))
    assert results == [f"r{i}" for i in range(10)]


async def test_no_more_than_limit_items_run_at_once() -> None:
    running = 0
    most = 0

    async def item(i: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await _yield(3)
        running -= 1
        return i

    assert await bounded(3, [item(i) for i in range(20)]) == list(range(20))
    assert most == 3


async def test_the_first_failure_propagates_as_raised_and_the_others_run_on() -> None:
    """As asyncio.gather (what each copy used before): not an ExceptionGroup, so callers'
    `except RotationError` still works; siblings are not cancelled."""
    release, finished = asyncio.Event(), asyncio.Event()

    async def fails() -> int:
        await _yield(1)
        raise LookupError("item 0 failed")

    async def waits() -> int:
        await release.wait()
        finished.set()
        return 1

    with pytest.raises(LookupError, match="item 0 failed"):
        await bounded(2, [fails(), waits()])

    release.set()
    await asyncio.wait_for(finished.wait(), timeout=5)  # raises TimeoutError if cancelled


async def test_no_work_gives_no_results() -> None:
    assert await bounded(4, []) == []


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match=f"limit must be at least 1, not {limit}"):
        await bounded(limit, [])
