"""Recorded exchanges of the real services, and how an answer is compared with one.

A vendored file (tests/recorded/data/*.json) is a small excerpt of one recording: where it
came from (`source`: repo, path, commit), what was cut (`trimmed`), and its `entries` in
the recorded order. An entry is either an exchange (request + the recorded answer) or a
`seed`: a step the product never takes (deleting a secret, creating an ACS resource) that
the replay performs on the sandbox's state instead, so that later requests meet the same
world the recording did.

Comparison is by form, not by value: ids, times and request ids differ between any two
sessions. What is compared is what the SDKs and our adapters read: the status, the error
code and the message's form, the headers in COMPARED_HEADERS, the body's keys and value
types (recursively, list items merged), and paging (whether a next link is there, null or
absent, and its path and query names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DATA = Path(__file__).parent / "data"

#: Headers an SDK or adapter reads: azure-core (content type, request ids in errors,
#: Retry-After variants, the bearer challenge), kiota (request-id, client-request-id),
#: azure-storage-blob (ETag, lease ids). A header the recording lacks is not compared
#: (the test proxy strips some): only what the real service was seen to send.
COMPARED_HEADERS = (
    "content-type",
    "www-authenticate",
    "retry-after",
    "retry-after-ms",
    "x-ms-retry-after-ms",
    "x-ms-request-id",
    "x-ms-client-request-id",
    "x-ms-correlation-request-id",
    "request-id",
    "client-request-id",
    "etag",
    "x-ms-lease-id",
)
NEXT_LINKS = ("nextLink", "@odata.nextLink")
#: Key Vault prefixes its messages with an AKV code ("AKV10000: Request is missing ...").
_CODED_MESSAGE = re.compile(r"^[A-Z]{2,}\d+: ")


@dataclass(frozen=True)
class Entry:
    """One recorded request and its answer (or a seed step, `seed` set)."""

    index: int
    method: str
    uri: str
    authorized: bool = True
    request_headers: Mapping[str, str] = field(default_factory=dict)
    request_body: Any = None
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    seed: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Recording:
    case: str  # the file's stem: names the differences
    service: str  # vault, arm, graph
    source: Mapping[str, str]
    entries: tuple[Entry, ...]
    #: False for an answer the adapters read but the sandbox does not serve (a request the
    #: rotator never sends, kept for the shape of what it returns; the file says why).
    replayed: bool = True

    @property
    def exchanges(self) -> list[Entry]:
        return [e for e in self.entries if e.seed is None]


def load(path: Path) -> Recording:
    raw = json.loads(path.read_text())
    source = raw["source"]
    if not all(source.get(k) for k in ("repo", "path", "commit")):
        raise ValueError(f"{path.name}: source needs repo, path and commit")
    if raw.get("replayed", True) is False and not raw.get("why_not_replayed"):
        raise ValueError(f"{path.name}: a recording the sandbox does not replay says why")
    entries = tuple(_entry(i, item) for i, item in enumerate(raw["entries"], start=1))
    return Recording(path.stem, raw["service"], source, entries, raw.get("replayed", True))


def load_all() -> list[Recording]:
    return [load(p) for p in sorted(DATA.glob("*.json"))]


def _entry(index: int, item: Mapping[str, Any]) -> Entry:
    if "seed" in item:
        return Entry(index, "", "", seed=item["seed"])
    return Entry(
        index,
        item["method"],
        item["uri"],
        authorized=item.get("authorized", True),
        request_headers={k.lower(): v for k, v in (item.get("requestHeaders") or {}).items()},
        request_body=item.get("requestBody"),
        status=item["status"],
        headers={k.lower(): v for k, v in (item.get("headers") or {}).items()},
        body=item.get("body"),
    )


# ----- shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    fields: Mapping[str, Shape]


@dataclass(frozen=True)
class Arr:
    item: Shape | None  # None: every list seen was empty


@dataclass(frozen=True)
class Scalar:
    types: frozenset[str]


Shape = Obj | Arr | Scalar


def shape(value: Any) -> Shape:
    """A JSON value's form: objects by key, lists by the union of their items' forms."""
    if isinstance(value, dict):
        return Obj({k: shape(v) for k, v in value.items()})
    if isinstance(value, list):
        item: Shape | None = None
        for v in value:
            item = shape(v) if item is None else union(item, shape(v))
        return Arr(item)
    return Scalar(frozenset({_type(value)}))


def union(a: Shape, b: Shape) -> Shape:
    if isinstance(a, Obj) and isinstance(b, Obj):
        keys = list(a.fields) + [k for k in b.fields if k not in a.fields]
        return Obj({k: _union_opt(a.fields.get(k), b.fields.get(k)) for k in keys})
    if isinstance(a, Arr) and isinstance(b, Arr):
        return Arr(
            a.item if b.item is None else b.item if a.item is None else union(a.item, b.item)
        )
    return Scalar(_kinds(a) | _kinds(b))


def _union_opt(a: Shape | None, b: Shape | None) -> Shape:
    if a is None or b is None:
        found = a or b
        assert found is not None
        return found
    return union(a, b)


def _kinds(s: Shape) -> frozenset[str]:
    if isinstance(s, Scalar):
        return s.types
    return frozenset({"object" if isinstance(s, Obj) else "array"})


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _name(s: Shape) -> str:
    return "|".join(sorted(_kinds(s)))


def shape_differences(recorded: Shape, here: Shape, path: str = "body") -> Iterator[str]:
    """What `here` lacks, adds or types differently from `recorded`."""
    if isinstance(recorded, Obj) and isinstance(here, Obj):
        for key, sub in recorded.fields.items():
            if key in NEXT_LINKS and path == "body":
                continue  # paging is compared on its own
            if key not in here.fields:
                yield f"{path}.{key}: absent here ({_name(sub)} recorded)"
            else:
                yield from shape_differences(sub, here.fields[key], f"{path}.{key}")
        for key, sub in here.fields.items():
            if key not in recorded.fields and not (key in NEXT_LINKS and path == "body"):
                yield f"{path}.{key}: extra here ({_name(sub)}), not recorded"
    elif isinstance(recorded, Arr) and isinstance(here, Arr):
        if recorded.item is not None and here.item is not None:
            yield from shape_differences(recorded.item, here.item, path + "[]")
    elif _kinds(recorded) != _kinds(here):
        yield f"{path}: {_name(recorded)} recorded, {_name(here)} here"


# ----- one answer against its recording -------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the sandbox said to a replayed request."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: Any


def differences(entry: Entry, answer: Answer) -> list[str]:
    """Every way `answer` differs from the recorded one, each a short stable sentence."""
    if answer.status != entry.status:
        return [f"status: {entry.status} recorded, {answer.status} here"]
    found = list(header_differences(entry.headers, answer.headers))
    if isinstance(entry.body, dict) and isinstance(entry.body.get("error"), dict):
        found += error_differences(entry.body["error"], answer.body)
    elif entry.body is not None or answer.body is not None:
        found += shape_differences(shape(entry.body), shape(answer.body))
        found += paging_differences(entry.body, answer.body)
    return found


def header_differences(recorded: Mapping[str, str], here: Mapping[str, str]) -> Iterator[str]:
    for name in COMPARED_HEADERS:
        if name not in recorded:
            continue
        if name not in here:
            yield f"header {name}: absent here"
        elif name == "content-type" and _media(recorded[name]) != _media(here[name]):
            yield f"header content-type: {recorded[name]!r} recorded, {here[name]!r} here"
        elif name == "www-authenticate" and _challenge(recorded[name]) != _challenge(here[name]):
            rec, got = _challenge(recorded[name]), _challenge(here[name])
            yield f"header www-authenticate: {rec} recorded, {got} here"


def _media(value: str) -> str:
    return value.replace(" ", "").lower()


def _challenge(value: str) -> tuple[str, tuple[str, ...]]:
    """A challenge's scheme and parameter names (their values name hosts and tenants)."""
    scheme, _, params = value.strip().partition(" ")
    names = re.findall(r"([A-Za-z_]+)=", params)
    return scheme, tuple(sorted(set(names)))


def error_differences(recorded: Mapping[str, Any], here: Any) -> list[str]:
    error = here.get("error") if isinstance(here, dict) else None
    if not isinstance(error, dict):
        return ["body.error: absent here"]
    found = list(shape_differences(shape(recorded), shape(error), "body.error"))
    if recorded.get("code") != error.get("code"):
        found.append(f"error.code: {recorded.get('code')!r} recorded, {error.get('code')!r} here")
    rec_msg, msg = recorded.get("message"), error.get("message")
    coded = [isinstance(m, str) and bool(_CODED_MESSAGE.match(m)) for m in (rec_msg, msg)]
    if isinstance(rec_msg, str) and isinstance(msg, str) and coded[0] != coded[1]:
        form = "with" if coded[0] else "without"
        found.append(f"error.message: recorded {form} a service code prefix, here not")
    return found


def paging_differences(recorded: Any, here: Any) -> Iterator[str]:
    if not isinstance(recorded, dict):
        return
    here = here if isinstance(here, dict) else {}
    for key in NEXT_LINKS:
        if key not in recorded:
            if key in here:
                yield f"{key}: extra here, not recorded"
            continue
        rec, got = recorded[key], here.get(key, ...)
        if got is ...:
            yield f"{key}: {'null' if rec is None else 'a link'} recorded, absent here"
        elif rec is None and got is not None:
            yield f"{key}: null (last page) recorded, a link here"
        elif rec is not None and got is None:
            yield f"{key}: a link recorded, null (last page) here"
        elif isinstance(rec, str) and isinstance(got, str):
            yield from _link_differences(key, rec, got)


def _link_differences(key: str, recorded: str, here: str) -> Iterator[str]:
    rec, got = urlsplit(recorded), urlsplit(here)
    if not rec.scheme or rec.scheme != got.scheme:
        yield f"{key}: {rec.scheme or 'relative'} recorded, {got.scheme or 'relative'} here"
    rec_names = sorted({k for k, _ in parse_qsl(rec.query, keep_blank_values=True)})
    names = sorted({k for k, _ in parse_qsl(got.query, keep_blank_values=True)})
    if rec_names != names:
        yield f"{key}: query {rec_names} recorded, {names} here"
    if _segments(rec.path) != _segments(got.path):
        yield f"{key}: path form {rec.path!r} recorded, {got.path!r} here"


def _segments(path: str) -> int:
    return len([s for s in path.split("/") if s])
