"""The sandbox's Event Grid (sandbox/event_grid.py) does what Microsoft documents: near expiry
30 days before EXP by the sandbox clock, expired at EXP, each once per current version; new
versions on every set; subject filters; 400 dead-lettered at once, other failures retried up
to the subscription's attempts, then dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from rotation.resource_ids import system_topic_id
from sandbox import event_grid
from sandbox.event_grid import EXPIRED, NEAR_EXPIRY, NEAR_EXPIRY_LEAD, NEW_VERSION, EventGrid
from sandbox.server import Sandbox
from sandbox.state import SecretVersion
from tests.waiting import until


class Endpoint:
    """A subscriber answering each delivery with the next status of `statuses` (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = statuses or []
        self.bodies: list[Any] = []
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    found = Endpoint()
    app = web.Application()
    app.router.add_post("/events", found.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/events"
    yield found
    await runner.cleanup()


def put(
    sandbox: Sandbox, name: str, expires: datetime | None, version_id: str = "ab" * 16
) -> SecretVersion:
    """A version as Key Vault's set would store it, and its SecretNewVersionCreated."""
    now = sandbox.state.clock.now()
    version = SecretVersion(name, version_id, "v", None, {}, True, expires, None, now, now)
    sandbox.state.vault.setdefault(name.lower(), []).append(version)
    grid(sandbox).new_version(version)
    return version


def grid(sandbox: Sandbox) -> EventGrid:
    assert sandbox.event_grid is not None
    return sandbox.event_grid


def types(sandbox: Sandbox) -> list[str]:
    return [e["eventType"] for e in grid(sandbox).published]


async def test_near_expiry_comes_thirty_days_before_exp_once_then_expired(
    sandbox: Sandbox,
) -> None:
    expires = sandbox.state.clock.now() + timedelta(days=40)
    put(sandbox, "acs-smtp-a", expires)
    grid(sandbox).scan()
    assert types(sandbox) == [NEW_VERSION]
    sandbox.state.clock.advance(timedelta(days=10) - timedelta(minutes=1))
    grid(sandbox).scan()
    assert types(sandbox) == [NEW_VERSION]  # a minute short of the lead
    sandbox.state.clock.advance(timedelta(minutes=2))
    grid(sandbox).scan()
    grid(sandbox).scan()
    assert types(sandbox) == [NEW_VERSION, NEAR_EXPIRY]  # once
    assert timedelta(days=30) == NEAR_EXPIRY_LEAD
    sandbox.state.clock.advance(timedelta(days=31))
    grid(sandbox).scan()
    assert types(sandbox) == [NEW_VERSION, NEAR_EXPIRY, EXPIRED]


async def test_the_background_loop_scans_a_large_vault_slice_by_slice(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery loop checks `SCAN_SLICE` names a tick: every secret is still reached,
    a deleted name is passed over, and no event is raised twice."""
    monkeypatch.setattr(event_grid, "SCAN_SLICE", 2)
    soon = sandbox.state.clock.now() + timedelta(days=5)
    names = [f"acs-smtp-{i}" for i in range(7)]
    for i, name in enumerate(names):
        put(sandbox, name, soon, version_id=f"{i:032x}")
    del sandbox.state.vault["acs-smtp-6"]
    await until(lambda: types(sandbox).count(NEAR_EXPIRY) == 6)
    near = [e["subject"] for e in grid(sandbox).published if e["eventType"] == NEAR_EXPIRY]
    assert sorted(near) == names[:6]
    await asyncio.sleep(0.3)  # several more full cycles
    assert types(sandbox).count(NEAR_EXPIRY) == 6


async def test_events_carry_the_published_data_keys_with_numbers(sandbox: Sandbox) -> None:
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    version = put(sandbox, "acs-smtp-a", expires)
    (event,) = grid(sandbox).published
    assert set(event) == {
        "id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion"
    }  # fmt: skip
    assert event["subject"] == "acs-smtp-a"
    assert event["data"] == {
        "Id": f"{sandbox.vault_url.rstrip('/')}/secrets/acs-smtp-a/{version.version}",
        "VaultName": sandbox.state.vault_name,
        "ObjectType": "Secret",
        "ObjectName": "acs-smtp-a",
        "Version": version.version,
        "NBF": None,
        "EXP": int(expires.timestamp()),
    }


async def test_only_the_current_version_nears_expiry(sandbox: Sandbox) -> None:
    soon = sandbox.state.clock.now() + timedelta(days=5)
    put(sandbox, "acs-smtp-a", soon)
    put(sandbox, "acs-smtp-a", soon + timedelta(days=180))  # rotated since
    grid(sandbox).scan()
    assert NEAR_EXPIRY not in types(sandbox)


async def test_subject_filters_and_one_event_per_delivery(
    sandbox: Sandbox, endpoint: Endpoint
) -> None:
    grid(sandbox).subscribe("s", endpoint.url, begins_with="ACS-SMTP-", ends_with="")
    put(sandbox, "acs-smtp-a", None)
    put(sandbox, "other-secret", None)
    await until(lambda: grid(sandbox).pending() == 0 and len(endpoint.bodies) == 1)
    (body,) = endpoint.bodies
    assert isinstance(body, list)
    assert [e["subject"] for e in body] == ["acs-smtp-a"]  # case-insensitive, filtered


async def test_failures_are_retried_then_dead_lettered_and_400_at_once(
    sandbox: Sandbox, endpoint: Endpoint
) -> None:
    grid(sandbox).retry_after = 0.01
    subscription = grid(sandbox).subscribe("s", endpoint.url, max_attempts=3)
    endpoint.statuses = [500, 503, 200]
    put(sandbox, "acs-smtp-a", None)
    await until(lambda: grid(sandbox).pending() == 0)
    assert (len(endpoint.bodies), subscription.delivered, subscription.dead_letters) == (3, 1, [])

    endpoint.statuses = [500, 500, 500]
    put(sandbox, "acs-smtp-b", None)
    await until(lambda: grid(sandbox).pending() == 0)
    assert [d["attempts"] for d in subscription.dead_letters] == [3]

    endpoint.statuses = [400]
    put(sandbox, "acs-smtp-c", None)
    await until(lambda: grid(sandbox).pending() == 0)
    assert [d["lastHttpCode"] for d in subscription.dead_letters] == [500, 400]


def test_the_sandbox_names_the_system_topic_as_the_product_reads_it() -> None:
    """Review finding 21: the sandbox had its own copy of the topic's name, which lost the
    vault's name from an id written with a trailing slash ("evgt-"); it now uses the
    product's pure helper (the product never imports the sandbox)."""
    vault = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
    topic = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventGrid/systemTopics/evgt-kv1"
    for written in (vault, vault + "/"):
        assert event_grid.system_topic_id(written) == topic
        assert system_topic_id(written) == topic
