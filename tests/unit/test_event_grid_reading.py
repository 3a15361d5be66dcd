"""rotation/azure/event_grid.py reads what Resource Manager answers about the Key Vault event
subscription and its metrics: any field missing, null or of the wrong type reads as empty,
never raises (doctor then says what is off)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.azure import event_grid

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
    assert event_grid.system_topic_id(VAULT) == (
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


@settings(max_examples=200)
@given(st.sampled_from(PATHS), json_values)
async def test_any_field_of_any_kind_never_raises(path: tuple[str, ...], value: Any) -> None:
    body = copy.deepcopy(GOOD)
    where = body
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    found = await event_grid.subscription(Arm(body), VAULT)  # type: ignore[arg-type]
    assert found is not None
    assert all(isinstance(t, str) for t in found.event_types)


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"value": None},
        {"value": "x"},
        {"value": [None, 3, {"name": None}]},
        {"value": [{"name": {"value": "DeadLetteredCount"}, "timeseries": "x"}]},
        {
            "value": [
                {"name": {"value": "DeadLetteredCount"}, "timeseries": [{"data": [{"total": "3"}]}]}
            ]
        },
        {
            "value": [
                {
                    "name": {"value": "DeadLetteredCount"},
                    "timeseries": [{"data": [{"total": float("nan")}]}],
                }
            ]
        },
        {
            "value": [
                {
                    "name": {"value": "DeadLetteredCount"},
                    "timeseries": [{"data": [{"total": True}]}],
                }
            ]
        },
    ],
)
async def test_metrics_of_any_shape_count_nothing_they_cannot_read(body: Any) -> None:
    seen = await event_grid.deliveries(Arm(body), "t", NOW, 7)  # type: ignore[arg-type]
    assert (seen.delivered, seen.dead_lettered, seen.dropped) == (0, 0, 0)


async def test_metric_totals_add_up() -> None:
    body = {
        "value": [
            {
                "name": {"value": "DeadLetteredCount"},
                "timeseries": [{"data": [{"total": 2.0}, {"total": 1}]}],
            },
            {"name": {"value": "DeliverySuccessCount"}, "timeseries": [{"data": [{"total": 5}]}]},
        ]
    }
    seen = await event_grid.deliveries(Arm(body), "t", NOW, 7)  # type: ignore[arg-type]
    assert (seen.delivered, seen.dead_lettered, seen.dropped) == (5, 3, 0)
