"""The shared Azure error helpers and the ARM mapping, on real SDK exception types."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

import rotation
from rotation.azure.errors import error_code, first_line, is_refusal, map_arm_errors, reason
from rotation.errors import FailureKind, NotFound, PermissionDenied, ServiceUnavailable
from rotation.telemetry import redaction


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


def test_reason_quotes_entras_own_line_below_a_credentials_summary() -> None:
    exc = ClientAuthenticationError(
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "EnvironmentCredential: AADSTS7000215: Invalid client secret provided.\nTrace ID: x"
    )
    assert reason(exc) == "AADSTS7000215: Invalid client secret provided."


def test_reason_is_scrubbed_of_the_secrets_this_process_knows() -> None:
    redaction.register_secret("s3cret-value-that-must-not-show")
    exc = HttpResponseError(message="echoed s3cret-value-that-must-not-show back")
    assert "s3cret-value-that-must-not-show" not in reason(exc)


def test_one_arm_map_words_a_403_by_default_or_as_the_caller_says() -> None:
    forbidden = HttpResponseError(message="AuthorizationFailed: no Microsoft.Web/sites/read")
    forbidden.status_code = 403
    reader = pytest.raises(PermissionDenied, match="the Reader role")
    with reader as default, map_arm_errors("the sites"):
        raise forbidden
    words = map_arm_errors("the sites", lambda what, why: f"{what} refused: {why}")
    with pytest.raises(PermissionDenied) as worded, words:
        raise forbidden
    assert "AuthorizationFailed" in str(default.value)
    assert (
        str(worded.value) == "the sites refused: AuthorizationFailed: no Microsoft.Web/sites/read"
    )


#: Where exception text may be turned into words: the one policy (errors.describe) and the
#: adapters, which word what a service said (azure/errors.reason) into our own errors.
WORDERS = ("errors.py", "azure/")
#: A parser's words about the caller's own input (a body, a setting, host.json) may be
#: quoted: they describe what the caller wrote, not a service's or a bug's state.
INPUT_ERRORS = frozenset(
    {"_NotJson", "JSONDecodeError", "ValueError", "OSError", "KeyError", "IndexError"}
)


def _quoted(handler: ast.ExceptHandler) -> list[int]:
    """Lines where a handler (of anything but input errors) puts its exception's text into
    words: str(exc), repr(exc) or f"{exc}"."""
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    kinds = {getattr(t, "id", None) or getattr(t, "attr", None) for t in types}
    if not handler.name or kinds <= INPUT_ERRORS:
        return []
    lines = []
    for node in (n for statement in handler.body for n in ast.walk(statement)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("str", "repr"):
            args = node.args
        elif isinstance(node, ast.FormattedValue):
            args = [node.value]
        else:
            continue
        if any(isinstance(a, ast.Name) and a.id == handler.name for a in args):
            lines.append(node.lineno)
    return lines


def test_error_text_is_worded_in_one_place_above_the_adapters() -> None:
    """Above the adapters, every error reaches an operator through errors.describe: no
    str(exc), repr(exc) or f"{exc}" of a caught exception elsewhere (a second policy)."""
    package = Path(rotation.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where.startswith(WORDERS):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for handler in ast.walk(tree):
            if isinstance(handler, ast.ExceptHandler):
                found += [f"{where}:{line}" for line in _quoted(handler)]
    assert found == []
