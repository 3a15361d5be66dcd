"""Who asked for a manual run, as far as the platform tells, never how they proved it.

Behind App Service authentication ("Easy Auth") the platform injects the caller's identity
as request headers and refuses to let external requests set them, so they can be trusted
when present (https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities).

With a function key the Functions host knows the key's *name* (it adds it as the claim
`http://schemas.microsoft.com/2017/07/functions/claims/keyid`), but the Python worker's
`HttpRequest` carries headers, query and body only: the claim never reaches this code
(Azure/azure-functions-host#926, MicrosoftDocs/azure-docs#60198). What is logged then is
how the key was presented (header or `code` parameter) and a short SHA-256 fingerprint
that an operator can match against `az functionapp keys list` output; the key itself never.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

#: Easy Auth's identity headers, and the names they are logged under.
PRINCIPAL_HEADERS = {
    "x-ms-client-principal-name": "principal_name",
    "x-ms-client-principal-id": "principal_id",
    "x-ms-client-principal-idp": "identity_provider",
}
KEY_HEADER = "x-functions-key"
KEY_PARAM = "code"
_MAX_FIELD = 200  # a header is the caller's text: keep a log line bounded


def key_fingerprint(key: str) -> str:
    """The first 12 hex digits of the key's SHA-256: names the key, cannot recreate it.
    (`printf %s "$KEY" | sha256sum | cut -c1-12` gives the same for a listed key.)"""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def describe_caller(headers: Mapping[str, str], params: Mapping[str, str]) -> dict[str, str]:
    """Log fields naming the caller. Header names are matched case-insensitively."""
    lowered = {k.lower(): v for k, v in headers.items()}
    caller = {
        field: lowered[header][:_MAX_FIELD]
        for header, field in PRINCIPAL_HEADERS.items()
        if lowered.get(header)
    }
    key, via = lowered.get(KEY_HEADER), "header x-functions-key"
    if not key:
        key, via = params.get(KEY_PARAM), "query parameter code"
    if key:
        caller["function_key"] = f"sha256:{key_fingerprint(key)} (via {via})"
    forwarded = lowered.get("x-forwarded-for", "").split(",")[0].strip()
    if forwarded:
        caller["client_ip"] = forwarded[:_MAX_FIELD]
    return caller or {"caller": "unknown (no key or identity reached the function)"}
