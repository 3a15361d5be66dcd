"""Event Grid, as doctor reads it: the vault's Key Vault event subscription and whether
events reach the rotator (ARM reads only, through ArmReader's pipeline).

Names are those infra/modules/eventgrid.bicep gives: the vault's system topic
``evgt-<vault name>`` in the vault's resource group, and its subscription
``acs-smtp-rotation``. Shapes: azure-rest-api-specs, eventgrid, stable/2022-06-15
(EventSubscription: properties.provisioningState, destination.endpointType and
destination.properties.resourceId, filter.includedEventTypes / subjectBeginsWith /
subjectEndsWith). Delivery counts: Azure Monitor's metrics API (2018-01-01) with the
system topic metrics Microsoft lists (learn.microsoft.com/azure/azure-monitor/reference/
supported-metrics/microsoft-eventgrid-systemtopics-metrics): DeliverySuccessCount,
DeadLetteredCount, DroppedEventCount, totals over the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from rotation.azure.acs import ArmReader
from rotation.model import EventDeliveries, EventSubscriptionEntry

EVENT_GRID_API = "2022-06-15"
METRICS_API = "2018-01-01"
SUBSCRIPTION_NAME = "acs-smtp-rotation"
METRICS = ("DeliverySuccessCount", "DeadLetteredCount", "DroppedEventCount")


def system_topic_id(vault_resource_id: str) -> str:
    """The system topic infra makes on the vault: evgt-<vault>, in the vault's group."""
    group, _, vault = vault_resource_id.rstrip("/").partition("/providers/")
    name = vault.rsplit("/", 1)[-1]
    return f"{group}/providers/Microsoft.EventGrid/systemTopics/evgt-{name}"


async def subscription(arm: ArmReader, vault_resource_id: str) -> EventSubscriptionEntry | None:
    """The rotator's subscription on the vault's system topic, or None when there is none.
    A field missing, null or of another type reads as empty (doctor then says what is off)."""
    topic = system_topic_id(vault_resource_id)
    path = f"{topic}/eventSubscriptions/{SUBSCRIPTION_NAME}"
    body = await arm.get_json(path, EVENT_GRID_API, f"the Key Vault event subscription {path}")
    if body is None:
        return None
    properties = _object(body.get("properties"))
    destination = _object(properties.get("destination"))
    target = _object(destination.get("properties"))
    found = _object(properties.get("filter"))
    types = found.get("includedEventTypes")
    return EventSubscriptionEntry(
        id=_text(body.get("id")) or path,
        topic_id=topic,
        state=_text(properties.get("provisioningState")),
        endpoint_type=_text(destination.get("endpointType")),
        destination=_text(target.get("resourceId")) or _text(target.get("endpointBaseUrl")),
        event_types=tuple(t for t in types if isinstance(t, str))
        if isinstance(types, list)
        else (),
        subject_begins_with=_text(found.get("subjectBeginsWith")),
        subject_ends_with=_text(found.get("subjectEndsWith")),
        dead_letter=bool(
            _object(properties.get("deadLetterDestination"))
            or _object(properties.get("deadLetterWithResourceIdentity"))
        ),
    )


async def deliveries(arm: ArmReader, topic_id: str, now: datetime, days: int) -> EventDeliveries:
    """The topic's delivered, dead-lettered and dropped events over the last `days`."""
    start = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = await arm.get_json(
        f"{topic_id}/providers/Microsoft.Insights/metrics",
        METRICS_API,
        f"the delivery metrics of {topic_id}",
        metricnames=",".join(METRICS),
        timespan=f"{start}/{end}",
        aggregation="Total",
        interval="P1D",
    )
    totals = dict.fromkeys(METRICS, 0)
    for metric in _objects((body or {}).get("value")):
        name = _text(_object(metric.get("name")).get("value"))
        for series in _objects(metric.get("timeseries")):
            for point in _objects(series.get("data")):
                if name in totals:
                    totals[name] += _count(point.get("total"))
    return EventDeliveries(
        days,
        totals["DeliverySuccessCount"],
        totals["DeadLetteredCount"],
        totals["DroppedEventCount"],
    )


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    """A metric total as a count: a finite number, else nothing (0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value) if math.isfinite(value) and 0 <= value < 1e15 else 0
