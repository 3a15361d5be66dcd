"""POST /api/rotations bodies: what is accepted, and the 4xx for everything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotation.http_api import RotationRequest, parse_rotation_request
from rotation.model import Mode
from rotation.telemetry.redaction import ECHO_CHARS, ELLIPSIS
from tests import json_bodies

APP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def test_empty_body_means_every_due_app() -> None:
    assert parse_rotation_request(b"") == RotationRequest()


def test_full_body_is_parsed() -> None:
    parsed = parse_rotation_request(
        json.dumps({"appIds": [APP.upper()], "mode": "emergency", "dryRun": True}).encode()
    )
    assert isinstance(parsed, RotationRequest)
    assert parsed.app_ids == [APP]
    assert parsed.mode is Mode.EMERGENCY
    assert parsed.dry_run is True


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (b'{"appIds": ["nope"]}', 400, "not GUIDs"),
        (b'{"appIds": "x"}', 400, "appIds"),
        (b'{"mode": "yolo"}', 400, "unknown mode"),
        (b'{"dryRun": "yes"}', 400, "dryRun"),
        (b'{"extra": 1}', 400, "unknown field"),
        (b" " + b"x" * 70000, 413, "at most"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_problem(body: bytes, status: int, needle: str) -> None:
    answer = parse_rotation_request(body)
    assert isinstance(answer, tuple)
    assert answer[0] == status
    assert needle in answer[1]["error"]["message"]


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_body_is_either_a_request_or_a_4xx(body: bytes) -> None:
    answer = parse_rotation_request(body)
    if isinstance(answer, tuple):
        assert 400 <= answer[0] < 500
        assert answer[1]["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (b"[" * 1000 + b"]" * 1000, "malformed_json", "nested too deeply"),
        (b'{"appIds": ' + b"[" * 5000 + b"]" * 5000 + b"}", "malformed_json", "nested too deeply"),
        (b'{"dryRun": ' + b"9" * 5000 + b"}", "malformed_json", "number is too long"),
        (b'{"mode": "due", "mode": "force"}', "duplicate_key", "'mode' appears twice"),
        (b'{"mode": "due", "\\u006dode": "force"}', "duplicate_key", "'mode' appears twice"),
        (b'{"appIds": [{"a": 1, "a": 2}]}', "duplicate_key", "'a' appears twice"),
        (b'{"dryRun": NaN}', "malformed_json", "NaN is not JSON"),
        (b'{"mode": "emergency"}', "emergency_needs_app_ids", "non-empty appIds"),
        (b'{"mode": "emergency", "appIds": []}', "emergency_needs_app_ids", "--all-apps"),
        (b'{"mode": "emergency", "dryRun": true}', "emergency_needs_app_ids", "appIds"),
    ],
)
def test_hostile_bodies_get_a_400_that_names_the_problem(
    body: bytes, code: str, needle: str
) -> None:
    answer = parse_rotation_request(body)
    assert isinstance(answer, tuple)
    assert answer[0] == 400
    assert answer[1]["error"]["code"] == code
    assert needle in answer[1]["error"]["message"]


def test_duplicate_key_answer_names_the_key() -> None:
    answer = parse_rotation_request(b'{"appIds": [], "dryRun": true, "dryRun": false}')
    assert isinstance(answer, tuple)
    assert answer[1]["error"]["key"] == "dryRun"


def test_force_without_app_ids_stays_allowed() -> None:
    parsed = parse_rotation_request(b'{"mode": "force"}')
    assert isinstance(parsed, RotationRequest)
    assert parsed.mode is Mode.FORCE


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(json_bodies.bodies([APP]))
def test_structured_bodies_agree_with_the_oracle_and_never_raise(body: bytes) -> None:
    valid, _ = json_bodies.oracle(body)
    answer = parse_rotation_request(body)
    if valid:
        assert isinstance(answer, RotationRequest), answer
    else:
        assert isinstance(answer, tuple)
        assert 400 <= answer[0] < 500
        assert answer[1]["error"]["message"]
        json.dumps(answer[1])  # the answer can be written out


@pytest.mark.parametrize(
    "body",
    [
        b'{"' + b"k" * 65_000 + b'": 1}',
        b'{"appIds": ["' + b"x" * 65_000 + b'"]}',
        b'{"' + b"k" * 32_000 + b'": 1, "' + b"k" * 32_000 + b'": 2}',
        b'{"appIds": [' + b", ".join(b'"' + b"y" * 9_000 + b'"' for _ in range(6)) + b"]}",
    ],
    ids=["unknown field", "not a GUID", "duplicate key", "several non-GUIDs"],
)
def test_an_echoed_name_or_value_is_cut_the_same_way_whatever_its_size(body: bytes) -> None:
    answer = parse_rotation_request(body)
    assert isinstance(answer, tuple)
    assert answer[0] == 400
    error = answer[1]["error"]
    for member in ("field", "key"):
        assert len(error.get(member, "")) <= ECHO_CHARS
    assert ELLIPSIS in error["message"]
    assert len(json.dumps(answer[1])) < 1_000, "the answer grew with the body"
