"""Waiting on a condition, never on the clock: `await until(lambda: ..., timeout=10)`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], timeout: float = 10.0, poll: float = 0.005) -> None:
    """Returns as soon as `condition()` holds; raises TimeoutError after `timeout` seconds.

    The sandbox changes plain Python state, which has no event to wait on, so this polls
    it; the poll interval bounds latency, the timeout bounds the wait."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (no event exists for sandbox state)
            await asyncio.sleep(poll)
