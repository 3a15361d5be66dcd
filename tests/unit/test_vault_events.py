"""Key Vault events parsed at the edge (rotation/vault_events.py): the published schema in
its own casings, and every field missing, null or of the wrong type dropped with a reason."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.vault_events import EventKind, SecretEvent, parse

VERSION = "ee059b2bb5bc48398a53b168c6cdcb10"


def published(**data: Any) -> dict[str, Any]:
    """The example of learn.microsoft.com/azure/event-grid/event-schema-key-vault (Event Grid
    schema), stray spaces included ("ObjectName " and " ee059b..."), with NBF/EXP as strings."""
    event: dict[str, Any] = {
        "id": "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
        "topic": "/subscriptions/{subscription-id}/resourceGroups/sample-rg/providers/"
        "Microsoft.KeyVault/vaults/sample-kv",
        "subject": "newsecret",
        "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
        "eventTime": "2019-07-25T01:08:33.1036736Z",
        "data": {
            "Id": f"https://sample-kv.vault.azure.net/secrets/newsecret/{VERSION}",
            "VaultName": "sample-kv",
            "ObjectType": "Secret",
            "ObjectName ": "newsecret",
            "Version": f" {VERSION}",
            "NBF": "1559081980",
            "EXP": "1559082102",
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }
    event["data"].update(data)
    return event


def test_the_published_example_parses() -> None:
    event = parse(published())
    assert event == SecretEvent(
        event_id="00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
        kind=EventKind.NEW_VERSION,
        topic=published()["topic"],
        vault_name="sample-kv",
        name="newsecret",
        version=VERSION,
        not_before=datetime.fromtimestamp(1559081980, UTC),
        expires=datetime.fromtimestamp(1559082102, UTC),
    )


def test_the_sdk_models_camel_case_and_numbers_parse_the_same() -> None:
    """@azure/eventgrid's KeyVaultSecretNearExpiryEventData: id, vaultName, ..., nbf, exp."""
    raw = published()
    raw["eventType"] = "Microsoft.KeyVault.SecretNearExpiry"
    raw["data"] = {
        "id": f"https://sample-kv.vault.azure.net/secrets/newsecret/{VERSION}",
        "vaultName": "sample-kv",
        "objectType": "Secret",
        "objectName": "newsecret",
        "version": VERSION.upper(),
        "nbf": 1559081980,
        "exp": 1559082102.0,
    }
    event = parse(raw)
    assert event is not None
    assert event.kind is EventKind.NEAR_EXPIRY
    assert event.version == VERSION  # Key Vault's ids are lower case
    assert event.expires == datetime.fromtimestamp(1559082102, UTC)


def test_a_secret_without_expiry_has_none() -> None:
    event = parse(published(EXP=None, NBF=None))
    assert event is not None
    assert event.expires is None
    assert event.not_before is None


def capture(raw: Any) -> tuple[SecretEvent | None, list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as lines:
        return parse(raw), lines


REQUIRED_DATA = ("Id", "VaultName", "ObjectType", "ObjectName ", "Version")
REQUIRED_TOP = ("id", "topic", "subject", "eventType", "data")
WRONG = [None, 7, 1.5, True, [], {}, "", "   "]


@pytest.mark.parametrize("key", REQUIRED_DATA)
@pytest.mark.parametrize("value", [*WRONG, "missing"])
def test_each_data_field_missing_null_or_wrong_type_is_dropped(key: str, value: Any) -> None:
    raw = published()
    if value == "missing":
        del raw["data"][key]
    else:
        raw["data"][key] = value
    event, lines = capture(raw)
    assert event is None
    assert [line["event"] for line in lines] == ["event.malformed"]
    assert lines[0]["log_level"] == "warning"
    assert lines[0]["event_id"] == "00eccf70-95a7-4e7c-8299-2eb17ee9ad64"


def test_a_malformed_event_is_named_as_other_upstream_answers_are() -> None:
    """Review finding 18: the event parser had its own "field: why" wording; it now uses
    rotation/azure/wire.reason, as every Graph, Key Vault and ARM item does (never a value)."""
    raw = published()
    del raw["data"]["Version"]
    assert capture(raw)[1][0]["reason"] == "data.version: missing"
    raw = published()
    raw["subject"] = ["secret-text"]
    assert capture(raw)[1][0]["reason"] == "event.subject: should be a valid string"


@pytest.mark.parametrize("key", REQUIRED_TOP)
@pytest.mark.parametrize("value", [*WRONG, "missing"])
def test_each_envelope_field_missing_null_or_wrong_type_is_dropped(key: str, value: Any) -> None:
    raw = published()
    if value == "missing":
        del raw[key]
    else:
        raw[key] = value
    if key == "data" and value == {}:
        return  # an empty data object is covered by the data tests (its fields are missing)
    event, lines = capture(raw)
    assert event is None
    assert lines[-1]["event"] == "event.malformed", lines


@pytest.mark.parametrize("key", ["NBF", "EXP"])
@pytest.mark.parametrize("value", [True, "soon", "1e3", [], {}, float("nan"), -1, 10**15, "9" * 40])
def test_times_of_the_wrong_kind_are_dropped(key: str, value: Any) -> None:
    event, lines = capture(published(**{key: value}))
    assert event is None
    assert key.lower() in lines[0]["reason"].lower()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ObjectType", "Key"),
        ("Id", f"https://sample-kv.vault.azure.net/secrets/other/{VERSION}"),
        ("Id", "https://sample-kv.vault.azure.net/secrets/newsecret/0000"),
        ("Version", "not-a-version"),
        ("ObjectName ", "bad name!"),
    ],
)
def test_inconsistent_or_invalid_data_is_dropped(field: str, value: str) -> None:
    event, lines = capture(published(**{field: value}))
    assert event is None
    assert lines[0]["event"] == "event.malformed"


def test_an_event_that_is_not_an_object_is_dropped() -> None:
    for raw in (None, [], "text", 3, [published()]):
        event, lines = capture(raw)
        assert event is None
        assert lines[0]["event"] == "event.malformed"


def test_other_key_vault_events_are_ignored_not_malformed() -> None:
    raw = published()
    raw["eventType"] = "Microsoft.KeyVault.KeyNearExpiry"
    event, lines = capture(raw)
    assert event is None
    assert lines[0]["event"] == "event.ignored"


def test_an_event_from_another_service_is_malformed() -> None:
    raw = published()
    raw["eventType"] = "Microsoft.Storage.BlobCreated"
    event, lines = capture(raw)
    assert event is None
    assert lines[0]["event"] == "event.malformed"


def test_unknown_fields_are_ignored() -> None:
    raw = published(Extra={"nested": [1, 2]})
    raw["somethingNew"] = 42
    assert parse(raw) is not None


def test_a_reason_never_echoes_a_long_value() -> None:
    raw = published()
    raw["eventType"] = "Microsoft.Storage." + "x" * 5000
    _, lines = capture(raw)
    assert len(lines[0]["reason"]) < 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


@settings(max_examples=300)
@given(
    st.sampled_from([*REQUIRED_TOP, "data"]),
    json_values,
    st.sampled_from(REQUIRED_DATA),
    json_values,
)
def test_any_json_in_any_field_never_raises(
    top: str, top_value: Any, field: str, data_value: Any
) -> None:
    raw = copy.deepcopy(published())
    raw["data"][field] = data_value
    assert isinstance(parse(raw), SecretEvent | None)
    raw[top] = top_value
    assert isinstance(parse(raw), SecretEvent | None)
