"""Clients closed together: each is handed to an AsyncExitStack as it is made.

The stack closes them in reverse order of making (so the credential, made first, goes
last), on success and on failure alike, and attempts every close even when one fails.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Protocol, TypeVar


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def closed_with(clients: AsyncExitStack, client: C) -> C:
    """`client`, to be closed when `clients` closes."""
    clients.push_async_callback(client.close)
    return client
