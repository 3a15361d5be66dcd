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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator

from rotation.azure.wire import Problem, Wire, parse
from rotation.model import EventDeliveries, EventSubscriptionEntry
from rotation.resource_ids import system_topic_id

if TYPE_CHECKING:  # a type only: importing acs would load the ARM SDKs and aiohttp at cold start
    from rotation.azure.acs import ArmReader

EVENT_GRID_API = "2022-06-15"
METRICS_API = "2018-01-01"
SUBSCRIPTION_NAME = "acs-smtp-rotation"
METRICS = ("DeliverySuccessCount", "DeadLetteredCount", "DroppedEventCount")


def _count(value: object) -> float:
    """A metric total: a finite count (Azure Monitor sends a JSON number); null is no data."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("should be a number")
    if not (math.isfinite(value) and 0 <= value < 1e15):
        raise ValueError("is not a count")
    return float(value)


# Optional fields ARM may leave out or send as null read as empty; any other type is wrong.
Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]
Count = Annotated[float, BeforeValidator(_count)]


class _Target(Wire):
    resourceId: Text = ""
    endpointBaseUrl: Text = ""


class _Destination(Wire):
    endpointType: Text = ""
    properties: _Target | None = None


class _Filter(Wire):
    includedEventTypes: tuple[str, ...] | None = None
    subjectBeginsWith: Text = ""
    subjectEndsWith: Text = ""


class _SubscriptionProperties(Wire):
    provisioningState: Text = ""
    destination: _Destination | None = None
    filter: _Filter | None = None
    deadLetterDestination: dict[str, Any] | None = None
    deadLetterWithResourceIdentity: dict[str, Any] | None = None


class _Subscription(Wire):
    id: Text = ""
    properties: _SubscriptionProperties


class _Point(Wire):
    total: Count = 0.0


class _Series(Wire):
    data: tuple[_Point, ...] = ()


class _Name(Wire):
    value: str


class _Metric(Wire):
    name: _Name
    timeseries: tuple[_Series, ...] = ()


class _Metrics(Wire):
    value: list[_Metric]


async def subscription(
    arm: ArmReader, vault_resource_id: str
) -> EventSubscriptionEntry | Problem | None:
    """The rotator's subscription on the vault's system topic; None when there is none, a
    Problem naming the field when ARM's answer cannot be read (doctor says so)."""
    topic = system_topic_id(vault_resource_id)
    path = f"{topic}/eventSubscriptions/{SUBSCRIPTION_NAME}"
    body = await arm.get_json(path, EVENT_GRID_API, f"the Key Vault event subscription {path}")
    if body is None:
        return None
    read = parse(_Subscription, body)
    if isinstance(read, Problem):
        return read
    properties = read.properties
    destination = properties.destination or _Destination()
    target = destination.properties or _Target()
    found = properties.filter or _Filter()
    return EventSubscriptionEntry(
        id=read.id or path,
        topic_id=topic,
        state=properties.provisioningState,
        endpoint_type=destination.endpointType,
        destination=target.resourceId or target.endpointBaseUrl,
        event_types=found.includedEventTypes or (),
        subject_begins_with=found.subjectBeginsWith,
        subject_ends_with=found.subjectEndsWith,
        dead_letter=bool(
            properties.deadLetterDestination or properties.deadLetterWithResourceIdentity
        ),
    )


async def deliveries(
    arm: ArmReader, topic_id: str, now: datetime, days: int
) -> EventDeliveries | Problem:
    """The topic's delivered, dead-lettered and dropped events over the last `days`, or why
    they cannot be read: no answer (404), another shape, or a metric missing from it (Azure
    Monitor answers every metric asked for, with no data when there was none), so an
    unreadable answer is never taken for "nothing lost"."""
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
    if body is None:
        return Problem("no metrics: the metrics API answered 404 Not Found")
    read = parse(_Metrics, body)
    if isinstance(read, Problem):
        return read
    totals = {m.name.value: sum(p.total for s in m.timeseries for p in s.data) for m in read.value}
    missing = [name for name in METRICS if name not in totals]
    if missing:
        return Problem(f"the answer has no {', '.join(missing)}")
    return EventDeliveries(
        days,
        int(totals["DeliverySuccessCount"]),
        int(totals["DeadLetteredCount"]),
        int(totals["DroppedEventCount"]),
    )
