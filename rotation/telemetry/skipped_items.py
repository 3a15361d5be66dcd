"""Upstream items that belong to no app we can name, skipped: logged, and counted per run.

An adapter that cannot tie a malformed item to an app (a role assignment whose
``properties`` is a string, a service principal whose ``id`` is null) skips it rather than
failing every app (issue 23). It says so here: one ``item.skipped`` line, and one entry in
the collection of the run under way, which the run's report counts. Collections nest with
the task that opened them (a context variable), so concurrent runs keep their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from rotation.telemetry import logs

log = logs.get_logger("rotation.items")


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """One item left out: which service sent it, in which answer, and why."""

    service: str  # "Microsoft Graph", "Key Vault", "Azure Resource Manager", "App Service"
    answer: str  # what was being read: "service principals", "role assignments on <id>"
    reason: str  # the fields that were wrong (rotation.azure.wire.reason); never a value


_collected: ContextVar[list[SkippedItem] | None] = ContextVar("skipped_items", default=None)


def skip(service: str, answer: str, reason: str) -> None:
    """Records one skipped item (logged always, collected when a run collects)."""
    log.warning("item.skipped", service=service, answer=answer, reason=reason)
    collected = _collected.get()
    if collected is not None:
        collected.append(SkippedItem(service, answer, reason))


@contextmanager
def collecting() -> Iterator[list[SkippedItem]]:
    """Collects what `skip` records inside the block (an outer collection keeps its own)."""
    items: list[SkippedItem] = []
    token = _collected.set(items)
    try:
        yield items
    finally:
        _collected.reset(token)
