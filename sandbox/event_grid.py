"""The sandbox's Event Grid: the Key Vault system topic, delivering secret events to subscribers.

What it models, and where each behaviour comes from:

- Event types, their data and the near-expiry lead: "Azure Key Vault as Event Grid source"
  (learn.microsoft.com/azure/event-grid/event-schema-key-vault). SecretNewVersionCreated when
  a version is set; SecretNearExpiry "when the current version of a secret is about to
  expire (The event is triggered 30 days before the expiration date.)"; SecretExpired when
  it has expired. Data keys as that page's example writes them (``Id``, ``VaultName``,
  ``ObjectType``, ``ObjectName``, ``Version``, ``NBF``, ``EXP``), with NBF/EXP as the numbers
  its property table says (seconds since 1970), null when the version has none.
- Expiry events come from the sandbox clock: each current version's near-expiry and expired
  events are raised once, when the clock passes them (`scan`), as Key Vault raises them once.
- Delivery (learn.microsoft.com/azure/event-grid/delivery-and-retry): one event per POST, in
  an array ("the payload is an array with a single event"); at least once, in no
  guaranteed order; a 2xx acknowledges; 400 and 413 are not retried (dead-lettered); other
  failures are retried until `max_attempts` (Event Grid's default maxDeliveryAttempts is
  30), then dead-lettered. Retries here come after `retry_after` seconds of real time rather
  than Event Grid's 10 s, 30 s, 1 min, ... schedule, so tests need not wait minutes.
- Subject filters (subjectBeginsWith / subjectEndsWith, case-insensitive by default:
  "Event filtering for Event Grid", learn.microsoft.com/azure/event-grid/event-filtering)
  and includedEventTypes, per subscription. The subject of a Key Vault event is the
  secret's name (the schema page's example).

Tests can also deliver any body they like (`post`) to play replays and malformed events.
The sandbox starts with the subscription infra makes (`acs-smtp-rotation`, filtered to the
default secret names) but no URL to deliver to; a test that runs the trigger subscribes
again under that name with its subscriber's URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from rotation.resource_ids import system_topic_id  # infra's name for it, one copy (finding 21)
from sandbox.http_common import ApiError
from sandbox.state import SandboxState, SecretVersion

PREFIX = "Microsoft.KeyVault."
NEW_VERSION = PREFIX + "SecretNewVersionCreated"
NEAR_EXPIRY = PREFIX + "SecretNearExpiry"
EXPIRED = PREFIX + "SecretExpired"
SECRET_EVENTS = (NEW_VERSION, NEAR_EXPIRY, EXPIRED)
#: "The event is triggered 30 days before the expiration date." (event-schema-key-vault)
NEAR_EXPIRY_LEAD = timedelta(days=30)
NOT_RETRIED = frozenset({400, 413})  # delivery-and-retry: "Azure Resources" endpoints
#: Secrets the background loop checks for expiry per 50 ms tick. A scan of a whole vault
#: of 20,000 secrets took about 8 ms, every tick, on the sandbox's one event loop: 12 % of
#: the sandbox process's CPU in a 10,000-app plan (py-spy on `python -m bench.case plan`).
#: In slices, a vault up to this size is still scanned whole on every tick.
SCAN_SLICE = 2000


@dataclass
class Subscription:
    """An event subscription on the vault's system topic, delivering to `url` (in Azure: to
    the AzureFunction `function_id`, which ARM shows as its destination)."""

    name: str
    url: str
    included: tuple[str, ...] = SECRET_EVENTS
    begins_with: str = ""
    ends_with: str = ""
    max_attempts: int = 30
    function_id: str = ""
    dead_letter: bool = True
    delivered: int = 0  # acknowledged deliveries
    failed_attempts: int = 0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def wants(self, event: dict[str, Any]) -> bool:
        subject = str(event.get("subject", "")).lower()
        return (
            event.get("eventType") in self.included
            and subject.startswith(self.begins_with.lower())
            and subject.endswith(self.ends_with.lower())
        )


@dataclass
class _Delivery:
    subscription: Subscription
    body: Any  # what is POSTed: normally a one-event array
    attempts: int = 0
    not_before: float = 0.0  # loop time of the next attempt


class EventGrid:
    """The vault's system topic and its subscriptions; `run` delivers in the background."""

    def __init__(self, state: SandboxState, topic: str, vault_url: str) -> None:
        self.state = state
        self.topic = topic
        self.vault_url = vault_url.rstrip("/")
        self.subscriptions: dict[str, Subscription] = {}
        self.retry_after = 0.5
        self._outbox: list[_Delivery] = []
        self._in_flight = 0
        self._raised: set[tuple[str, str]] = set()  # (event type, version) raised once
        self._unscanned: list[str] = []  # names the background loop has yet to check
        self._wake = asyncio.Event()
        self.published: list[dict[str, Any]] = []  # every event raised, for tests

    # ----- subscriptions ---------------------------------------------------------------

    def subscribe(
        self,
        name: str,
        url: str,
        *,
        begins_with: str = "",
        ends_with: str = "",
        included: Iterable[str] = SECRET_EVENTS,
        max_attempts: int = 30,
        function: str = "key_vault_events",
    ) -> Subscription:
        group = self.topic.split("/providers/")[0]
        function_id = f"{group}/providers/Microsoft.Web/sites/func-sandbox/functions/{function}"
        subscription = Subscription(
            name,
            url,
            tuple(included),
            begins_with,
            ends_with,
            max_attempts=max_attempts,
            function_id=function_id,
        )
        self.subscriptions[name.lower()] = subscription
        return subscription

    # ----- raising events ----------------------------------------------------------------

    def new_version(self, version: SecretVersion) -> None:
        """Key Vault set a version (vault_api.set_secret calls this)."""
        self._raise(NEW_VERSION, version)

    def scan(self) -> None:
        """Near-expiry and expired events for current versions the clock has reached."""
        self._scan(list(self.state.vault))

    def _scan_slice(self) -> None:
        """`scan`, spread over the background loop's ticks `SCAN_SLICE` names at a time."""
        if not self._unscanned:
            self._unscanned = list(self.state.vault)
        self._scan(self._unscanned[:SCAN_SLICE])
        del self._unscanned[:SCAN_SLICE]

    def _scan(self, names: Iterable[str]) -> None:
        now = self.state.clock.now()
        for name in names:
            versions = self.state.vault.get(name)
            if not versions:  # deleted since the slice was taken
                continue
            current = versions[-1]
            if not current.enabled or current.expires is None:
                continue
            if now >= current.expires - NEAR_EXPIRY_LEAD:
                self._raise(NEAR_EXPIRY, current, once=True)
            if now >= current.expires:
                self._raise(EXPIRED, current, once=True)

    def event(self, event_type: str, version: SecretVersion) -> dict[str, Any]:
        """One event in Event Grid's schema, as the schema page's example shows it."""
        return {
            "id": str(uuid.uuid4()),
            "topic": self.topic,
            "subject": version.name,
            "eventType": event_type,
            "eventTime": self.state.clock.now().isoformat().replace("+00:00", "Z"),
            "data": {
                "Id": f"{self.vault_url}/secrets/{version.name}/{version.version}",
                "VaultName": self.state.vault_name,
                "ObjectType": "Secret",
                "ObjectName": version.name,
                "Version": version.version,
                "NBF": _seconds(version.not_before),
                "EXP": _seconds(version.expires),
            },
            "dataVersion": "1",
            "metadataVersion": "1",
        }

    def _raise(self, event_type: str, version: SecretVersion, *, once: bool = False) -> None:
        key = (event_type, version.version)
        if once and key in self._raised:
            return
        self._raised.add(key)
        event = self.event(event_type, version)
        self.published.append(event)
        for subscription in self.subscriptions.values():
            # No URL: the deployed subscription of a sandbox whose test runs no function.
            if subscription.url and subscription.wants(event):
                self._outbox.append(_Delivery(subscription, [event]))
        self._wake.set()

    def post(self, subscription: str, body: Any) -> None:
        """Delivers `body` as it is (a replay, a malformed event) to one subscription."""
        self._outbox.append(_Delivery(self.subscriptions[subscription.lower()], body))
        self._wake.set()

    def pending(self) -> int:
        """Deliveries not yet acknowledged or dead-lettered (those being made included)."""
        return len(self._outbox) + self._in_flight

    # ----- delivery ------------------------------------------------------------------------

    async def run(self, ssl_context: ssl.SSLContext) -> None:
        """Scans and delivers until cancelled (the sandbox starts and stops it)."""
        connector = aiohttp.TCPConnector(ssl=ssl_context)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                self._scan_slice()
                await self._deliver_due(session)
                self._wake.clear()
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                # that lands as it times out (CPython gh-86296), and the sandbox never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self._wake.wait()

    async def _deliver_due(self, session: aiohttp.ClientSession) -> None:
        now = asyncio.get_running_loop().time()
        due = [d for d in self._outbox if d.not_before <= now]
        for delivery in due:
            self._outbox.remove(delivery)
            self._in_flight += 1
            try:
                await self._attempt(session, delivery)
            finally:
                self._in_flight -= 1

    async def _attempt(self, session: aiohttp.ClientSession, delivery: _Delivery) -> None:
        subscription = delivery.subscription
        delivery.attempts += 1
        status = 0
        try:
            async with session.post(
                subscription.url,
                data=json.dumps(delivery.body),
                headers={"content-type": "application/json", "aeg-event-type": "Notification"},
                timeout=aiohttp.ClientTimeout(total=30),  # Event Grid waits 30 s
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if 200 <= status < 300:
            subscription.delivered += 1
            return
        subscription.failed_attempts += 1
        if status in NOT_RETRIED or delivery.attempts >= subscription.max_attempts:
            subscription.dead_letters.append(
                {"body": delivery.body, "attempts": delivery.attempts, "lastHttpCode": status}
            )
            return
        delivery.not_before = asyncio.get_running_loop().time() + self.retry_after
        self._outbox.append(delivery)


def _seconds(when: datetime | None) -> int | None:
    return int(when.timestamp()) if when is not None else None


#: The vault app's Event Grid (set by the sandbox once it knows the vault's URL).
EVENTS = web.AppKey("event_grid", EventGrid)


# ----- Resource Manager: the system topic's subscription and its delivery metrics ---------------
# Shapes: azure-rest-api-specs, eventgrid stable/2022-06-15 (EventSubscription) and Azure
# Monitor's metrics API 2018-01-01 (Response: value[].name.value, timeseries[].data[].total);
# metric names from "Supported metrics for Microsoft.EventGrid/systemTopics". The topic is
# named as infra names it: evgt-<vault name>.

SUBSCRIPTION = "acs-smtp-rotation"  # infra/modules/eventgrid.bicep's name
TOPIC = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.EventGrid/systemTopics/{topic}"
)
READ_SUBSCRIPTION = "Microsoft.EventGrid/systemTopics/eventSubscriptions/read"
READ_METRICS = "Microsoft.Insights/metrics/read"


def add_routes(app: web.Application) -> None:
    """On the sandbox's Resource Manager (its EVENTS key set by the sandbox)."""
    app.router.add_get(TOPIC + "/eventSubscriptions/{name}", get_subscription)
    app.router.add_get(TOPIC + "/providers/Microsoft.Insights/metrics", get_metrics)


def _topic(request: web.Request, action: str) -> tuple[EventGrid, str]:
    from sandbox.arm_api import _authorized, _require

    state, token = _authorized(request)
    grid = request.app[EVENTS]
    info = request.match_info
    topic_id = TOPIC.format(sub=info["sub"], rg=info["rg"], topic=info["topic"])
    if topic_id.lower() != system_topic_id(grid.topic).lower():
        raise _missing("Microsoft.EventGrid/systemTopics", info["topic"], info["rg"])
    _require(state, token, action, topic_id)
    return grid, topic_id


async def get_subscription(request: web.Request) -> web.Response:
    grid, topic_id = _topic(request, READ_SUBSCRIPTION)
    name = request.match_info["name"]
    found = grid.subscriptions.get(name.lower())
    if found is None:
        raise _missing("Microsoft.EventGrid/systemTopics/eventSubscriptions", name, "")
    properties: dict[str, Any] = {
        "topic": grid.topic,
        "provisioningState": "Succeeded",
        "destination": {
            "endpointType": "AzureFunction",
            "properties": {
                "resourceId": found.function_id,
                "maxEventsPerBatch": 1,
                "preferredBatchSizeInKilobytes": 64,
            },
        },
        "filter": {
            "includedEventTypes": list(found.included),
            "subjectBeginsWith": found.begins_with,
            "subjectEndsWith": found.ends_with,
            "isSubjectCaseSensitive": False,
        },
        "eventDeliverySchema": "EventGridSchema",
        "retryPolicy": {
            "maxDeliveryAttempts": found.max_attempts,
            "eventTimeToLiveInMinutes": 1440,
        },
    }
    if found.dead_letter:
        properties["deadLetterWithResourceIdentity"] = {
            "identity": {"type": "SystemAssigned"},
            "deadLetterDestination": {"endpointType": "StorageBlob"},
        }
    return web.json_response(
        {
            "id": f"{topic_id}/eventSubscriptions/{found.name}",
            "name": found.name,
            "type": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
            "properties": properties,
        }
    )


async def get_metrics(request: web.Request) -> web.Response:
    """Totals since the sandbox started (the requested timespan is not sliced)."""
    grid, topic_id = _topic(request, READ_METRICS)
    totals = {
        "DeliverySuccessCount": sum(s.delivered for s in grid.subscriptions.values()),
        "DeadLetteredCount": sum(len(s.dead_letters) for s in grid.subscriptions.values()),
        "DroppedEventCount": 0,
    }
    wanted = request.query.get("metricnames", "").split(",")
    now = grid.state.clock.now().isoformat()
    value = [
        {
            "id": f"{topic_id}/providers/Microsoft.Insights/metrics/{name}",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": name, "localizedValue": name},
            "unit": "Count",
            "timeseries": [{"metadatavalues": [], "data": [{"timeStamp": now, "total": total}]}],
        }
        for name, total in totals.items()
        if name in wanted
    ]
    return web.json_response(
        {"timespan": request.query.get("timespan", ""), "interval": "P1D", "value": value}
    )


def _missing(kind: str, name: str, group: str) -> ApiError:
    where = f" under resource group '{group}'" if group else ""
    return ApiError(
        404,
        "ResourceNotFound",
        f"The Resource '{kind}/{name}'{where} was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )
