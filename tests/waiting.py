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


async def cancel(task: asyncio.Task[object], timeout: float = 10.0) -> None:
    """Cancels `task` the way a crash would, and waits until it has stopped.

    Python 3.11's asyncio.wait_for (used inside aiosmtplib and httpcore) can swallow a
    cancellation that lands just as the awaited I/O completes; the task then runs on. So
    the cancellation is repeated until the task has really ended."""
    async with asyncio.timeout(timeout):
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
    error = None if task.cancelled() else task.exception()
    if error is not None:
        raise error
