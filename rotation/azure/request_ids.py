"""The ids a cloud service gives each request, read from a failed answer for the operator.

Microsoft support asks for them first: Graph's ``request-id`` and ``client-request-id``
(learn.microsoft.com/graph/errors), Key Vault's and ARM's ``x-ms-request-id`` (ARM also
``x-ms-correlation-request-id``). Adapters append them to the messages of the errors they
raise, so the log line of a failed app carries them. They identify requests, not secrets.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The headers worth quoting, most specific first.
HEADERS = (
    "request-id",
    "client-request-id",
    "x-ms-request-id",
    "x-ms-correlation-request-id",
)


def from_headers(headers: Mapping[str, str] | None) -> str:
    """ "request-id 1234, client-request-id 5678" for the id headers present, else ""."""
    if not headers:
        return ""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    found = [f"{name} {lowered[name]}" for name in HEADERS if lowered.get(name)]
    return ", ".join(found)


def of(exc: BaseException) -> str:
    """The request ids of a failed SDK call: azure-core's HttpResponseError carries the
    response, kiota's APIError its headers."""
    headers = getattr(exc, "response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    try:
        return from_headers(headers)
    except (AttributeError, TypeError):
        return ""


def suffix(exc: BaseException) -> str:
    """ "; request-id ..." to append to a reason, or ""."""
    ids = of(exc)
    return f"; {ids}" if ids else ""
