"""The comparison of an answer with its recording can fail, for each thing it compares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.recorded import recording
from tests.recorded.recording import Answer, Entry, differences, load
from tests.recorded.test_sandbox_replay import listed, verdict

JSON = {"content-type": "application/json; charset=utf-8"}


def entry(status: int = 200, body: object = None, headers: dict[str, str] | None = None) -> Entry:
    return Entry(1, "GET", "https://x/y", status=status, body=body, headers=headers or JSON)


def test_the_same_answer_differs_in_nothing() -> None:
    body = {"id": "a", "attributes": {"created": 1, "enabled": True}, "nextLink": None}
    assert differences(entry(body=body), Answer(200, JSON, body)) == []


def test_another_status_is_the_one_difference() -> None:
    assert differences(entry(404, {"error": {}}), Answer(200, JSON, {})) == [
        "status: 404 recorded, 200 here"
    ]


def test_keys_absent_extra_or_typed_otherwise_are_differences() -> None:
    recorded = {"a": 1, "b": {"c": "x"}, "d": None}
    here = {"a": 1.5, "b": {"c": "x", "e": True}}
    assert differences(entry(body=recorded), Answer(200, JSON, here)) == [
        "body.a: integer recorded, number here",
        "body.b.e: extra here (boolean), not recorded",
        "body.d: absent here (null recorded)",
    ]


def test_list_items_are_compared_by_the_union_of_their_keys() -> None:
    recorded = {"value": [{"id": "a"}, {"id": "b", "tags": {}}]}
    here = {"value": [{"id": "c"}]}
    assert differences(entry(body=recorded), Answer(200, JSON, here)) == [
        "body.value[].tags: absent here (object recorded)"
    ]
    assert differences(entry(body=recorded), Answer(200, JSON, {"value": []})) == []


def test_null_recorded_where_the_sandbox_sends_a_value_is_a_difference() -> None:
    found = differences(entry(body={"hint": None}), Answer(200, JSON, {"hint": "ab"}))
    assert found == ["body.hint: null recorded, string here"]


def test_the_headers_sdks_read_are_compared() -> None:
    recorded = {
        **JSON,
        "x-ms-request-id": "1",
        "www-authenticate": 'Bearer authorization="a", resource="b"',
    }
    here = {"content-type": "application/json", "www-authenticate": 'Bearer authorization="c"'}
    assert differences(entry(body={}, headers=recorded), Answer(200, here, {})) == [
        "header content-type: 'application/json; charset=utf-8' recorded, 'application/json' here",
        "header www-authenticate: ('Bearer', ('authorization', 'resource')) recorded, "
        "('Bearer', ('authorization',)) here",
        "header x-ms-request-id: absent here",
    ]


def test_a_header_the_recording_lacks_is_not_compared() -> None:
    assert differences(entry(body={}), Answer(200, {**JSON, "etag": '"1"'}, {})) == []


def test_error_code_and_message_form_are_compared() -> None:
    recorded = {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing"}}
    here = {"error": {"code": "Forbidden", "message": "no token", "innererror": {}}}
    assert differences(entry(401, recorded), Answer(401, JSON, here)) == [
        "body.error.innererror: extra here (object), not recorded",
        "error.code: 'Unauthorized' recorded, 'Forbidden' here",
        "error.message: recorded with a service code prefix, here not",
    ]
    assert differences(entry(401, recorded), Answer(401, JSON, {"detail": "x"})) == [
        "body.error: absent here"
    ]


@pytest.mark.parametrize(
    ("recorded", "here", "expected"),
    [
        (None, {}, "nextLink: null recorded, absent here"),
        (None, {"nextLink": "https://h/s?a=1"}, "nextLink: null (last page) recorded, a link here"),
        ("https://h/s?a=1", {"nextLink": None}, "nextLink: a link recorded, null (last page) here"),
        (
            "https://h:443/s?api-version=1&$skiptoken=x",
            {"nextLink": "https://h/s?api-version=1&$skiptoken=y&maxresults=2"},
            "nextLink: query ['$skiptoken', 'api-version'] recorded, "
            "['$skiptoken', 'api-version', 'maxresults'] here",
        ),
        (
            "https://h/a/s?x=1",
            {"nextLink": "https://h/s?x=1"},
            "nextLink: path form '/a/s' recorded, '/s' here",
        ),
        ("https://h/s?x=1", {"nextLink": "/s?x=1"}, "nextLink: https recorded, relative here"),
    ],
)
def test_paging_is_compared_by_the_next_links_presence_and_form(
    recorded: str | None, here: dict[str, object], expected: str
) -> None:
    found = differences(
        entry(body={"value": [], "nextLink": recorded}), Answer(200, JSON, {"value": [], **here})
    )
    assert found == [expected]


def test_a_vendored_file_must_name_its_source(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(
        json.dumps({"source": {"repo": "r", "path": "p"}, "service": "vault", "entries": []})
    )
    with pytest.raises(ValueError, match="source needs repo, path and commit"):
        load(path)


def test_a_recording_kept_from_the_sandbox_must_say_why(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    source = {"repo": "r", "path": "p", "commit": "c" * 40}
    path.write_text(
        json.dumps({"source": source, "service": "graph", "replayed": False, "entries": []})
    )
    with pytest.raises(ValueError, match="does not replay says why"):
        load(path)


def test_every_vendored_recording_names_repo_path_and_commit() -> None:
    for rec in recording.load_all():
        assert len(rec.source["commit"]) == 40, rec.case
        assert rec.exchanges, rec.case


def test_a_new_or_a_vanished_difference_fails_the_verdict() -> None:
    table = {"kv-a#1 GET: x", "kv-a#2 GET: y", "kv-b#1 GET: z"}
    assert verdict("kv-a", {"kv-a#1 GET: x", "kv-a#2 GET: y"}, table) == ([], [])
    assert verdict("kv-a", {"kv-a#1 GET: x", "kv-a#3 GET: w"}, table) == (
        ["kv-a#3 GET: w"],
        ["kv-a#2 GET: y"],
    )


def test_the_table_rows_are_read_by_their_first_column() -> None:
    rows = listed()
    assert all("#" in key and ": " in key for key in rows), rows
