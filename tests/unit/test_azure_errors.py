"""The shared Azure error helpers and the ARM mapping, on real SDK exception types."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from rotation.azure.errors import error_code, first_line, is_refusal, map_arm_errors, reason
from rotation.errors import FailureKind, NotFound, ServiceUnavailable


def test_a_refusal_is_a_4xx_other_than_429() -> None:
    assert [is_refusal(s) for s in (400, 403, 404, 499)] == [True] * 4
    assert [is_refusal(s) for s in (None, 200, 429, 500, 503)] == [False] * 5


def test_first_line_and_reason_quote_the_service_once() -> None:
    exc = HttpResponseError(message="Vault says no\nsecond line")
    assert first_line(exc) == "Vault says no"
    assert first_line(exc, 5) == "Vault"
    assert error_code(exc) is None
    assert reason(exc) == "Vault says no"


def test_reason_leads_with_the_odata_error_code() -> None:
    exc = ODataError(error=MainError(code="Request_BadRequest", message="Bad keyId\nmore"))
    assert error_code(exc) == "Request_BadRequest"
    assert reason(exc) == "Request_BadRequest: Bad keyId"
    assert reason(exc, code=False) == "Bad keyId"
    assert first_line(ODataError(), or_str=False) == ""


def test_arm_mapping_translates_sdk_errors_and_passes_ours_and_bugs() -> None:
    failing = pytest.raises(ServiceUnavailable, match="kept failing while reading the things")
    with failing, map_arm_errors("the things"):
        raise ServiceRequestError("connection refused")
    ours = NotFound("already ours")
    with pytest.raises(NotFound) as caught, map_arm_errors("the things"):
        raise ours
    assert caught.value is ours
    with pytest.raises(KeyError), map_arm_errors("the things"):
        raise KeyError("a bug stays a bug")


def test_failure_kind_compares_and_serialises_as_its_value() -> None:
    assert FailureKind.TLS == "tls"
    assert json.dumps({"kind": FailureKind.REJECTED}) == '{"kind": "rejected"}'
    assert f"{FailureKind.TIMEOUT}" == "timeout"
