"""Fencing: an app's writes happen only while its lease is known to be held.

A lease (rotation/azure/blob_lease.py) can be lost while its holder still works: storage
answers a renewal with 409 (it lapsed and another run took it), or renewals keep failing
until it would have lapsed. Neither Entra nor Key Vault takes a fencing token, so the
holder fences itself: every write of an app's steps first calls `check`, which raises
LeaseLost once the lease is lost or may have lapsed. The app's work then stops before its
next write, and the next run finishes it (I5 removes a credential it left behind).

The lease store sets the fence for the block it holds (`fenced`, a context variable, so
each app's task sees only its own); with no lease store there is no fence, and `check`
passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Fence(Protocol):
    def check(self) -> None:
        """Raises LeaseLost when the lease is lost, or may have lapsed, by now."""
        ...


_current: ContextVar[Fence | None] = ContextVar("fence", default=None)


def check() -> None:
    """Before a write: raises LeaseLost when the lease this work holds is lost."""
    fence = _current.get()
    if fence is not None:
        fence.check()


@contextmanager
def fenced(fence: Fence) -> Iterator[None]:
    """`check` inside the block asks `fence`."""
    token = _current.set(fence)
    try:
        yield
    finally:
        _current.reset(token)
