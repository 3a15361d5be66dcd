"""Structure-aware request bodies for fuzzing POST /api/rotations, and an oracle written
without the product's parser.

Bodies are built as JSON *text*, not as Python values passed through json.dumps, so that
they can hold what a dict cannot: duplicate keys (also spelled with \\u escapes), nesting
thousands deep, integer literals of thousands of digits, NaN and Infinity, lone surrogates
and other odd Unicode, byte-order marks, UTF-16, invalid UTF-8, and every JSON type at
every field. The oracle decides, by the API's documented rules, whether a body is a valid
request and whether it asks for a change.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

FIELDS = ("appIds", "mode", "dryRun")
MODES = ("due", "force", "emergency")
MAX_BODY = 64 * 1024  # the API's body limit (413 beyond it)
ODD_TEXT = [
    "\\ud800",  # lone high surrogate, escaped
    "\\udc00x",  # lone low surrogate
    "\\u0000",  # NUL
    "\u202e",  # right-to-left override
    "\ufeff",  # byte-order mark inside a string
    "\U0001f511",  # outside the BMP
    "e\u0301",  # combining accent
    "\u0130",  # dotted capital I: lower() changes its length
    "\uff26\uff2f\uff32\uff23\uff25",  # fullwidth FORCE
    "\\/",  # escaped solidus
]


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def strings(real: list[str]) -> st.SearchStrategy[str]:
    """JSON string literals: plain, odd Unicode, real app ids and near-misses, modes."""
    ids = st.sampled_from(real or [str(uuid.UUID(int=1))])
    return st.one_of(
        st.text(max_size=20).map(_string),
        st.lists(st.sampled_from(ODD_TEXT), min_size=1, max_size=3).map(
            lambda parts: '"' + "".join(parts) + '"'
        ),
        ids.map(_string),
        ids.map(lambda a: _string(a.upper())),
        ids.map(lambda a: _string("{" + a + "}")),
        ids.map(lambda a: _string(a.replace("-", ""))),
        ids.map(lambda a: _string(a + "\u200b")),
        st.uuids().map(lambda u: _string(str(u))),
        st.sampled_from(MODES).map(_string),
        st.sampled_from(MODES).map(lambda m: _string(m.upper())),
        st.sampled_from(MODES).map(lambda m: '"' + "".join(f"\\u{ord(c):04x}" for c in m) + '"'),
    )


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers().map(str),
        st.integers(4000, 6000).map(lambda n: "9" * n),  # past Python's 4,300-digit limit
        st.sampled_from(["-0", "0.0", "1e400", "-1e400", "1e-400", "1E+2", "0.1e1"]),
        st.sampled_from(["NaN", "Infinity", "-Infinity"]),  # Python reads them; JSON has none
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
    )


def keys(real: list[str]) -> st.SearchStrategy[str]:
    """Object keys: the fields, their \\u-escaped spellings, case variants, anything."""
    return st.one_of(
        st.sampled_from(FIELDS).map(_string),
        st.sampled_from(FIELDS).map(lambda f: '"' + f"\\u{ord(f[0]):04x}" + f[1:] + '"'),
        st.sampled_from(FIELDS).map(lambda f: _string(f.lower())),
        strings(real),
    )


def values(real: list[str]) -> st.SearchStrategy[str]:
    """Any JSON value as text, recursively; objects may repeat keys."""
    scalars = st.one_of(st.sampled_from(["null", "true", "false"]), numbers(), strings(real))

    def containers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        arrays = st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
        objects = st.lists(st.tuples(keys(real), inner), max_size=4).map(
            lambda kvs: "{" + ",".join(f"{k}:{v}" for k, v in kvs) + "}"
        )
        return arrays | objects

    return st.recursive(scalars, containers, max_leaves=12)


def deep(real: list[str]) -> st.SearchStrategy[str]:
    """Nesting from a little to far past any recursion limit, inside a field or bare."""
    depth = st.integers(1, 30_000)
    return st.one_of(
        depth.map(lambda d: "[" * d + "]" * d),
        depth.map(lambda d: '{"a":' * d + "1" + "}" * d),
        depth.map(lambda d: '{"appIds":' + "[" * d + "]" * d + "}"),
        depth.map(lambda d: "[" * d),  # never closed
    )


def requests(real: list[str]) -> st.SearchStrategy[str]:
    """Objects built from the three fields (each holding any JSON type, or a valid value),
    in any order, with duplicates, extra keys and real ids mixed with junk."""
    valid_ids = st.lists(st.one_of(strings(real)), max_size=4).map(
        lambda xs: "[" + ",".join(xs) + "]"
    )
    field_values = {
        "appIds": st.one_of(valid_ids, values(real)),
        "mode": st.one_of(st.sampled_from(MODES).map(_string), values(real)),
        "dryRun": st.one_of(st.sampled_from(["true", "false"]), values(real)),
    }
    member = st.one_of(
        *(v.map(lambda text, f=f: f"{_string(f)}:{text}") for f, v in field_values.items()),
        st.tuples(keys(real), values(real)).map(lambda kv: f"{kv[0]}:{kv[1]}"),
    )
    return st.lists(member, max_size=5).map(lambda ms: "{" + ", ".join(ms) + "}")


def encode(text: str, how: str) -> bytes:
    if how == "utf-8":
        return text.encode("utf-8", "surrogatepass")
    if how == "utf-8 with BOM":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if how == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    return text.encode("latin-1", "replace")  # not UTF-8 where it is not ASCII


def bodies(real: list[str]) -> st.SearchStrategy[bytes]:
    texts = st.one_of(
        requests(real),
        requests(real),  # twice: the interesting part
        values(real),
        deep(real),
        requests(real).map(lambda t: t[: len(t) // 2]),  # cut short
    )
    how = st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8 with BOM", "utf-16", "latin-1"])
    return st.one_of(
        st.tuples(texts, how).map(lambda th: encode(*th)),
        st.binary(max_size=200),
    )


# ----- the oracle ------------------------------------------------------------------------


class _Refused(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Refused(f"duplicate {k!r}")
        out[k] = v
    return out


def _constant(name: str) -> Any:
    raise _Refused(name)


def is_guid(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def oracle(body: bytes) -> tuple[bool, bool]:
    """(valid, asks for a change), by the API's rules: a JSON object (RFC 8259: no NaN or
    Infinity; here also no duplicate keys) with at most appIds (GUID strings, at most
    1,000), mode (due, force, emergency; emergency only with appIds) and dryRun (a
    boolean). An empty body means every due app."""
    if len(body) > MAX_BODY:
        return False, False
    if not body.strip():
        return True, False
    try:
        data = json.loads(body, object_pairs_hook=_pairs, parse_constant=_constant)
    except (ValueError, RecursionError):  # also UnicodeDecodeError, _Refused, long ints
        return False, False
    if not isinstance(data, dict) or set(data) - set(FIELDS):
        return False, False
    ids = data.get("appIds", [])
    mode = data.get("mode", "due")
    dry = data.get("dryRun", False)
    valid = (
        isinstance(ids, list)
        and len(ids) <= 1000
        and all(is_guid(i) for i in ids)
        and isinstance(mode, str)
        and mode in MODES
        and isinstance(dry, bool)
        and not (mode == "emergency" and not ids)
    )
    return valid, valid and not dry and mode != "due"
