"""Reading one item of an upstream answer: exactly the fields we use, checked where they enter.

Azure services answer 200 with lists of objects (Graph applications, Key Vault items, role
assignments). One malformed object among them must stay that object's problem (issue 23):
each adapter parses item by item with a pydantic model of the fields it reads (extra fields
ignored, as services add them over time) and gets either the model or a `Problem` whose
reason names the field, never its value (a value could be anything, a secret too).

What an adapter does with a problem is its own decision: an item it can tie to an app flags
that app; an item it cannot tie to anything is skipped, logged and counted
(rotation.telemetry.skipped_items).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StringConstraints,
    ValidationError,
)

from rotation.telemetry.skipped_items import skip

M = TypeVar("M", bound=BaseModel)


class Wire(BaseModel):
    """A model of the fields we read from one upstream object; the others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an item could not be read: the fields that were wrong, and how."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def parse(model: type[M], item: object) -> M | Problem:
    """`item` as `model`, or the problem naming the first fields that were wrong."""
    if not isinstance(item, dict):
        return Problem(f"the item is {_kind(item)}, not an object")
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        return Problem(reason(exc))


def readable(model: type[M], items: Iterable[Any], service: str, answer: str, what: str) -> list[M]:
    """Each item of `answer` as `model`; one that cannot be read names no app, so it is
    skipped: logged and counted (rotation.telemetry.skipped_items), `what` naming it."""
    found = []
    for item in items:
        parsed = parse(model, item)
        if isinstance(parsed, Problem):
            skip(service, answer, f"{what}: {parsed}")
        else:
            found.append(parsed)
    return found


def reason(exc: ValidationError, within: str = "") -> str:
    """The fields a validation failed on and why, in Graph's and ARM's own field names
    (``passwordCredentials[0].endDateTime: missing``); never the values. `within` names
    the object they are in (an event's ``data``: ``data.version: missing``)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        where = (within + path).lstrip(".")
        parts.append(f"{where or 'the item'}: {_words(error)}")
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _words(error: Any) -> str:
    if error["type"] == "missing":
        return "missing"
    words = str(error["msg"]).removeprefix("Value error, ")
    return words.replace("Input should be", "should be")


def _kind(value: object) -> str:
    return "null" if value is None else f"a JSON {type(value).__name__}"


def _text_only(value: object) -> object:
    """A date arrives as text: a number or a boolean is the wrong type, not a timestamp."""
    if value is None:
        raise ValueError("is null, so the time cannot be read")
    if not isinstance(value, str):
        raise ValueError("should be a date and time as text")
    return value


def _epoch(value: object) -> datetime:
    """Key Vault's NumericDate (whole seconds since 1970); one past any real date fails."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("should be whole seconds since 1970 (Key Vault's NumericDate)")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("is not a date Key Vault could have written") from None


#: ISO 8601 with its offset, as Graph and ARM write times (a bare date or time is refused).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_only)]
#: Key Vault's NumericDate, as a UTC datetime.
EpochTime = Annotated[datetime, BeforeValidator(_epoch)]
#: A non-empty string (an id).
Id = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


def _guid(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("should be a GUID as text")
    try:
        return str(UUID(value)).lower()
    except ValueError:
        raise ValueError("is not a GUID") from None


#: A GUID as text, lower-cased (app ids, key ids, tenant ids).
Guid = Annotated[str, BeforeValidator(_guid)]

__all__ = [
    "EpochTime",
    "Guid",
    "Id",
    "Problem",
    "StrictBool",
    "Timestamp",
    "Wire",
    "parse",
    "readable",
    "reason",
]
