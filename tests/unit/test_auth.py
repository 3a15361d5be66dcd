"""rotation/auth.py without a sandbox: the header parsing, the role each run needs, the
challenge of each refusal, and TokenCheck against keys held in memory (tests/tokens.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rotation.auth import (
    Caller,
    Refusal,
    Role,
    bearer_token,
    challenge,
    client_address,
)
from rotation.http_api import RotationRequest, role_for
from rotation.model import Mode
from tests.tokens import OPERATOR, app_bearer, bearer, token_check
from tests.unit.test_http_api_runs import SETTINGS


def refused(headers: dict[str, str]) -> Refusal:
    with pytest.raises(Refusal) as caught:
        asyncio.run(token_check(SETTINGS).caller(headers))
    return caught.value


def test_the_scheme_and_header_name_are_case_insensitive() -> None:
    token = bearer(SETTINGS)["Authorization"].removeprefix("Bearer ")
    assert bearer_token({"authorization": f"bearer {token}"}) == token
    assert bearer_token({"AUTHORIZATION": f"  BEARER {token}  "}) == token


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "token_missing"),
        ({"Authorization": "   "}, "token_missing"),
        ({"Authorization": "Basic abc"}, "token_malformed"),
        ({"Authorization": "Bearer a b"}, "token_malformed"),
        ({"Authorization": "Bearer"}, "token_malformed"),
        ({"Authorization": "Bearer " + "a" * 20_000}, "token_malformed"),
    ],
)
def test_a_header_that_is_not_one_bearer_token_is_refused(
    headers: dict[str, str], code: str
) -> None:
    with pytest.raises(Refusal) as caught:
        bearer_token(headers)
    assert (caught.value.status, caught.value.code) == (401, code)


@pytest.mark.parametrize(
    ("body", "role"),
    [
        ({}, Role.ROTATE),
        ({"mode": "force"}, Role.ROTATE),
        ({"mode": "emergency", "appIds": ["3f2504e0-4f89-11d3-9a0c-0305e82c3301"]}, Role.EMERGENCY),
        ({"mode": "emergency", "dryRun": True}, Role.READ),
        ({"dryRun": True}, Role.READ),
    ],
)
def test_each_run_needs_its_role(body: dict[str, Any], role: Role) -> None:
    assert role_for(RotationRequest.model_validate(body)) is role


def test_the_roles_do_not_imply_each_other() -> None:
    """Emergency does not open force, Rotate does not open status: each is assigned alone."""
    for held in Role:
        caller = Caller(OPERATOR, OPERATOR, "user", None, frozenset({held.value}))
        for wanted in Role:
            if wanted is held:
                assert caller.acting_as(wanted).role == held.value
            else:
                with pytest.raises(Refusal) as caught:
                    caller.acting_as(wanted)
                assert (caught.value.status, caught.value.code) == (403, "role_missing")


def test_a_valid_users_token_names_the_user_the_client_and_the_roles() -> None:
    caller = asyncio.run(token_check(SETTINGS).caller(bearer(SETTINGS, [Role.READ.value])))
    assert caller == Caller(
        OPERATOR,
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "user",
        "ops@contoso.example",
        frozenset({"Rotation.Read"}),
    )
    assert caller.acting_as(Role.READ).log_fields() == {
        "caller_type": "user",
        "caller_object_id": OPERATOR,
        "caller_app_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "caller_name": "ops@contoso.example",
        "caller_role": "Rotation.Read",
    }


def test_an_app_only_token_is_an_app_without_a_name() -> None:
    caller = asyncio.run(token_check(SETTINGS).caller(app_bearer(SETTINGS)))
    assert (caller.type, caller.name) == ("app", None)


def test_roles_the_api_does_not_define_are_ignored() -> None:
    token = bearer(SETTINGS, ["Rotation.Read", "Rotation.Admin", "Directory.ReadWrite.All"])
    caller = asyncio.run(token_check(SETTINGS).caller(token))
    assert caller.roles == {"Rotation.Read"}


def test_a_sign_in_name_loses_its_control_characters_and_length() -> None:
    caller = asyncio.run(
        token_check(SETTINGS).caller(
            bearer(SETTINGS, preferred_username='eve\n{"event": "forged"}' + "x" * 500)
        )
    )
    assert caller.name is not None
    assert "\n" not in caller.name
    assert len(caller.name) == 200


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"ver": "1.0"}, 401, "token_invalid"),
        ({"tid": "00000000-0000-0000-0000-000000000001"}, 401, "token_wrong_tenant"),
        ({"azp": "not-a-guid"}, 401, "token_invalid"),
        ({"roles": [1, 2]}, 401, "token_invalid"),
        ({"scp": "User.Read"}, 403, "scope_missing"),
        ({"idtyp": "app"}, 401, "token_invalid"),  # a user's scp in an app-only token
    ],
)
def test_claims_that_do_not_fit_an_entra_v2_token_for_this_api_are_refused(
    changes: dict[str, Any], status: int, code: str
) -> None:
    refusal = refused(bearer(SETTINGS, **changes))
    assert (refusal.status, refusal.code) == (status, code)


def test_a_token_without_roles_is_403() -> None:
    refusal = refused(bearer(SETTINGS, []))
    assert (refusal.status, refusal.code) == (403, "role_missing")


def test_a_key_the_tenant_does_not_publish_is_refused() -> None:
    refusal = refused(bearer(SETTINGS, key=3))
    assert (refusal.status, refusal.code) == (401, "token_unknown_key")


@pytest.mark.parametrize(
    ("status", "code", "header"),
    [
        (401, "token_missing", 'Bearer realm="acs-smtp-rotation"'),
        (
            401,
            "token_malformed",
            'Bearer realm="acs-smtp-rotation", error="invalid_request", '
            'error_description="token_malformed"',
        ),
        (
            401,
            "token_expired",
            'Bearer realm="acs-smtp-rotation", error="invalid_token", '
            'error_description="token_expired"',
        ),
        (
            403,
            "role_missing",
            'Bearer realm="acs-smtp-rotation", error="insufficient_scope", '
            'error_description="role_missing"',
        ),
        (403, "something_else", None),
        (400, "malformed_json", None),
        (503, "signing_keys_unavailable", None),
    ],
)
def test_each_refusal_gets_its_rfc_6750_challenge(status: int, code: str, header: str) -> None:
    assert challenge(status, code) == header


def test_the_client_address_is_the_one_the_front_end_appended() -> None:
    assert client_address({"X-Forwarded-For": "10.0.0.1, 203.0.113.7:443"}) == {
        "client_ip": "203.0.113.7:443"
    }
    assert client_address({"x-forwarded-for": "1.2.3.4\n{forged}"}) == {
        "client_ip": "1.2.3.4??f???ed?"  # an address's characters only
    }
    assert client_address({}) == {}


def test_mode_emergency_is_the_only_one_needing_the_emergency_role() -> None:
    modes = {
        m: role_for(RotationRequest(appIds=["3f2504e0-4f89-11d3-9a0c-0305e82c3301"], mode=m))
        for m in Mode
    }
    assert modes == {Mode.DUE: Role.ROTATE, Mode.FORCE: Role.ROTATE, Mode.EMERGENCY: Role.EMERGENCY}
