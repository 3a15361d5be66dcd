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
    """The rotator's subscription on the vault's system topic, or None when there is none."""
    topic = system_topic_id(vault_resource_id)
    path = f"{topic}/eventSubscriptions/{SUBSCRIPTION_NAME}"
    body = await arm.get_json(path, EVENT_GRID_API, f"the Key Vault event subscription {path}")
    if body is None:
        return None
    properties: Mapping[str, Any] = body.get("properties") or {}
    destination: Mapping[str, Any] = properties.get("destination") or {}
    target: Mapping[str, Any] = destination.get("properties") or {}
    found: Mapping[str, Any] = properties.get("filter") or {}
    return EventSubscriptionEntry(
        id=str(body.get("id") or path),
        topic_id=topic,
        state=str(properties.get("provisioningState") or ""),
        endpoint_type=str(destination.get("endpointType") or ""),
        destination=str(target.get("resourceId") or target.get("endpointBaseUrl") or ""),
        event_types=tuple(str(t) for t in found.get("includedEventTypes") or ()),
        subject_begins_with=str(found.get("subjectBeginsWith") or ""),
        subject_ends_with=str(found.get("subjectEndsWith") or ""),
        dead_letter=bool(
            properties.get("deadLetterDestination")
            or properties.get("deadLetterWithResourceIdentity")
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
    for metric in (body or {}).get("value") or ():
        name = str((metric.get("name") or {}).get("value") or "")
        for series in metric.get("timeseries") or ():
            for point in series.get("data") or ():
                total = point.get("total")
                if name in totals and isinstance(total, int | float):
                    totals[name] += int(total)
    return EventDeliveries(
        days,
        totals["DeliverySuccessCount"],
        totals["DeadLetteredCount"],
        totals["DroppedEventCount"],
    )
