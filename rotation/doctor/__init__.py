"""`doctor`: every prerequisite of a rotation, checked against the live services.

`python -m rotation doctor` and ``GET /api/doctor`` run the same checks and report one
line each: ok, warn or fail, and for anything not ok the exact command that fixes it and,
for a grant just made, when it takes effect. First the facts are gathered (the identity's
tokens, what discovery finds, what ARM says the identity may do at the vault); then every
check, a function of those facts, runs at once (rotation/doctor/checks.py, apps.py). No
check leaves anything for another, and none can stop the others: a check that breaks is
reported as failed, and doctor always answers.

Nothing is written: no secret is created, written or sent (the SMTP check stops before
AUTH). The one call that is not a read is the consumer sites' Key Vault reference refresh
(with ROTATION_CONSUMERS_ENABLED), which only makes a site re-read its references: doctor
tries it because no document names the permission it needs. Safe to run at any time,
right after the first `azd up` included.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from rotation.doctor import api, apps, checks, events
from rotation.doctor.shared import Check, Clients, Facts, Site
from rotation.errors import describe
from rotation.settings import Settings

if TYPE_CHECKING:  # rich is for the terminal only: the Function App never imports it
    from rich.console import Console

__all__ = [
    "CHECKS",
    "Check",
    "Site",
    "diagnose",
    "lines",
    "ok",
    "render",
    "settings_failed",
    "text",
]
STYLE: dict[str, str] = {"ok": "green", "warn": "yellow", "fail": "bold red"}

CheckFn = Callable[[Facts, Clients], Awaitable[list[Check]]]
#: Every check, in the order an operator fixes things: identity, ACS, apps, vault, storage,
#: consumers, SMTP. The order is only the report's: they run at once.
CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("token", checks.tokens),
    ("graph roles", checks.graph_roles),
    ("acs", checks.acs),
    ("apps", apps.apps),
    ("policies", apps.policies),
    ("vault access", checks.vault_access),
    ("lease store", checks.lease_store),
    ("consumers", checks.consumers),
    ("key vault events", events.key_vault_events),
    ("smtp", checks.smtp),
    ("api", api.api),
)


async def diagnose(settings: Settings, site: Site | None = None) -> list[Check]:
    """Every check, with clients built from `settings` (rotation/azure/clients.py, as for
    RotationService).
    Never raises: what breaks is a failed check."""
    from rotation.azure.clients import open_clients

    here = site or Site()
    try:
        async with open_clients(settings) as clients:  # closed on the way out, even after a failure
            return await run_checks(settings, here, clients)
    except Exception as exc:  # doctor's own answer must never be a traceback
        return [
            _valid_settings(),
            Check("doctor", "fail", f"doctor could not run: {describe(exc)}"),
        ]


async def run_checks(settings: Settings, site: Site, clients: Clients) -> list[Check]:
    from rotation.doctor.facts import gather

    facts = await gather(settings, site, clients)
    found = await asyncio.gather(*(_guarded(name, check, facts, clients) for name, check in CHECKS))
    return [_valid_settings()] + [c for group in found for c in group]


async def _guarded(name: str, check: CheckFn, facts: Facts, clients: Clients) -> list[Check]:
    try:
        return await check(facts, clients)
    except Exception as exc:  # one broken check must not cost the others their lines
        return [Check(name, "fail", f"doctor could not check this: {describe(exc)}")]


def _valid_settings() -> Check:
    return Check("settings", "ok", "every ROTATION_* setting is valid")


def ok(checks: Sequence[Check]) -> bool:
    return not any(c.status == "fail" for c in checks)


def settings_failed(public_message: str, site: Site) -> Check:
    """The one check that can run without valid settings: it names each bad setting."""
    names = list(dict.fromkeys(re.findall(r"ROTATION_[A-Z_]+", public_message)))
    return Check("settings", "fail", public_message, site.set_setting(names))


def lines(checks: Sequence[Check]) -> list[tuple[str, str]]:
    """The report as plain lines, each with its style: one per check, a `fix:` line under
    each one that is not ok, then the count. The command line prints them in colour;
    ``GET /api/doctor?format=text`` (what `azd up` prints at its end) sends them as text."""
    width = max((len(c.name) for c in checks), default=0)
    out: list[tuple[str, str]] = []
    for check in checks:
        out.append((f"{check.status:<5} {check.name:<{width}}  {check.detail}", check.status))
        if check.fix and check.status != "ok":
            out.append((f"{'':<5} {'':<{width}}  fix: {check.fix}", ""))
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    summary = f"{len(checks)} checks: {failed} failed, {warned} warnings"
    out.append((summary, "bold red" if failed else "bold green"))
    return out


def text(checks: Sequence[Check]) -> str:
    """`lines` as one text, a newline after each."""
    return "".join(line + "\n" for line, _ in lines(checks))


def render(checks: Sequence[Check], console: Console) -> None:
    """`lines` on the terminal: a check's status in its colour, the count in red or green."""
    from rich.text import Text

    for line, style in lines(checks):
        if style in STYLE:  # a check's line: only its status is coloured
            shown = Text(line[:5], style=STYLE[style])
            shown.append(line[5:])
        else:
            shown = Text(line, style=style)
        console.print(shown, soft_wrap=True)
