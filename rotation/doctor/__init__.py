"""`doctor`: every prerequisite of a rotation, checked against the live services.

`python -m rotation doctor` and ``GET /api/doctor`` run the same checks
(rotation/doctor/checks.py, rotation/doctor/apps.py) and report one line each: ok, warn or fail, and for anything not ok the exact command that
fixes it. A check only reads: no secret is created, written or sent (the SMTP check stops
before AUTH), so doctor is safe to run at any time, right after the first `azd up` included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from rotation.azure.closing import closed_with
from rotation.doctor.shared import Check, Probe, Site
from rotation.settings import Settings

if TYPE_CHECKING:  # rich is for the terminal only: the Function App never imports it
    from rich.console import Console

__all__ = ["Check", "Site", "diagnose", "ok", "render", "settings_failed"]
STYLE: dict[str, str] = {"ok": "green", "warn": "yellow", "fail": "bold red"}


async def diagnose(settings: Settings, site: Site | None = None) -> list[Check]:
    """Runs every check with clients built from `settings` (as RotationService builds them)."""
    from rotation.azure.acs import ArmReader
    from rotation.azure.app_service import WebSiteReader
    from rotation.azure.blob_lease import BlobLeases
    from rotation.azure.entra import EntraAdapter
    from rotation.azure.identity import build_credential
    from rotation.azure.key_vault import VaultAdapter
    from rotation.azure.smtp import SmtpVerifier
    from rotation.azure.trust import trusted_ssl_context
    from rotation.doctor.checks import run_checks

    async with AsyncExitStack() as clients:  # closed on the way out, even after a failure
        credential = closed_with(clients, build_credential(settings))
        probe = Probe(
            settings,
            site or Site(),
            credential,
            closed_with(clients, EntraAdapter.from_settings(settings, credential)),
            closed_with(clients, ArmReader.from_settings(settings, credential)),
            closed_with(clients, VaultAdapter.from_settings(settings, credential)),
            SmtpVerifier(settings.smtp_host, settings.smtp_port, trusted_ssl_context(settings)),
            web=(
                closed_with(clients, WebSiteReader.from_settings(settings, credential))
                if settings.consumers_enabled
                else None
            ),
            leases=(
                closed_with(clients, BlobLeases.from_settings(settings, credential))
                if settings.lease_blob_url
                else None
            ),
        )
        return await run_checks(probe)


def ok(checks: Sequence[Check]) -> bool:
    return not any(c.status == "fail" for c in checks)


def settings_failed(public_message: str, site: Site) -> Check:
    """The one check that can run without valid settings: it names each bad setting."""
    names = list(dict.fromkeys(re.findall(r"ROTATION_[A-Z_]+", public_message)))
    return Check("settings", "fail", public_message, site.set_setting(names))


def render(checks: Sequence[Check], console: Console) -> None:
    """One line per check; a `fix:` line under each one that is not ok."""
    from rich.text import Text

    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        line = Text(f"{check.status:<5}", style=STYLE[check.status])
        line.append(f" {check.name:<{width}}  {check.detail}")
        console.print(line, soft_wrap=True)
        if check.fix and check.status != "ok":
            console.print(Text(f"{'':<5} {'':<{width}}  fix: {check.fix}"), soft_wrap=True)
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    summary = f"{len(checks)} checks: {failed} failed, {warned} warnings"
    console.print(Text(summary, style="bold red" if failed else "bold green"))
