"""Upstream items read one by one (rotation/azure/wire.py and its users): the reason names
the field and never the value; an item of a known app flags it; an item of no app is
skipped and counted."""

from __future__ import annotations

from typing import Any

from rotation.azure import graph_items, vault_items
from rotation.telemetry.skipped_items import collecting

APP_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
KEY_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3302"
SECRETISH = "Abc8Q~not-a-real-secret-but-shaped-like-one"


def application(**changes: Any) -> dict[str, Any]:
    credential = {"keyId": KEY_ID, "endDateTime": "2027-01-01T00:00:00.1234567Z"}
    item = {"id": "obj-1", "appId": APP_ID.upper(), "passwordCredentials": [credential]}
    return {**item, **changes}


def test_a_readable_application_becomes_its_record() -> None:
    (record,) = graph_items.applications([application(extra={"new": "field"})], "applications")
    assert record.problem is None
    assert record.app_id == APP_ID
    assert record.credentials[0].key_id == KEY_ID
    assert record.credentials[0].end is not None


def test_a_wrong_field_flags_the_app_naming_the_field_never_the_value() -> None:
    bad = application(passwordCredentials=[{"keyId": KEY_ID, "endDateTime": SECRETISH}])
    (record,) = graph_items.applications([bad], "applications")
    assert record.app_id == APP_ID
    assert record.credentials == ()
    assert "passwordCredentials[0].endDateTime" in (record.problem or "")
    assert SECRETISH not in (record.problem or "")


def test_a_null_expiry_is_a_problem_not_ok() -> None:
    bad = application(passwordCredentials=[{"keyId": KEY_ID, "endDateTime": None}])
    (record,) = graph_items.applications([bad], "applications")
    assert "endDateTime: is null" in (record.problem or "")


def test_an_application_of_no_readable_app_is_skipped_and_counted() -> None:
    with collecting() as skipped:
        found = graph_items.applications(
            [application(appId="not-a-guid"), "text", application()], "applications"
        )
    assert [r.app_id for r in found] == [APP_ID]
    assert [s.reason for s in skipped] == [
        "an application: appId: is not a GUID",
        "an application: the item is a JSON str, not an object",
    ]


def test_a_vault_item_of_a_known_name_is_marked_unreadable_and_one_without_is_skipped() -> None:
    good = {"id": "https://v/secrets/a", "attributes": {"enabled": True, "created": 1}}
    with collecting() as skipped:
        marked = vault_items.listed({**good, "tags": {"key-id": 7}}, "the vault's secrets")
        gone = vault_items.listed({**good, "id": None}, "the vault's secrets")
    assert marked is not None
    assert "tag 'key-id' should be text" in (marked[1].unreadable or "")
    assert gone is None
    assert len(skipped) == 1
