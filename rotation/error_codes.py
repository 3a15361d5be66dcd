"""Every ``error.code`` an HTTP answer carries, with its status, and the routes that give it.

One list for programs that branch on a refusal, and for docs/openapi.yaml: ProblemDetail's
``code`` is typed with it (so its schema is this enum, generated), each route's error
statuses there are checked against ROUTES, and a test reads every ``problem(...)`` and
``Refusal(...)`` in the code against STATUS (tests/unit/test_error_codes.py). A code the
code uses and this list lacks fails mypy: ``problem`` and ``Refusal`` take an ErrorCode.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorCode = Literal[
    # the request (POST /api/rotations, GET /api/doctor?format=)
    "malformed_json",
    "duplicate_key",
    "invalid_request",
    "emergency_needs_app_ids",
    "body_too_large",
    "unknown_apps",
    # the run
    "rotation_in_progress",
    "upstream_failed",
    "lease_store_unavailable",
    # the deployment
    "invalid_settings",
    "api_not_configured",
    "signing_keys_unavailable",
    # the caller (rotation/auth.py)
    "token_missing",
    "token_malformed",
    "token_algorithm_refused",
    "token_unknown_key",
    "token_signature_invalid",
    "token_expired",
    "token_not_yet_valid",
    "token_wrong_audience",
    "token_wrong_issuer",
    "token_wrong_tenant",
    "token_claims_missing",
    "token_invalid",
    "role_missing",
    "scope_missing",
]
CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)

_REQUEST: dict[ErrorCode, int] = {
    "malformed_json": 400,
    "duplicate_key": 400,
    "invalid_request": 400,
    "emergency_needs_app_ids": 400,
    "body_too_large": 413,
    "unknown_apps": 404,
    "rotation_in_progress": 409,  # with the report of what the run did with the other apps
    "upstream_failed": 502,  # Graph, Key Vault, ARM or storage failed the run or the listing
    "lease_store_unavailable": 503,
    "invalid_settings": 503,
    "api_not_configured": 503,
    "signing_keys_unavailable": 503,
}
#: The status each code comes with.
STATUS: dict[ErrorCode, int] = {
    **_REQUEST,
    **{code: 401 for code in CODES if code.startswith("token_")},
    "role_missing": 403,
    "scope_missing": 403,
}

#: Refusals every route but health can give: the caller's token and role, and a deployment
#: that cannot check them, or whose settings are invalid.
_CALLER: tuple[ErrorCode, ...] = (
    *(code for code in CODES if STATUS[code] in (401, 403)),
    "invalid_settings",
    "api_not_configured",
    "signing_keys_unavailable",
)
#: The codes each route answers with.
ROUTES: dict[str, tuple[ErrorCode, ...]] = {
    "/rotations": CODES,  # every one: the request, the run, the deployment, the caller
    "/status": (*_CALLER, "upstream_failed"),
    "/doctor": (*_CALLER, "invalid_request"),
    "/health": ("invalid_settings",),
}
