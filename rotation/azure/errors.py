"""What every Azure adapter reads from a failed call, and how ARM failures read to an operator.

The adapters (arm, web, vault, entra) each translate SDK exceptions into rotation.errors
types inside one mapping context manager, shaped like httpx's ``map_exceptions``; the
pieces they share live here: the retry settings, what a refusal is, the service's error code,
the first line of its message (with the request ids support asks for): `reason`, the one way
an adapter words what a service said; Entra's refusal of a token for an endpoint it does not
know (a wrong endpoint setting), and the ARM mapping, written once, which the ACS reader
(acs.py) and the App Service reader (app_service.py, with its own 403 wording) both use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from rotation.errors import (
    GRANT_DELAY,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RotationError,
    ServiceUnavailable,
)
from rotation.telemetry import redaction

#: azure-core retry policy for ARM and Key Vault: up to 5 retries, exponential back-off
#: from 0.8 s capped at 30 s, and Retry-After honoured whenever the service sends it.
RETRY: Mapping[str, float] = {
    "retry_total": 5,
    "retry_backoff_factor": 0.8,
    "retry_backoff_max": 30,
}


def is_refusal(status: int | None) -> bool:
    """A 4xx other than 429: the service refused the request, so a retry cannot help."""
    return status is not None and 400 <= status < 500 and status != 429


def error_code(exc: BaseException) -> str | None:
    """The service's error code (``error.code`` of the ARM / Key Vault / OData error body)."""
    code = getattr(getattr(exc, "error", None), "code", None)
    return str(code) if code else None


def first_line(exc: BaseException, limit: int = 300, *, or_str: bool = True) -> str:
    """The first line of the service's message, else of ``str(exc)`` when `or_str` ("" when
    there is neither)."""
    error = getattr(exc, "error", None)
    text = getattr(error, "message", None) or getattr(exc, "message", None)
    text = str(text or (exc if or_str else "")).strip()
    return text.splitlines()[0][:limit] if text else ""


def reason(exc: BaseException, *, code: bool = True) -> str:
    """The one way an adapter words what a service (or library) said when it failed:
    "Code: first line; request-id ...", with Entra's own words (the AADSTS line) when a
    credential passed them on below its summary, and the type's name when nothing was
    said. Scrubbed: a service never echoes a secret, but its text is not ours."""
    text = str(exc)
    entra = AADSTS.search(text)
    line = entra.group(0)[:300] if entra else first_line(exc) or type(exc).__name__
    found = error_code(exc) if code else None
    return redaction.scrub((f"{found}: {line}" if found else line) + request_ids_suffix(exc))


#: Entra's error line (DefaultAzureCredential puts its own summary first, the cause below).
AADSTS = re.compile(r"AADSTS\d+:[^\r\n]*")


#: Entra's code for a token requested for a resource it does not know: a mistyped or
#: wrong-cloud endpoint setting (AADSTS500011, 400 invalid_resource).
UNKNOWN_RESOURCE = "AADSTS500011"


def unknown_resource(exc: BaseException, endpoint: str, setting: str) -> str | None:
    """The operator's message when `exc` is Entra refusing a token for `endpoint` because
    no such resource exists in the tenant; None for any other failure."""
    if UNKNOWN_RESOURCE not in str(exc):
        return None
    return (
        f"Entra knows no resource {endpoint} ({UNKNOWN_RESOURCE}: invalid_resource): check "
        f"{setting} and ROTATION_CLOUD"
    )


def _reader_missing(what: str, why: str) -> str:
    return (
        f"could not read {what}: grant the rotator's identity the Reader role on the "
        f"subscription or resource ({why}); {GRANT_DELAY}"
    )


@contextmanager
def map_arm_errors(
    what: str, forbidden: Callable[[str, str], str] = _reader_missing
) -> Iterator[None]:
    """Translates a failed Azure Resource Manager call on `what` into a rotation error that
    says how to fix it; `forbidden(what, reason)` words a 403 (by default: the Reader role).
    Our own errors pass through untouched."""
    try:
        yield
    except RotationError:
        raise
    except Exception as exc:  # translated, never swallowed
        status = exc.status_code if isinstance(exc, HttpResponseError) else None
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            raise NotFound(f"{what} not found ({reason(exc)})") from None
        wrong_endpoint = unknown_resource(exc, "of Azure Resource Manager", "ROTATION_ARM_URL")
        if wrong_endpoint is not None:
            raise InvalidRequest(f"could not read {what}: {wrong_endpoint}") from None
        if isinstance(exc, ClientAuthenticationError) and exc.status_code in (None, 401):
            raise PermissionDenied(
                f"could not read {what}: the rotator's identity failed to authenticate to "
                f"Azure Resource Manager ({reason(exc)})"
            ) from None
        if status == 403:
            raise PermissionDenied(forbidden(what, reason(exc))) from None
        if is_refusal(status):
            raise InvalidRequest(
                f"Azure Resource Manager refused to read {what} ({reason(exc)})"
            ) from None
        if isinstance(exc, HttpResponseError | ServiceRequestError | ServiceResponseError):
            raise ServiceUnavailable(
                f"Azure Resource Manager kept failing while reading {what} ({reason(exc)}); "
                "the next run tries again"
            ) from None
        raise


# ----- request ids ----------------------------------------------------------------------------
#: The ids a cloud service gives each request, which Microsoft support asks for first:
#: Graph's ``request-id`` and ``client-request-id`` (learn.microsoft.com/graph/errors), Key
#: Vault's and ARM's ``x-ms-request-id`` (ARM also ``x-ms-correlation-request-id``); most
#: specific first. They identify requests, not secrets.
REQUEST_ID_HEADERS = (
    "request-id",
    "client-request-id",
    "x-ms-request-id",
    "x-ms-correlation-request-id",
)


def _from_headers(headers: Mapping[str, str] | None) -> str:
    """ "request-id 1234, client-request-id 5678" for the id headers present, else ""."""
    if not headers:
        return ""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    found = [f"{name} {lowered[name]}" for name in REQUEST_ID_HEADERS if lowered.get(name)]
    return ", ".join(found)


def request_ids(exc: BaseException) -> str:
    """The request ids of a failed SDK call: azure-core's HttpResponseError carries the
    response, kiota's APIError its headers."""
    headers = getattr(exc, "response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    try:
        return _from_headers(headers)
    except (AttributeError, TypeError):
        return ""


def request_ids_suffix(exc: BaseException) -> str:
    """ "; request-id ..." to append to a reason, or ""."""
    ids = request_ids(exc)
    return f"; {ids}" if ids else ""
