"""The rotator as the edges use it: built once from settings, it discovers, plans,
rotates and reports. function_app.py and cli.py call only this.

Its clients come from the one composition root (rotation/azure/clients.py), which imports
the SDKs lazily, so that a cold start of the Function App pays for them only when a trigger
actually runs. The engine gets those clients' ports and a frozen RunConfig, never Settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from rotation.core.drift import drift
from rotation.core.policy import app_state
from rotation.errors import RotationError
from rotation.model import (
    AppOutcome,
    AppState,
    ConsumerCheck,
    Drift,
    ManagedApp,
    Mode,
    RunConfig,
    RunOptions,
    RunReport,
    UsernameSource,
    VaultVersion,
)
from rotation.run.engine import Engine, utc_now
from rotation.run.observe import Unobserved
from rotation.settings import Settings
from rotation.telemetry import skipped_items
from rotation.telemetry.skipped_items import SkippedItem

if TYPE_CHECKING:
    from collections.abc import Callable

    from rotation.azure.clients import Clients, Overrides
    from rotation.run.discovery import Inventory, Skipped


class UnknownApps(RotationError):
    """Some requested app ids are not among the managed apps."""

    def __init__(self, app_ids: Sequence[str]) -> None:
        super().__init__(
            "not managed by this rotator (not found as ACS senders): " + ", ".join(app_ids)
        )
        self.app_ids = list(app_ids)


class EmergencyNeedsApps(RotationError):
    """An emergency run was asked for every app without saying so explicitly."""

    def __init__(self) -> None:
        super().__init__(
            "an emergency rotation removes every other secret at once: it needs the apps "
            "named, or all_apps=True (the CLI's --all-apps with a confirmation)"
        )


@dataclass(frozen=True, slots=True)
class StatusRow:
    app_id: str
    smtp_username: str
    secret_name: str
    key_id: str | None
    expires: datetime | None
    days_left: float | None
    vault_version: str | None
    credentials: int
    state: AppState
    # (username, where it came from), the proven one first
    usernames: tuple[tuple[str, UsernameSource], ...] = ()
    reason: str | None = None  # why an app is skipped
    consumers: ConsumerCheck | None = None  # only when consumer tracking is on
    drift: Drift | None = None  # a hand-written current version (state "drift")

    @property
    def smtp_username_source(self) -> UsernameSource | None:
        """Where the proven username (the first) came from."""
        return self.usernames[0][1] if self.usernames else None

    @classmethod
    def skipped(cls, skip: Skipped) -> StatusRow:
        return cls(skip.app_id, "", "", None, None, None, None, 0, "skipped", reason=skip.reason)

    @classmethod
    def unreadable(cls, obs: Unobserved) -> StatusRow:
        """An app whose own answers could not be used: marked, with the reason (issue 23)."""
        app = obs.app
        return cls(
            app.app_id, app.smtp_username, app.secret_name, None, None, None, None, 0,
            "unreadable", reason=f"{obs.reason}: {obs.error}",
            usernames=tuple(zip(app.usernames, app.username_sources, strict=False)),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Selection:
    """The apps a run or status covers, and the senders it shows as skipped."""

    apps: list[ManagedApp]
    skipped: list[Skipped]
    #: Items of discovery's answers that belong to no app and could not be read.
    items: list[SkippedItem] = dataclasses.field(default_factory=list)


class RotationService:
    def __init__(
        self,
        settings: Settings,
        clients: Clients,
        engine: Engine,
        stack: AsyncExitStack | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.engine = engine
        self._stack = stack or AsyncExitStack()  # what aclose closes

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        overrides: Overrides | None = None,
        config: RunConfig | None = None,
    ) -> RotationService:
        """Builds every client from settings (rotation/azure/clients.py; no network traffic
        yet). `overrides` puts a test's ports in place of the adapters; `config` replaces
        the run configuration settings give (tests scaled down in time shorten its step
        margin)."""
        from rotation.azure.clients import build_clients

        stack = AsyncExitStack()
        clients = build_clients(settings, stack, overrides)
        tracker = None
        if clients.web is not None:
            from rotation.run.consumers import ConsumerTracker

            tracker = ConsumerTracker(settings, clients.web, clock=clock)
        engine = Engine(
            config or settings.run_config(),
            clients.entra,
            clients.vault,
            clients.verifier,
            clock=clock,
            consumers=tracker,
            leases=clients.leases,
        )
        return cls(settings, clients, engine, stack)

    async def __aenter__(self) -> RotationService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes every client (the credential last), each even if another fails to."""
        await self._stack.aclose()

    async def survey(self) -> Inventory:
        """The managed apps and the skipped senders (managed identities, other tenants)."""
        from rotation.run.discovery import survey

        return await survey(self.settings, self.clients.arm, self.clients.entra)

    async def select(self, app_ids: Sequence[str] | None) -> list[ManagedApp]:
        return (await self.choose(app_ids)).apps

    async def choose(self, app_ids: Sequence[str] | None) -> Selection:
        """The managed apps named by `app_ids` (all when none), and the skipped ones named."""
        with skipped_items.collecting() as items:
            inventory = await self.survey()
        if not app_ids:
            return Selection(inventory.apps, inventory.skipped, items)
        by_id = {a.app_id.lower(): a for a in inventory.apps}
        # A sender keyed by its service principal's object id is shown, never named: that id
        # is not an app id, and a named run must not take it for one.
        skipped = {s.app_id.lower(): s for s in inventory.skipped if not s.by_principal}
        unknown = [i for i in app_ids if i.lower() not in by_id and i.lower() not in skipped]
        if unknown:
            raise UnknownApps(unknown)
        wanted = list(dict.fromkeys(i.lower() for i in app_ids))
        return Selection(
            [by_id[i] for i in wanted if i in by_id],
            [skipped[i] for i in wanted if i in skipped],
            items,
        )

    def busy(self, app_ids: Sequence[str]) -> list[str]:
        """The given apps that a run in this process is changing right now."""
        return self.engine.busy(app_ids)

    async def run(
        self,
        options: RunOptions | None = None,
        *,
        on_outcome: Callable[[AppOutcome], None] | None = None,
        chosen: Selection | None = None,
    ) -> RunReport:
        """Rotates the chosen apps (`options`: every due app when None); skipped senders
        are reported as such, never failed. `chosen` (from `choose`) saves a second
        discovery when the caller already has it. `options.budget_seconds` counts from
        here, discovery included (see Engine.run). An emergency over every app needs
        `options.all_apps`: leaving out the ids is never enough for that (a tenant-wide
        outage for consumers that have not re-read)."""
        options = options or RunOptions()
        if (
            options.mode is Mode.EMERGENCY
            and not options.app_ids
            and not options.dry_run
            and not options.all_apps
        ):
            raise EmergencyNeedsApps()
        started = time.monotonic()
        # The listing's task is made inside the collection, so the items it skips count
        # for this run (discovery collects its own: `chosen.items`).
        with skipped_items.collecting() as items:
            async with self._listing(options.app_ids) as listing:
                chosen = chosen or await self.choose(options.app_ids)
                if options.budget_seconds is not None:
                    budget = options.budget_seconds - (time.monotonic() - started)
                    options = dataclasses.replace(options, budget_seconds=budget)
                report = await self.engine.run(
                    chosen.apps,
                    options,
                    skipped=chosen.skipped,
                    on_outcome=on_outcome,
                    listing=listing,
                )
        report.skipped_items = [*chosen.items, *items]
        return report

    @asynccontextmanager
    async def _listing(
        self, app_ids: Sequence[str] | None
    ) -> AsyncIterator[asyncio.Future[dict[str, VaultVersion]] | None]:
        """The vault-wide listing, started before discovery so that the two run side by
        side (it needs nothing discovery finds; design.md, "Parts"); none for named apps,
        which read their own versions. Cancelled when the block ends without it (discovery
        failed, the lease store refused), so no listing outlives its run."""
        if app_ids:
            yield None
            return
        listing = self.engine.start_listing()
        try:
            yield listing
        finally:
            if not listing.done():
                listing.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await listing  # its failure, if any, was the run's to report

    async def status(self, app_ids: Sequence[str] | None = None) -> list[StatusRow]:
        """One row per managed app: what Key Vault serves and how long it stays valid; then
        one per skipped sender, with the reason."""
        async with self._listing(app_ids) as listing:
            chosen = await self.choose(app_ids)
            observations = await self.engine.observe(
                chosen.apps, list_vault=not app_ids, listing=listing
            )
        tracker = self.engine.consumers
        scan = await tracker.scan() if tracker is not None and chosen.apps else None
        now = self.engine.clock()
        rows = []
        for obs in observations:
            if isinstance(obs, Unobserved):
                rows.append(StatusRow.unreadable(obs))
                continue
            current = obs.entry.current
            credential = obs.current_credential
            expires = credential.end if credential else None
            days_left = (expires - now).total_seconds() / 86400 if expires else None
            rows.append(
                StatusRow(
                    app_id=obs.app.app_id,
                    smtp_username=obs.app.smtp_username,
                    secret_name=obs.app.secret_name,
                    key_id=credential.key_id if credential else None,
                    expires=expires,
                    days_left=days_left,
                    vault_version=current.version if current else None,
                    credentials=len(obs.record.credentials) if obs.record else 0,
                    state=app_state(obs.record, obs.entry, now, self.engine.rules),
                    usernames=tuple(zip(obs.app.usernames, obs.app.username_sources, strict=False)),
                    consumers=(
                        tracker.check(obs.app, current.version if current else None, scan)
                        if tracker is not None and scan is not None
                        else None
                    ),
                    drift=drift(obs.entry),
                )
            )
        return rows + [StatusRow.skipped(s) for s in chosen.skipped]
