"""`doctor`: every prerequisite of a rotation, checked against the live services.

`python -m rotation doctor` and ``GET /api/doctor`` run the same checks
(rotation/doctor_checks.py, rotation/doctor_apps.py) and report one line each: ok, warn or fail, and for anything not ok the exact command that
fixes it. A check only reads: no secret is created, written or sent (the SMTP check stops
before AUTH), so doctor is safe to run at any time, right after the first `azd up` included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rotation.settings import Settings

if TYPE_CHECKING:  # rich is for the terminal only: the Function App never imports it
    from rich.console import Console

Status = Literal["ok", "warn", "fail"]
STYLE: dict[str, str] = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it went, and the command that fixes it."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True, slots=True)
class Site:
    """Where the rotator runs, so that fix commands name the real Function App."""

    function_app: str = "<function app>"
    resource_group: str = "<resource group>"
    in_azure: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Site:
        """App Service sets WEBSITE_SITE_NAME and WEBSITE_RESOURCE_GROUP in every app."""
        name = environ.get("WEBSITE_SITE_NAME")
        if not name:
            return cls()
        return cls(name, environ.get("WEBSITE_RESOURCE_GROUP") or "<resource group>", True)

    def set_setting(self, names: Sequence[str]) -> str:
        """The command that sets these settings where the rotator reads them."""
        pairs = " ".join(f"{n}=<value>" for n in names) or "ROTATION_<NAME>=<value>"
        if self.in_azure:
            return (
                f"az functionapp config appsettings set -g {self.resource_group} "
                f"-n {self.function_app} --settings {pairs}"
            )
        return f"export {pairs}"


async def diagnose(settings: Settings, site: Site | None = None) -> list[Check]:
    """Runs every check with clients built from `settings` (as RotationService builds them)."""
    from rotation.arm import ArmReader
    from rotation.doctor_checks import Probe, run_checks
    from rotation.entra import EntraAdapter
    from rotation.identity import build_credential
    from rotation.lease import BlobLeases
    from rotation.smtp_check import SmtpVerifier
    from rotation.trust import trusted_ssl_context
    from rotation.vault import VaultAdapter
    from rotation.web import WebSiteReader

    credential = build_credential(settings)
    web = WebSiteReader.from_settings(settings, credential) if settings.consumers_enabled else None
    leases = BlobLeases.from_settings(settings, credential) if settings.lease_blob_url else None
    probe = Probe(
        settings,
        site or Site(),
        credential,
        EntraAdapter.from_settings(settings, credential),
        ArmReader.from_settings(settings, credential),
        VaultAdapter.from_settings(settings, credential),
        SmtpVerifier(settings.smtp_host, settings.smtp_port, trusted_ssl_context(settings)),
        web,
        leases,
    )
    try:
        return await run_checks(probe)
    finally:
        closers = [probe.entra.close, probe.arm.close, probe.vault.close, credential.close]
        optional = [*([web.close] if web else []), *([leases.close] if leases else [])]
        for close in [*closers, *optional]:
            await close()


def ok(checks: Sequence[Check]) -> bool:
    return not any(c.status == "fail" for c in checks)


def as_json(checks: Sequence[Check]) -> dict[str, object]:
    return {"ok": ok(checks), "checks": [c.as_dict() for c in checks]}


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
