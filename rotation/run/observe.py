"""What a run (or `status`) knows about each app before it decides: its Entra record and
its Key Vault entry, read with as few requests as the policy allows.

One batched Graph read covers every app. With the vault listing (every secret's current
version in one paged read), only apps that need their version history
(`policy.needs_versions`) cost a Key Vault request of their own; without it (a few named
apps) each app's versions are read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from rotation.core.policy import needs_versions
from rotation.core.ports import Directory, SecretStore
from rotation.errors import PermissionDenied, describe
from rotation.model import AppOutcome, AppRecord, Credential, ManagedApp, VaultEntry, VaultVersion

#: The reason of an app whose Entra record could not be read (its `problem` is the error).
UNREADABLE = "what Entra ID answered about the app cannot be read; nothing was changed"
#: The vault-wide listing (SecretStore.read_current), already under way.
Listing = Awaitable[Mapping[str, VaultVersion]]
#: Builds the failed outcome of an app whose reads failed: (app, reason, error).
ReadFailed = Callable[[ManagedApp, str, str], AppOutcome]


@dataclass(frozen=True, slots=True)
class Observation:
    app: ManagedApp
    record: AppRecord | None
    entry: VaultEntry

    @property
    def current_credential(self) -> Credential | None:
        """The credential of the password Key Vault serves, while Entra still has it."""
        current = self.entry.current
        if self.record is None or current is None:
            return None
        return self.record.credential(current.key_id)


@dataclass(frozen=True, slots=True)
class Unobserved:
    """An app whose own answers could not be used: why (`reason`) and the error."""

    app: ManagedApp
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class Reader:
    directory: Directory
    store: SecretStore
    #: How many apps' Key Vault versions are read at once (apps the listing settles
    #: need no read and do not wait for a turn).
    limit: int

    def start_listing(self) -> asyncio.Future[dict[str, VaultVersion]]:
        """The vault-wide listing, under way from now: it needs nothing discovery finds, so
        it runs beside discovery instead of after it (the run hands it to `observe_each`)."""
        return asyncio.ensure_future(self.store.read_current())

    async def observe(
        self,
        apps: Sequence[ManagedApp],
        *,
        list_vault: bool = True,
        listing: Listing | None = None,
    ) -> list[Observation | Unobserved]:
        """Every app's record and entry, for `status`: a whole read that fails (Graph's
        batch read, the vault listing) raises; an app whose own answer cannot be used is
        marked `Unobserved` with the reason, and the others are read as usual."""
        records, listed = await self._read_all(apps, list_vault, listing)
        return await self._each(apps, records, listed)

    async def observe_each(
        self,
        apps: Sequence[ManagedApp],
        failed: ReadFailed,
        *,
        list_vault: bool = True,
        listing: Listing | None = None,
    ) -> list[Observation | AppOutcome]:
        """`observe` for a run: a failed read fails the apps it concerns (all of them for
        Graph's batch read or the vault listing, one for its own Key Vault read). A refusal
        of the batch read is the identity's, not the apps': it fails the run, once (one
        `run.failed` line rather than the same 403 for every app: the state right after a
        deploy, before the Graph permission is granted). An app whose record Graph answered
        unreadably (`AppRecord.problem`) is failed with that reason, before any write."""
        try:
            records, listed = await self._read_all(apps, list_vault, listing)
        except PermissionDenied:
            raise
        except Exception as exc:
            why = describe(exc)
            reason = "could not read the applications from Entra ID or list the Key Vault"
            return [failed(app, reason, why) for app in apps]
        return [
            failed(o.app, o.reason, o.error) if isinstance(o, Unobserved) else o
            for o in await self._each(apps, records, listed)
        ]

    async def _each(
        self,
        apps: Sequence[ManagedApp],
        records: Mapping[str, AppRecord],
        listed: Mapping[str, VaultVersion] | None,
    ) -> list[Observation | Unobserved]:
        gate = asyncio.Semaphore(self.limit)

        async def read(app: ManagedApp) -> Observation | Unobserved:
            record = records.get(app.app_id.lower())
            if record is not None and record.problem is not None:
                return Unobserved(app, UNREADABLE, record.problem)
            try:
                return await self._one(app, records, listed, gate)
            except Exception as exc:
                return Unobserved(app, "could not read its Key Vault entry", describe(exc))

        return list(await asyncio.gather(*(read(a) for a in apps)))

    async def _read_all(
        self, apps: Sequence[ManagedApp], list_vault: bool, listing: Listing | None
    ) -> tuple[Mapping[str, AppRecord], Mapping[str, VaultVersion] | None]:
        """Graph's batch read of the apps beside the vault listing (`listing`, when one is
        already under way)."""
        ids = [a.app_id for a in apps]
        if not list_vault:
            return await self.directory.read_apps(ids), None
        records, listed = await asyncio.gather(
            self.directory.read_apps(ids), listing or self.store.read_current()
        )
        return records, listed

    async def _one(
        self,
        app: ManagedApp,
        records: Mapping[str, AppRecord],
        listed: Mapping[str, VaultVersion] | None,
        gate: asyncio.Semaphore,
    ) -> Observation:
        record = records.get(app.app_id.lower())
        if listed is not None:
            current = listed.get(app.secret_name.lower())
            if record is None or not needs_versions(record, current):
                return Observation(app, record, VaultEntry(app.secret_name, _only(current)))
        async with gate:
            return Observation(app, record, await self.store.read(app.secret_name))


def _only(current: VaultVersion | None) -> tuple[VaultVersion, ...]:
    return (current,) if current else ()
