"""Key Vault's Event Grid events, parsed at the edge: a typed event, or None and a log line.

The schema is Microsoft's "Azure Key Vault as Event Grid source"
(learn.microsoft.com/azure/event-grid/event-schema-key-vault): the Event Grid envelope
(``id``, ``topic``, ``subject``, ``eventType``, ``eventTime``, ``data``, ``dataVersion``,
``metadataVersion``) around a data object of ``Id``, ``VaultName``, ``ObjectType``,
``ObjectName``, ``Version``, ``NBF`` and ``EXP``. That page is not consistent about the data
keys' case: its example writes them as above (``NBF``/``EXP`` upper case, ``"ObjectName "``
with a stray space, NBF and EXP as strings), its property table writes ``id`` in lower case
and NBF/EXP as numbers, and the SDKs' system-event models (@azure/eventgrid
KeyVaultSecretNearExpiryEventData) name them ``id``, ``vaultName``, ``objectType``, ... So
keys are matched trimmed and case-insensitively (as Json.NET, which Microsoft's own .NET
rotation samples deserialize with, matches them), and NBF/EXP are read as numbers or
numeric strings of seconds since 1970.

Key Vault's guidance for consumers (learn.microsoft.com/azure/key-vault/general/
event-grid-overview, "Practices for consuming events") is followed: check the topic is the
vault expected, check the event type is one handled, ignore fields not understood.

Nothing here reads a secret value: the events carry none.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from rotation.azure.wire import reason
from rotation.telemetry import logs
from rotation.telemetry.redaction import echo

log = logs.get_logger("rotation.vault_events")

PREFIX = "Microsoft.KeyVault."


class EventKind(enum.StrEnum):
    """The secret events the rotator subscribes to (infra's includedEventTypes)."""

    NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
    NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
    EXPIRED = "Microsoft.KeyVault.SecretExpired"

    @property
    def short(self) -> str:
        return self.value.removeprefix(PREFIX)


def _text(value: Any) -> Any:
    """Strings trimmed (the published example has ``" ee059b..."`` as a version)."""
    return value.strip() if isinstance(value, str) else value


def _seconds(value: Any) -> Any:
    """NBF/EXP: a number, or a string of digits (the published example), in Unix seconds.

    Not rotation.azure.wire.EpochTime, on purpose (review finding 19): that one reads Key
    Vault's REST NumericDate, always a JSON integer, and nothing else; an event's NBF/EXP
    arrive as strings in Microsoft's example and as numbers in its table, and may be null."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a time must be a number of seconds, not true/false")
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit() or len(value) > 12:
            raise ValueError("a time must be a number of seconds since 1970")
        value = int(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("a time must be a number of seconds since 1970")
    if not 0 <= value < 253402300800:  # datetime's range: year 1970 .. 9999
        raise ValueError("a time must be between 1970 and 9999")
    return datetime.fromtimestamp(value, UTC)


Text = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=2048)]
Seconds = Annotated[datetime | None, BeforeValidator(_seconds)]


class SecretEventData(BaseModel):
    """The event's ``data``: which secret version it is about."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    id: Text
    vault_name: Text
    object_type: Text
    object_name: Annotated[Text, Field(pattern=r"^[0-9a-zA-Z-]{1,127}$")]
    version: Annotated[Text, Field(pattern=r"^[0-9a-fA-F]{32}$")]
    nbf: Seconds = None
    exp: Seconds = None


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    id: Text
    topic: Text
    subject: Text
    event_type: Text
    data: Mapping[str, Any]


#: Data keys as they are matched: trimmed, lower case, without separators.
_DATA_KEYS = {
    "id": "id",
    "vaultname": "vault_name",
    "objecttype": "object_type",
    "objectname": "object_name",
    "version": "version",
    "nbf": "nbf",
    "exp": "exp",
}
_ENVELOPE_KEYS = {
    "id": "id",
    "topic": "topic",
    "subject": "subject",
    "eventtype": "event_type",
    "data": "data",
}


@dataclass(frozen=True, slots=True)
class SecretEvent:
    """One Key Vault secret event, as the rotator acts on it."""

    event_id: str
    kind: EventKind
    topic: str
    vault_name: str
    name: str  # the secret's name (ObjectName)
    version: str  # lower case, as Key Vault's version ids
    not_before: datetime | None
    expires: datetime | None

    def log_fields(self) -> dict[str, str]:
        return {
            "event_id": self.event_id,
            "event_type": self.kind.short,
            "secret_name": self.name,
            "vault_version": self.version,
        }


def _keyed(raw: Mapping[Any, Any], known: Mapping[str, str]) -> dict[str, Any]:
    """Known keys under their model names, matched trimmed and case-insensitively."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(key, str):
            name = known.get(key.strip().replace("_", "").lower())
            if name is not None:
                out[name] = value
    return out


def parse(raw: Any) -> SecretEvent | None:
    """The event, or None (logged with the reason) when it is malformed or not a secret
    event this rotator handles. Never raises: a bad event is dropped, not retried."""
    if not isinstance(raw, Mapping):
        return _dropped("the event is not a JSON object", None)
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        envelope = _Envelope.model_validate(_keyed(raw, _ENVELOPE_KEYS))
    except ValidationError as exc:
        return _dropped(reason(exc, "event"), event_id)
    if not envelope.event_type.startswith(PREFIX):
        return _dropped(f"eventType {echo(envelope.event_type)} is not a Key Vault event", event_id)
    try:
        kind = EventKind(envelope.event_type)
    except ValueError:
        log.info(
            "event.ignored",
            event_id=event_id,
            reason="event type not handled",
            event_type=echo(envelope.event_type, quoted=False),
        )
        return None
    try:
        data = SecretEventData.model_validate(_keyed(envelope.data, _DATA_KEYS))
    except ValidationError as exc:
        return _dropped(reason(exc, "data"), event_id)
    if data.object_type.lower() != "secret":
        return _dropped(f"data.ObjectType {echo(data.object_type)} is not Secret", event_id)
    if not _id_matches(data):
        return _dropped("data.Id does not name data.ObjectName and data.Version", event_id)
    return SecretEvent(
        event_id=envelope.id,
        kind=kind,
        topic=envelope.topic,
        vault_name=data.vault_name,
        name=data.object_name,
        version=data.version.lower(),
        not_before=data.nbf,
        expires=data.exp,
    )


def _id_matches(data: SecretEventData) -> bool:
    """``Id`` is the version's URL, https://<vault>/secrets/<name>/<version>: it must agree."""
    parts = data.id.rstrip("/").split("/")
    return (
        len(parts) >= 3
        and parts[-3].lower() == "secrets"
        and parts[-2].lower() == data.object_name.lower()
        and parts[-1].lower() == data.version.lower()
    )


def _dropped(reason: str, event_id: str | None) -> SecretEvent | None:
    """Logs why the event is dropped; None, the parse's answer for it."""
    log.warning(
        "event.malformed",
        event_id=echo(event_id, quoted=False) if event_id else None,
        reason=reason,
    )
    return None
