"""rotation/azure/event_grid.py reads what Resource Manager answers about the Key Vault event
subscription and its metrics through wire models: an optional field missing or null reads as
empty, any field of the wrong type makes the answer a Problem naming the field (never its
value), and nothing raises (doctor then says what is off, or that it could not read it)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.azure import event_grid
from rotation.azure.wire import Problem
from rotation.model import EventDeliveries
from rotation.resource_ids import system_topic_id

VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
NOW = datetime(2026, 12, 7, tzinfo=UTC)
GOOD: dict[str, Any] = {
    "id": "x",
    "properties": {
        "provisioningState": "Succeeded",
        "destination": {
            "endpointType": "AzureFunction",
            "properties": {"resourceId": "/sites/f/functions/key_vault_events"},
        },
        "filter": {
            "includedEventTypes": ["Microsoft.KeyVault.SecretNearExpiry"],
            "subjectBeginsWith": "acs-smtp-",
            "subjectEndsWith": "",
        },
        "deadLetterWithResourceIdentity": {"identity": {"type": "SystemAssigned"}},
    },
}


class Arm:
    """An ArmReader answering one body (our own port, faked)."""

    def __init__(self, body: Any) -> None:
        self.body = body

    async def get_json(self, path: str, api_version: str, what: str, **params: str) -> Any:
        return self.body


def test_the_topic_is_named_as_infra_names_it() -> None:
    assert system_topic_id(VAULT) == (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventGrid/systemTopics/evgt-kv1"
    )


async def test_a_good_subscription_reads_whole() -> None:
    found = await event_grid.subscription(Arm(GOOD), VAULT)  # type: ignore[arg-type]
    assert found is not None
    assert (found.state, found.endpoint_type, found.dead_letter) == (
        "Succeeded",
        "AzureFunction",
        True,
    )
    assert found.event_types == ("Microsoft.KeyVault.SecretNearExpiry",)


async def test_none_is_no_subscription() -> None:
    assert await event_grid.subscription(Arm(None), VAULT) is None  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
PATHS = [
    ("properties",),
    ("properties", "provisioningState"),
    ("properties", "destination"),
    ("properties", "destination", "properties"),
    ("properties", "destination", "properties", "resourceId"),
    ("properties", "filter"),
    ("properties", "filter", "includedEventTypes"),
    ("properties", "filter", "subjectBeginsWith"),
    ("properties", "deadLetterWithResourceIdentity"),
]


def with_field(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """GOOD with the field at `path` set to `value`."""
    body = copy.deepcopy(GOOD)
    where = body
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    return body


@settings(max_examples=200)
@given(st.sampled_from(PATHS), json_values)
async def test_any_field_of_any_kind_never_raises(path: tuple[str, ...], value: Any) -> None:
    found = await event_grid.subscription(Arm(with_field(path, value)), VAULT)  # type: ignore[arg-type]
    if isinstance(found, Problem):  # the reason names a field of the wrong kind
        assert str(found).startswith("properties")
    else:
        assert found is not None
        assert all(isinstance(t, str) for t in found.event_types)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("properties", "destination"), "AzureFunction"),
        (("properties", "filter"), "acs-smtp-"),
        (("properties",), "x"),
        (("properties", "filter", "includedEventTypes"), "Microsoft.KeyVault.SecretNearExpiry"),
    ],
)
async def test_a_string_where_an_object_or_list_belongs_is_a_problem_naming_it(
    path: tuple[str, ...], value: Any
) -> None:
    """Review finding 6: read with `.get` chains such a body raised AttributeError, or (the
    event types) was read character by character."""
    found = await event_grid.subscription(Arm(with_field(path, value)), VAULT)  # type: ignore[arg-type]
    assert isinstance(found, Problem), found
    assert ".".join(path) in str(found)
    assert value not in str(found).replace(".".join(path), "")


async def test_optional_fields_null_or_absent_read_as_empty() -> None:
    body = copy.deepcopy(GOOD)
    body["properties"]["filter"] = {"includedEventTypes": None, "subjectEndsWith": None}
    del body["properties"]["deadLetterWithResourceIdentity"]
    found = await event_grid.subscription(Arm(body), VAULT)  # type: ignore[arg-type]
    assert not isinstance(found, Problem)
    assert found is not None
    assert (found.event_types, found.subject_ends_with, found.dead_letter) == ((), "", False)


def metric(name: str, *totals: Any) -> dict[str, Any]:
    return {"name": {"value": name}, "timeseries": [{"data": [{"total": t} for t in totals]}]}


ALL_THREE = [metric(name, 0) for name in event_grid.METRICS]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (None, "no metrics"),  # the metrics API answered 404
        ({}, "value: missing"),
        ({"value": None}, "value"),
        ({"value": "x"}, "value"),
        ({"value": [None, 3, {"name": None}]}, "value[0]"),
        ({"value": [{**ALL_THREE[0], "timeseries": "x"}, *ALL_THREE[1:]]}, "timeseries"),
        ({"value": [metric("DeadLetteredCount", "3"), *ALL_THREE[:2]]}, "total"),
        ({"value": [metric("DeadLetteredCount", float("nan")), *ALL_THREE[:2]]}, "total"),
        ({"value": [metric("DeadLetteredCount", True), *ALL_THREE[:2]]}, "total"),
        ({"value": [metric("DeadLetteredCount", -1), *ALL_THREE[:2]]}, "total"),
        ({"value": []}, "DeliverySuccessCount, DeadLetteredCount, DroppedEventCount"),
        ({"value": [metric("DeadLetterCount", 3), *ALL_THREE[:1]]}, "DeadLetteredCount"),
    ],
)
async def test_metrics_it_cannot_read_are_a_problem_saying_why_never_none_lost(
    body: Any, why: str
) -> None:
    """Review finding 15: a 404, another shape or misspelled names read as nothing lost."""
    seen = await event_grid.deliveries(Arm(body), "t", NOW, 7)  # type: ignore[arg-type]
    assert isinstance(seen, Problem), seen
    assert why in str(seen)


async def test_metric_totals_add_up() -> None:
    body = {
        "value": [
            metric("DeadLetteredCount", 2.0, 1),
            metric("DeliverySuccessCount", 5),
            {"name": {"value": "DroppedEventCount"}, "timeseries": [{"data": [{}]}]},  # no data
        ]
    }
    seen = await event_grid.deliveries(Arm(body), "t", NOW, 7)  # type: ignore[arg-type]
    assert seen == EventDeliveries(7, 5, 3, 0)
