"""POST /api/rotations bodies: what is accepted, and the 4xx for everything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.http_api import RotationRequest, parse_rotation_request
from rotation.model import Mode

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
