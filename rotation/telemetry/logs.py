"""The logging set-up: structlog and stdlib logging through one redacting pipeline.

Every line, ours (structlog) or a library's (stdlib logging), goes through the same
processors and is scrubbed by rotation/telemetry/redaction.py twice: as an event (secret-looking
keys blanked, registered values and credential-shaped text replaced) and as the rendered
line. Every record is also scrubbed when it is made (redaction's record scrubber), so a
handler added later, such as an OpenTelemetry exporter, never sees a raw record.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Literal, TextIO

import structlog
from structlog.typing import Processor

from rotation.telemetry.redaction import (
    install_record_scrubber,
    redact_event,
    register_secret,
    scrub_rendered,
)

#: Libraries that log every HTTP exchange (or SMTP line) at INFO: the SDKs, their HTTP
#: stacks, the SMTP client and server.
_CHATTY = ("azure", "msal", "httpx", "httpcore", "kiota", "aiosmtplib", "mail.log")

Format = Literal["auto", "json", "console"]


def configure(
    fmt: Format = "auto",
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    known_secrets: Iterable[str | None] = (),
    keep_handlers: bool = False,
) -> None:
    """Routes structlog and stdlib logging through one redacting pipeline.

    JSON (one object a line) in Azure, where Application Insights parses it; a readable
    console format on a terminal. `known_secrets` are values the process was given (for
    example a client secret in the environment) that must never be printed either.
    `keep_handlers` keeps the root handlers already installed (the Functions worker's,
    which ships records to Application Insights) and gives them the redacting formatter.
    """
    for value in known_secrets:
        register_secret(value)
    install_record_scrubber()
    stream = stream or sys.stderr
    shared = _shared_processors()
    _configure_structlog(shared)
    formatter = _redacting_formatter(shared, _renderer(fmt, stream))
    _set_root_handlers(formatter, stream, level=level, keep_handlers=keep_handlers)
    _quiet_chatty_libraries(level)


def _renderer(fmt: Format, stream: TextIO) -> Processor:
    """The console format on a terminal ("auto"), else JSON, one object a line."""
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer()


def _shared_processors() -> list[Processor]:
    """What every event goes through, ours (structlog) and libraries' (stdlib) alike:
    context, level, logger name, UTC time, the exception as text, then redaction."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_event,
    ]


def _configure_structlog(shared: list[Processor]) -> None:
    """structlog hands its events to stdlib logging, whose handlers render them."""
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _redacting_formatter(
    shared: list[Processor], renderer: Processor
) -> structlog.stdlib.ProcessorFormatter:
    """One formatter for every handler: libraries' records go through `shared` first, and
    every line is redacted again just before and just after it is rendered."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_event,
            renderer,
            scrub_rendered,
        ],
    )


def _set_root_handlers(
    formatter: logging.Formatter, stream: TextIO, *, level: int, keep_handlers: bool
) -> None:
    """The root logger's handlers (the ones kept, else one on `stream`) all format with
    `formatter`."""
    root = logging.getLogger()
    handlers = list(root.handlers) if keep_handlers else []
    if not handlers:
        handlers = [logging.StreamHandler(stream)]
    for handler in handlers:
        handler.setFormatter(formatter)
    root.handlers[:] = handlers
    root.setLevel(level)


def _quiet_chatty_libraries(level: int) -> None:
    # The SDKs log every HTTP exchange at INFO; keep their warnings and errors only, unless
    # DEBUG was asked for: then everything, scrubbed like the rest.
    for name in _CHATTY:
        logging.getLogger(name).setLevel(
            logging.NOTSET if level <= logging.DEBUG else logging.WARNING
        )


def get_logger(name: str = "rotation") -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
