"""Microsoft Graph's application and servicePrincipal objects, read item by item.

Each listing item becomes our model or stays its own problem (rotation.azure.wire):

- an application whose ``id`` and ``appId`` can be read belongs to that app: anything else
  wrong with it (``passwordCredentials`` not a list, a credential without ``keyId``, an
  ``endDateTime`` that is null or not a date) flags the app (`AppRecord.problem`), and the
  app is failed or shown with the reason, never planned from half an answer. An
  ``endDateTime`` Graph leaves null is such a problem: an expiry that cannot be read is
  never "ok";
- a service principal whose ``id`` can be read belongs to the role holder of that id: a
  bad ``appId`` (null, not a GUID) or type flags it (`PrincipalEntry.problem`), and
  discovery shows it as skipped with the reason rather than as a ghost app;
- an item whose identity cannot be read belongs to no app: it is skipped, logged and
  counted (rotation.telemetry.skipped_items).

Field meanings: Graph v1.0 application, passwordCredential and servicePrincipal resources
(learn.microsoft.com/graph/api/resources/...). Only GUID app ids are managed: Entra issues
nothing else as an appId.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rotation.azure.wire import Guid, Id, Problem, Timestamp, Wire, parse
from rotation.model import AppRecord, Credential, PrincipalEntry
from rotation.telemetry.skipped_items import skip

GRAPH = "Microsoft Graph"


class _Identity(Wire):
    """What ties an application to an app: its object id and its app id."""

    id: Id
    appId: Guid


class _Password(Wire):
    keyId: Guid
    displayName: str | None = None
    startDateTime: Timestamp | None = None
    endDateTime: Timestamp
    hint: str | None = None


class _Application(_Identity):
    displayName: str | None = None
    createdDateTime: Timestamp | None = None
    passwordCredentials: list[_Password] = []  # noqa: RUF012 (pydantic copies it)


class _Principal(Wire):
    id: Id
    appId: Guid
    servicePrincipalType: str | None = None
    appOwnerOrganizationId: Guid | None = None


def applications(items: Iterable[Any], answer: str) -> list[AppRecord]:
    """Graph's application items as records; a flagged record for an item of a known app
    that is wrong elsewhere; items of no readable app skipped."""
    records = []
    for item in items:
        who = parse(_Identity, item)
        if isinstance(who, Problem):
            skip(GRAPH, answer, f"an application: {who}")
            continue
        found = parse(_Application, item)
        records.append(_record(found) if isinstance(found, _Application) else _flagged(who, found))
    return records


def _record(app: _Application) -> AppRecord:
    return AppRecord(
        object_id=app.id,
        app_id=app.appId,
        display_name=app.displayName or "",
        created=app.createdDateTime,
        credentials=tuple(
            Credential(
                key_id=c.keyId,
                display_name=c.displayName,
                start=c.startDateTime,
                end=c.endDateTime,
                hint=c.hint,
            )
            for c in app.passwordCredentials
        ),
    )


def _flagged(who: _Identity, problem: Problem) -> AppRecord:
    return AppRecord(
        object_id=who.id,
        app_id=who.appId,
        display_name="",
        credentials=(),
        problem=f"{GRAPH} answered its application unreadably ({problem})",
    )


def principals(items: Iterable[Any], answer: str) -> list[PrincipalEntry]:
    """Graph's servicePrincipal items; one whose id is readable but not the rest is
    flagged; one without a readable id skipped."""
    entries = []
    for item in items:
        found = parse(_Principal, item)
        if isinstance(found, _Principal):
            entries.append(_principal(found))
            continue
        object_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(object_id, str) or not object_id.strip():
            skip(GRAPH, answer, f"a service principal: {found}")
            continue
        entries.append(
            PrincipalEntry(
                object_id=object_id.strip().lower(),
                app_id="",
                kind="",
                owner_tenant_id=None,
                problem=f"{GRAPH} answered service principal {object_id.strip().lower()} "
                f"unreadably ({found})",
            )
        )
    return entries


def _principal(sp: _Principal) -> PrincipalEntry:
    return PrincipalEntry(
        object_id=sp.id.lower(),
        app_id=sp.appId,
        # Absent only if Graph ignored $select: treated as an app, which then fails loudly
        # on its first read if it is not one, rather than being hidden as skipped.
        kind=sp.servicePrincipalType or "Application",
        owner_tenant_id=sp.appOwnerOrganizationId,
    )
