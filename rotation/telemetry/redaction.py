"""Redaction: the secret values this process knows, and the scrubbing that keeps them (and
anything shaped like a credential) out of every log line, HTTP answer, report and message.

Why a registry of values and not just key names: a secret can end up inside a longer
string (an exception text, a URL, a message an SDK logs), where no key name warns us.
Every secret the process creates or is given is registered here the moment it exists,
and every line, ours or a library's through stdlib logging, is scrubbed of all of them
just before it is written. Keys that look like secrets are blanked as well, and so is
credential-shaped text no registry can know in advance: Authorization headers, bearer
tokens and JWTs, `client_secret=` and `access_token` fields (azure-core's network trace,
`logging_enable`, prints request and response headers and bodies at DEBUG).

Scrubbing happens on the record itself, when it is created (a record factory), so every
handler sees only scrubbed records: the console's, the Functions worker's, and any
added later, such as an OpenTelemetry exporter, which would otherwise get raw records.
`redact_event` and `scrub_rendered` are structlog processors by shape only: this module
knows nothing of how logging is set up (rotation/telemetry/logs.py does that, and uses them).
`echo` is the one rule for showing outside text back: scrubbed, then cut short.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from pydantic import SecretStr

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|authorization|credential_value|client_secret|api_?key|sig)$",
    re.IGNORECASE,
)
_MIN_SECRET_LENGTH = 8  # shorter values would blank ordinary words
#: Credentials recognisable by their shape: an auth scheme and its token, a header or
#: field that carries one (JSON, form or Python repr: `"access_token": "..."`,
#: `client_secret=...`, `'Authorization': 'Bearer ...'`), or a JWT anywhere.
_CREDENTIAL_TEXT = re.compile(
    r"(?P<scheme>\bbearer\s+)[A-Za-z0-9\-._~+/]{16,}=*"
    r"|(?P<field>\b(?:authorization|(?:access|refresh|id)_token|client_secret|client_assertion"
    r"|password|x-functions-key)['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+|basic\s+)?[^\s'\"&,}]+"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    re.IGNORECASE,
)
#: A word of which every match of `_CREDENTIAL_TEXT` holds one, in lower case. A line with
#: none (most lines) skips the expression: its alternation costs about 100 ns a character,
#: and it was half of what a log line cost (232 us, now 111 us; py-spy and timeit on the
#: `app.finished` line of `python -m bench.case plan`).
_CREDENTIAL_WORDS = (
    "bearer",
    "authorization",
    "_token",
    "client_secret",
    "client_assertion",
    "password",
    "x-functions-key",
    "eyj",
)
#: The non-ASCII letters re.IGNORECASE matches to an ASCII one (every code point tried, in
#: tests/unit/test_redaction.py): folded first, so no word the expression matches is missed.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
#: Environment variables that hold the rotator's own secrets (azure-identity reads them).
ENVIRONMENT_SECRETS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
)


class SecretRegistry:
    """The secret values this process knows.

    A few values are matched as one compiled alternation (fastest for the common case).
    A run over many apps registers one secret per app, and an alternation of n values
    costs O(n) per line and O(n) to recompile per value added (quadratic over a run:
    44 s of compiling for 1,000 apps, measured in bench/). Past `_REGEX_LIMIT` values, a
    scan keyed by each value's first `_MIN_SECRET_LENGTH` characters takes over: its cost
    per line depends on the line's length, not on how many secrets exist. Both replace
    leftmost first, and the longest value where several start at the same place.
    """

    _REGEX_LIMIT = 64

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._by_prefix: dict[str, tuple[str, ...]] = {}  # used past _REGEX_LIMIT values
        self._lock = threading.Lock()

    def add(self, value: str | SecretStr | None) -> None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not text or len(text) < _MIN_SECRET_LENGTH or text in self._values:
            return
        with self._lock:
            self._values.add(text)
            prefix = text[:_MIN_SECRET_LENGTH]
            # Longest first, so a secret that contains another is scrubbed whole.
            same = (*self._by_prefix.get(prefix, ()), text)
            self._by_prefix[prefix] = tuple(sorted(same, key=len, reverse=True))
            if len(self._values) <= self._REGEX_LIMIT:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            else:
                self._pattern = None

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            return pattern.sub(REDACTED, text)
        return _scan(text, self._by_prefix) if self._by_prefix else text

    def __len__(self) -> int:
        return len(self._values)


def _scan(text: str, by_prefix: Mapping[str, tuple[str, ...]]) -> str:
    """`text` with every value in `by_prefix` (keyed by its first characters) replaced."""
    width = _MIN_SECRET_LENGTH
    parts: list[str] = []
    start = i = 0
    last = len(text) - width
    while i <= last:
        candidates = by_prefix.get(text[i : i + width])
        found = next((v for v in candidates if text.startswith(v, i)), None) if candidates else None
        if found is None:
            i += 1
            continue
        parts += (text[start:i], REDACTED)
        i = start = i + len(found)
    if not parts:
        return text
    parts.append(text[start:])
    return "".join(parts)


SECRETS = SecretRegistry()


def register_secret(value: str | SecretStr | None) -> None:
    """Makes the logging pipeline scrub `value` from every line from now on, as is and
    base64-encoded (the form SMTP AUTH LOGIN sends it in)."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    SECRETS.add(text)
    if text and len(text) >= _MIN_SECRET_LENGTH:
        SECRETS.add(base64.b64encode(text.encode()).decode())


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """The rotator's own secrets among `environ` (for `logs.configure(known_secrets=...)`)."""
    return [environ[name] for name in ENVIRONMENT_SECRETS if environ.get(name)]


def _blank_credential(match: re.Match[str]) -> str:
    return (match.group("scheme") or match.group("field") or "") + REDACTED


def scrub(text: str) -> str:
    """`text` with every registered secret value and credential-shaped text replaced
    (log records, HTTP answers, reports)."""
    if len(text) < _MIN_SECRET_LENGTH:  # shorter than any secret or credential shape
        return text
    if may_hold_credential(text):
        text = _CREDENTIAL_TEXT.sub(_blank_credential, text)
    return SECRETS.scrub(text)


def may_hold_credential(text: str) -> bool:
    """False only when `_CREDENTIAL_TEXT` cannot match `text` (it holds none of the words)."""
    folded = (text if text.isascii() else text.translate(_FOLD)).lower()
    return any(word in folded for word in _CREDENTIAL_WORDS)


def _scrub_value(value: object) -> object:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret_key(k) else _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(v) for v in value]
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", "replace"))
    return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _is_secret_name(key)


@functools.lru_cache(maxsize=1024)  # a log line's keys come from a small set of names
def _is_secret_name(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_event(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank secret-looking keys, scrub secret values everywhere."""
    for key, value in list(event_dict.items()):
        if key == "exc_info":
            continue  # rendered into "exception" by format_exc_info, scrubbed after it
        event_dict[key] = REDACTED if _is_secret_key(key) else _scrub_value(value)
    return event_dict


def scrub_rendered(_logger: object, _method: str, rendered: Any) -> Any:
    """structlog processor after the renderer: whatever it produced, no registered secret
    survives (the last word)."""
    return scrub(rendered) if isinstance(rendered, str) else rendered


# ----- record level: before any handler -------------------------------------------------


def scrub_record(record: logging.LogRecord) -> None:
    """Scrubs `record` in place: its message with its arguments merged in, and its
    exception and stack text (rendered into the message: handlers format `exc_info` each
    their own way, and an exception's text may hold anything).

    Attributes passed with `extra=` are set by `Logger.makeRecord` after the factory has
    run; `_scrub_extra` covers them."""
    if isinstance(record.msg, dict):  # structlog's event dict: keep it a dict
        record.msg = {
            k: REDACTED if _is_secret_key(k) else _scrub_value(v) for k, v in record.msg.items()
        }
    else:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, as text
            message = f"{record.msg!r} {record.args!r}"
        if record.exc_info and record.exc_info[0] is not None:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            message += "\n" + record.exc_text
        record.msg = scrub(message)
        record.args = ()
        record.exc_info = None
        record.exc_text = None
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


_installed_factory: Callable[..., logging.LogRecord] | None = None
_make_record = logging.Logger.makeRecord


def _scrub_extra(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
    # `extra=` attributes land on the record after the factory ran, and exporters
    # (OpenTelemetry's turns them into Application Insights custom dimensions) send them.
    record = _make_record(self, *args, **kwargs)
    extra = kwargs.get("extra", args[8] if len(args) > 8 else None)
    for key, value in (extra or {}).items():
        setattr(record, key, REDACTED if _is_secret_key(key) else _scrub_value(value))
    return record


def install_record_scrubber() -> None:
    """Makes every LogRecord created from now on scrubbed at birth, whichever logger made it
    and whichever handlers (present or added later) receive it. Idempotent; it wraps the
    factory in place, so a factory installed before (OpenTelemetry's) keeps working."""
    global _installed_factory
    current = logging.getLogRecordFactory()
    if _installed_factory is not None and current is _installed_factory:
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        scrub_record(record)
        return record

    _installed_factory = factory
    logging.setLogRecordFactory(factory)
    logging.Logger.makeRecord = _scrub_extra  # type: ignore[method-assign]


# ----- outside text shown back ----------------------------------------------------------
# Outside text is a request's key or id, or a field of an upstream answer that could not be
# read. It can be any size (a 64 kB body may be one key) and hold anything, a secret or a
# control character too. So it is scrubbed, and cut to ECHO_CHARS characters with an
# ellipsis marking the cut: enough to recognise a GUID, a resource name or a field, never
# enough to make an answer grow with its input. One rule for every answer, report and line.

#: The most characters of an outside name or value any answer, report or line shows.
ECHO_CHARS = 60
ELLIPSIS = "…"


def echo(value: object, *, quoted: bool = True) -> str:
    """`value` as it may be shown back: its repr when `quoted` (quotes make the exact text,
    spaces and escapes included, readable inside a sentence), else its text; scrubbed
    first, then cut (cutting first could leave part of a secret the scrubber no longer
    recognises)."""
    text = repr(value) if quoted or not isinstance(value, str) else value
    text = scrub(text)
    if len(text) <= ECHO_CHARS:
        return text
    return text[: ECHO_CHARS - len(ELLIPSIS)] + ELLIPSIS
