"""Consumers: App Service / Functions sites whose Key Vault references use our secrets.

App Service caches what a Key Vault reference resolves and refetches it every 24 hours,
which is why old secrets keep a 48 h grace. It also says what each reference resolved
(``GET {site}/config/configreferences/appsettings`` and ``.../connectionstrings``,
ApiKVReference) and resolves them again on request (``POST .../appsettings/refresh``),
documented in "Use Key Vault references as app settings" (section "Understand
rotation"). With these, the rotator can *see* that a consumer took the new password
instead of assuming it did.

- `scan`: once per run, the references of every site (the sites of
  ``ROTATION_CONSUMER_SITES``, or every site and slot in ``ROTATION_SUBSCRIPTION_IDS``)
  that point at our vault. A site or subscription that cannot be read is remembered as
  unreachable: it may be a consumer, so no app retires early in that run.
- `check`: what one app's consumers resolve, from a scan (no calls).
- `confirm`: after a promotion, refresh the app's consumer sites and poll until every
  reference to its password resolves the new version, or the time limit passes.

Nothing here decides: `policy.early_retirement` reads the resulting `ConsumerCheck`.
A failure here never fails a rotation; it only keeps the grace period.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rotation.core.concurrency import bounded
from rotation.core.ports import WebSites
from rotation.errors import PermissionDenied, describe
from rotation.model import (
    USERNAME_SUFFIX,
    ConsumerCheck,
    ConsumerReference,
    ManagedApp,
    reference_problem,
)
from rotation.settings import Settings
from rotation.telemetry import logs

log = logs.get_logger("rotation.consumers")

#: Seconds between two reads of a site's references while waiting for a confirmation.
POLL_INTERVAL_SECONDS = 5.0
#: Sites read at once during a scan (ARM allows a few thousand reads per 5 minutes).
SCAN_CONCURRENCY = 8
#: Statuses that may still turn into Resolved while we wait (a refresh under way).
PENDING = frozenset({"initialized"})


@dataclass(frozen=True, slots=True)
class ConsumerScan:
    """Every site's references to our vault, and the sites that could not be read."""

    references: dict[str, tuple[ConsumerReference, ...]] = field(default_factory=dict)
    unreachable: tuple[str, ...] = ()
    #: The entries of `unreachable` that the identity was refused (a missing permission,
    #: which `doctor` fails; a site that is gone is only a warning there).
    denied: tuple[str, ...] = ()

    def for_app(self, app: ManagedApp) -> dict[str, tuple[ConsumerReference, ...]]:
        """Site id -> its references to the app's password or username secret."""
        names = _secret_names(app)
        out: dict[str, tuple[ConsumerReference, ...]] = {}
        for site, refs in self.references.items():
            mine = tuple(r for r in refs if r.secret_name.lower() in names)
            if mine:
                out[site] = mine
        return out


class ConsumerTracker:
    def __init__(
        self,
        settings: Settings,
        sites: WebSites,
        *,
        clock: Callable[[], datetime],
        poll_interval: float = POLL_INTERVAL_SECONDS,
    ) -> None:
        self.settings = settings
        self.sites = sites
        self.clock = clock
        self.poll_interval = poll_interval

    async def scan(self) -> ConsumerScan:
        """The references of every consumer candidate that point at our vault. Nothing
        here raises: a subscription, site or slot that cannot be read is unreachable."""
        problems = _Problems()
        site_ids = list(self.settings.consumer_sites)
        if not site_ids:
            site_ids = await self._sites_and_slots(problems)

        async def read(site_id: str) -> tuple[str, list[ConsumerReference] | Exception]:
            try:
                return site_id, self._ours(await self.sites.references(site_id))
            except Exception as exc:  # a site's failure is that site's, never the run's
                return site_id, exc

        references: dict[str, tuple[ConsumerReference, ...]] = {}
        reads = [read(s) for s in dict.fromkeys(site_ids)]
        for site_id, result in await bounded(SCAN_CONCURRENCY, reads):
            if isinstance(result, Exception):
                problems.add(site_id, result)
            elif result:
                references[site_id] = tuple(result)
        log.info("consumers.scanned", sites=len(site_ids), consumers=len(references))
        return ConsumerScan(references, tuple(problems.unreachable), tuple(problems.denied))

    async def _sites_and_slots(self, problems: _Problems) -> list[str]:
        """Every site and slot of the scanned subscriptions; failures go to `problems`."""
        found: list[str] = []
        for subscription_id in self.settings.subscription_ids:
            try:
                sites = await self.sites.list_sites(subscription_id)
            except Exception as exc:  # recorded: no app retires early while it lasts
                problems.add(f"subscription {subscription_id}", exc)
                continue
            for site_id in sites:
                found.append(site_id)
                try:
                    found += await self.sites.list_slots(site_id)
                except Exception as exc:  # its slots may be consumers we cannot see
                    problems.add(f"{site_id} (slots)", exc)
        return found

    def check(self, app: ManagedApp, version: str | None, scan: ConsumerScan) -> ConsumerCheck:
        """What the app's consumers resolve now, as the scan saw it (no calls)."""
        refs = [r for site_refs in scan.for_app(app).values() for r in site_refs]
        return ConsumerCheck(
            version,
            tuple(_stamped(r, app, version, self.clock()) for r in refs),
            scan.unreachable,
            app.secret_name,
        )

    async def confirm(
        self, app: ManagedApp, version: str, scan: ConsumerScan, timeout: float
    ) -> ConsumerCheck:
        """Refreshes each consumer site of the app, then polls until every reference to
        its password resolves `version` (or has a problem waiting cannot fix), or until
        `timeout` seconds have passed."""
        sites = scan.for_app(app)
        deadline = time.monotonic() + min(timeout, self.settings.consumer_confirm_timeout_seconds)
        results = await asyncio.gather(
            *(
                self._confirm_site(app, site, version, refs, deadline)
                for site, refs in sites.items()
            )
        )
        refs = tuple(r for site_refs, _ in results for r in site_refs)
        unreachable = (*scan.unreachable, *(problem for _, problem in results if problem))
        check = ConsumerCheck(version, refs, unreachable, app.secret_name)
        log.info(
            "consumers.checked",
            version=version,
            confirmed=check.confirmed,
            sites=len(sites),
            unreachable=len(unreachable),
        )
        return check

    async def _confirm_site(
        self,
        app: ManagedApp,
        site_id: str,
        version: str,
        seen: tuple[ConsumerReference, ...],
        deadline: float,
    ) -> tuple[tuple[ConsumerReference, ...], str | None]:
        """(the site's references as last read, why it could not be read or None)."""
        names = _secret_names(app)
        try:
            await self.sites.refresh(site_id)
            log.info("consumer.refreshed", site=site_id)
            while True:
                current = await self.sites.references(site_id)
                seen = tuple(
                    _stamped(r, app, version, self.clock())
                    for r in self._ours(current)
                    if r.secret_name.lower() in names
                )
                if _settled(seen) or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
        except Exception as exc:  # a site's failure is that site's, never the rotation's
            return seen, _unreachable(site_id, describe(exc))
        for ref in seen:
            if ref.confirmed_at is not None:
                log.info(
                    "consumer.confirmed",
                    site=site_id,
                    setting=ref.setting,
                    setting_type=ref.setting_type,
                    secret_name=ref.secret_name,
                    active_version=ref.active_version,
                )
            else:
                log.warning(
                    "consumer.unconfirmed",
                    site=site_id,
                    setting=ref.setting,
                    setting_type=ref.setting_type,
                    status=ref.status,
                    active_version=ref.active_version,
                    problem=reference_problem(ref, app.secret_name),
                )
        return seen, None

    def _ours(self, refs: Sequence[ConsumerReference]) -> list[ConsumerReference]:
        vault = self.settings.key_vault_name
        return [r for r in refs if r.vault_name.lower() == vault]


@dataclass
class _Problems:
    """What a scan could not read, and which of those the identity was refused."""

    unreachable: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)

    def add(self, site: str, exc: Exception) -> None:
        line = _unreachable(site, describe(exc))
        self.unreachable.append(line)
        if isinstance(exc, PermissionDenied):
            self.denied.append(line)


def _unreachable(site: str, why: str) -> str:
    """Logs a consumer candidate that could not be read and says so in one line."""
    log.warning("consumer.unreachable", site=site, error=why)
    return f"{site}: {why}"


def _secret_names(app: ManagedApp) -> frozenset[str]:
    name = app.secret_name.lower()
    return frozenset({name, name + USERNAME_SUFFIX})


def _stamped(
    ref: ConsumerReference, app: ManagedApp, version: str | None, now: datetime
) -> ConsumerReference:
    """The reference, marked confirmed when it resolves `version` (password) or resolves
    at all (the username companion, whose versions are not the password's)."""
    is_password = ref.secret_name.lower() == app.secret_name.lower()
    ok = ref.resolves(version) if is_password else ref.problem is None
    return dataclasses.replace(ref, confirmed_at=now if ok else None)


def _settled(refs: Sequence[ConsumerReference]) -> bool:
    """Nothing left to wait for: every reference confirmed, or stuck on a problem that
    polling cannot fix (pinned, or a failure status other than a pending one)."""
    for ref in refs:
        if ref.confirmed_at is not None:
            continue
        if ref.pinned_version is not None:
            continue
        if not ref.resolved and ref.status.lower() not in PENDING:
            continue
        return False
    return True
