"""Many independent reads, a few at a time: the one helper for bounded concurrency.

Discovery, doctor, the consumer scan and Graph's batched queries each start many reads
that do not depend on each other, and each must keep how many are in flight under a limit
(the service's throttling, the event loop's share of a small Function App).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def bounded(limit: int, work: Iterable[Awaitable[T]]) -> list[T]:
    """The results of `work` in its order, with at most `limit` of them awaited at once.

    Failures behave as `asyncio.gather`'s: the first exception propagates as raised (not
    wrapped in a group, so callers catch our own error types), and the other items are
    not cancelled; they finish in the background. Callers that must not fail on one item
    catch inside the item.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    gate = asyncio.Semaphore(limit)

    async def one(item: Awaitable[T]) -> T:
        async with gate:
            return await item

    return list(await asyncio.gather(*(one(w) for w in work)))
