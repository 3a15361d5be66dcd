"""Key Vault's events, delivered by the sandbox's Event Grid through function_app's real
Event Grid trigger (`key_vault_events`): near expiry rotates once; a hand-written version is
caught, checked by SMTP AUTH read-only, reported and never retired or overwritten; our own
writes, repeats and malformed events change nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
from aiohttp import web
from azure.keyvault.secrets.aio import SecretClient

from demo.walkthrough import write_secret
from rotation.azure.identity import build_credential
from rotation.azure.trust import connection_options
from rotation.azure.vault_items import SETTLED_TAG
from rotation.model import DRIFT_SEEN_TAG, DRIFT_SMTP_TAG
from rotation.settings import load_settings
from sandbox.event_grid import NEAR_EXPIRY, NEW_VERSION
from sandbox.seed import Sender
from sandbox.server import Sandbox
from sandbox.state import SecretVersion
from tests.function.test_function_app import get, load, post, trigger, writes
from tests.waiting import until

SUBSCRIPTION = "acs-smtp-rotation"  # the one infra makes (and the sandbox starts with)


class Subscriber:
    """The Functions host's part: each delivered event becomes an azure.functions
    EventGridEvent for the trigger; 2xx when it returned, 500 when it raised."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.answered: list[int] = []
        self.errors: list[BaseException] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/runtime/webhooks/eventgrid", self.receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/runtime/webhooks/eventgrid"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def receive(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        status = 200
        for item in body if isinstance(body, list) else [body]:
            event = as_binding(item)
            try:
                await trigger(self.module, "key_vault_events")(event)
            except Exception as exc:
                self.errors.append(exc)
                status = 500
        self.answered.append(status)
        return web.Response(status=status)


def as_binding(item: Any) -> func.EventGridEvent:
    """What the Event Grid extension hands a Python function (fields as delivered)."""
    get = item.get if isinstance(item, dict) else (lambda _key: None)
    return func.EventGridEvent(
        id=get("id"),
        data=get("data"),
        topic=get("topic"),
        subject=get("subject"),
        event_type=get("eventType"),
        event_time=None,
        data_version=get("dataVersion"),
    )


@pytest.fixture
async def watched(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[ModuleType, Subscriber]]:
    module = load(sandbox, monkeypatch, http_verify_timeout_seconds=2)  # the drift check's bound
    subscriber = Subscriber(module)
    await subscriber.start()
    assert sandbox.event_grid is not None
    # infra/modules/eventgrid.bicep's filter: the secret name template's prefix.
    sandbox.event_grid.subscribe(SUBSCRIPTION, subscriber.url, begins_with="acs-smtp-")
    yield module, subscriber
    await subscriber.stop()
    await module.api.close()


async def settled(sandbox: Sandbox) -> None:
    """Every event raised so far delivered and answered (the clock's events raised first,
    as the sandbox's Event Grid raises them when it next looks)."""
    grid = sandbox.event_grid
    assert grid is not None
    grid.scan()
    await until(lambda: grid.pending() == 0, 30)


def versions(sandbox: Sandbox, name: str) -> list[SecretVersion]:
    return sandbox.state.vault[name.lower()]


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The product's JSON lines named `event` (as the timer tests read them)."""
    parsed = [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    return [line for line in parsed if line.get("event") == event]


async def first_rotation(module: ModuleType, app_id: str) -> None:
    status, report = await post(module, {"appIds": [app_id], "mode": "force"})
    assert status == 200, report
    assert report["apps"][0]["outcome"] == "rotated"


async def write_by_hand(sandbox: Sandbox, name: str, value: str) -> str:
    """A person's `az keyvault secret set` (the demo's: the real SDK, a new version)."""
    return await write_secret(load_settings(sandbox.env()), name, value)


async def promoted_sender(sandbox: Sandbox, module: ModuleType) -> tuple[Sender, str]:
    """A sender whose password the rotator has promoted, every event of it delivered."""
    sender = sandbox.add_sender()
    await first_rotation(module, sender.app_id)
    await settled(sandbox)
    return sender, module.settings.secret_name(sender.app_id)


async def test_near_expiry_rotates_the_app_once_and_our_own_write_is_ignored(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    module, subscriber = watched
    sender = sandbox.add_sender()
    name = module.settings.secret_name(sender.app_id)
    await first_rotation(module, sender.app_id)
    await settled(sandbox)  # our promotion's SecretNewVersionCreated
    assert [v.version for v in versions(sandbox, name)]
    first = versions(sandbox, name)[-1]

    # 180-day secret: Key Vault raises SecretNearExpiry 30 days before it ends.
    sandbox.state.clock.advance(timedelta(days=151))
    await settled(sandbox)  # near expiry, then our new promotion
    assert set(subscriber.answered) == {200}
    assert len(versions(sandbox, name)) == 2
    assert versions(sandbox, name)[-1].version != first.version
    planned = [line["reason"] for line in lines(caplog, "app.planned")]
    assert planned[-1].startswith("Key Vault event SecretNearExpiry for current version")
    received = lines(caplog, "event.received")
    assert [(r["event_type"], r["verdict"]) for r in received] == [("SecretNearExpiry", "rotate")]
    ignored = [line["reason"] for line in lines(caplog, "event.ignored")]
    assert ignored.count("written by the rotator (its own promotion)") == 2  # both promotions

    # A repeat of the near-expiry event, delivered again: the version is no longer current.
    grid = sandbox.event_grid
    assert grid is not None
    (near,) = [e for e in grid.published if e["eventType"] == NEAR_EXPIRY]
    grid.post(SUBSCRIPTION, [near])
    await settled(sandbox)
    assert len(versions(sandbox, name)) == 2  # rotated once
    assert any(
        "not the current version" in line["reason"] for line in lines(caplog, "event.ignored")
    )


async def test_a_hand_written_version_that_works_is_reported_and_never_retired(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    module, _subscriber = watched
    sender, name = await promoted_sender(sandbox, module)
    # Someone adds a client secret in the portal and pastes it into Key Vault.
    by_hand = sandbox.state.add_password(sender.app, display_name="added in the portal")
    version = await write_by_hand(sandbox, name, by_hand.secret_text)
    await settled(sandbox)

    (caught,) = lines(caplog, "vault.drift_detected")
    assert (caught["vault_version"], caught["smtp"], caught["marked"]) == (
        version,
        "accepted",
        True,
    )
    assert caught["level"] == "warning"
    tags = versions(sandbox, name)[-1].tags
    assert tags[DRIFT_SMTP_TAG] == "accepted"
    assert DRIFT_SEEN_TAG in tags

    # Grace long over, timer runs: blocked, nothing retired, nothing written over it.
    sandbox.state.clock.advance(timedelta(days=5))
    report = await module.api.timer()
    (outcome,) = [a for a in report["apps"] if a["appId"] == sender.app_id]
    assert outcome["outcome"] == "blocked"
    # The run says it once too (it alone alerts when events are off): the tags' verdict.
    ran = lines(caplog, "vault.drift_detected")[1:]
    assert [(line["smtp"], line["marked"]) for line in ran] == [("accepted", True)]
    keys = {p.key_id for p in sender.app.passwords}
    assert by_hand.key_id in keys
    assert len(keys) >= 2  # the last proven one too
    assert versions(sandbox, name)[-1].version == version

    status, body = await get(module, "status")
    (row,) = [r for r in body["apps"] if r["appId"] == sender.app_id]
    assert (status, row["state"], row["drift"]["smtp"]) == (200, "drift", "accepted")
    assert row["drift"]["version"] == version

    # A repeat of the new-version event: already caught, nothing checked again.
    grid = sandbox.event_grid
    assert grid is not None
    (hand_event,) = [
        e
        for e in grid.published
        if e["eventType"] == NEW_VERSION and e["data"]["Version"] == version
    ]
    caught_so_far = len(lines(caplog, "vault.drift_detected"))  # the check's, and the run's
    grid.post(SUBSCRIPTION, [hand_event])
    await settled(sandbox)
    assert len(lines(caplog, "vault.drift_detected")) == caught_so_far


async def test_a_hand_written_version_that_fails_alerts_and_the_proven_one_is_left_alone(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    module, _subscriber = watched
    sender, name = await promoted_sender(sandbox, module)
    proven = versions(sandbox, name)[-1]
    keys_before = {p.key_id for p in sender.app.passwords}

    version = await write_by_hand(sandbox, name, "a typo of a password")
    await settled(sandbox)

    (caught,) = lines(caplog, "vault.drift_detected")
    assert (caught["smtp"], caught["level"]) == ("refused", "error")
    assert "535" in caught["error"] or "rejected" in caught["error"].lower()
    assert "a typo of a password" not in caplog.text
    assert proven.enabled  # the last proven version still serves anyone reading it by version
    assert {p.key_id for p in sender.app.passwords} == keys_before  # no Entra change at all
    sandbox.state.clock.advance(timedelta(days=5))
    report = await module.api.timer()
    (outcome,) = [a for a in report["apps"] if a["appId"] == sender.app_id]
    assert outcome["outcome"] == "blocked"
    assert "REFUSED" in outcome["error"]
    assert {p.key_id for p in sender.app.passwords} == keys_before
    assert versions(sandbox, name)[-1].version == version


async def copy_by_hand(sandbox: Sandbox, name: str, value: str) -> str:
    """A script's `az keyvault secret set --tags <the current version's tags>`: a new value
    under the proven version's tags, its key-id included (the real SDK, a new version)."""
    settings = load_settings(sandbox.env())
    credential = build_credential(settings)
    async with (
        credential,
        SecretClient(settings.key_vault_url, credential, **connection_options(settings)) as client,
    ):
        proven = (await client.get_secret(name)).properties
        secret = await client.set_secret(
            name, value, tags=proven.tags, content_type=proven.content_type
        )
    return secret.properties.version or ""


async def test_a_hand_written_version_copying_the_proven_tags_is_drift_and_never_retired(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    """Review finding 4: the copy's key-id made it "written by the rotator": its event was
    ignored, no run was blocked, and once the grace ended the run removed the portal's
    credential, the one the version Key Vault serves holds (I1)."""
    module, _subscriber = watched
    sender, name = await promoted_sender(sandbox, module)
    by_hand = sandbox.state.add_password(sender.app, display_name="added in the portal")
    version = await copy_by_hand(sandbox, name, by_hand.secret_text)
    await settled(sandbox)
    assert versions(sandbox, name)[-1].tags["key-id"] == versions(sandbox, name)[-2].tags["key-id"]

    (caught,) = lines(caplog, "vault.drift_detected")
    assert (caught["vault_version"], caught["smtp"]) == (version, "accepted")
    sandbox.state.clock.advance(timedelta(days=5))  # the grace long over
    report = await module.api.timer()
    (outcome,) = [a for a in report["apps"] if a["appId"] == sender.app_id]
    assert outcome["outcome"] == "blocked"
    assert by_hand.key_id in {p.key_id for p in sender.app.passwords}
    status, body = await get(module, "status")
    (row,) = [r for r in body["apps"] if r["appId"] == sender.app_id]
    assert (status, row["state"], row["drift"]["version"]) == (200, "drift", version)


async def test_a_copy_of_a_settled_version_mark_included_shows_as_drift_once_caught(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    """The copy carries the settled mark too, so the vault-wide listing reads it as settled
    and status planned from it alone ("ok"); once its event has caught it, its drift-seen
    tag makes status and runs read the history, which shows the copy."""
    module, _subscriber = watched
    sender, name = await promoted_sender(sandbox, module)
    sandbox.state.clock.advance(timedelta(days=3))  # the seeded credential's grace ends
    await module.api.timer()  # retired, then marked settled
    await settled(sandbox)
    assert SETTLED_TAG in versions(sandbox, name)[-1].tags
    await copy_by_hand(sandbox, name, "a typo of a password")
    await settled(sandbox)
    (caught,) = lines(caplog, "vault.drift_detected")
    assert caught["smtp"] == "refused"

    status, body = await get(module, "status")
    (row,) = [r for r in body["apps"] if r["appId"] == sender.app_id]
    assert (status, row["state"]) == (200, "drift")
    report = await module.api.timer()
    (outcome,) = [a for a in report["apps"] if a["appId"] == sender.app_id]
    assert outcome["outcome"] == "blocked"


async def test_the_rotators_own_promotion_sent_twice_is_not_drift(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    """Key Vault answers 503 after storing the promotion; azure-core sends the PUT again
    and Key Vault keeps both versions, one key id: both the rotator's, never drift."""
    module, _subscriber = watched
    sender, name = await promoted_sender(sandbox, module)
    sandbox.state.faults.inject("vault PUT /secrets/{name}", status=503, after=True, times=1)
    await first_rotation(module, sender.app_id)
    await settled(sandbox)
    twice = versions(sandbox, name)[-2:]
    assert twice[0].tags["key-id"] == twice[1].tags["key-id"]
    assert lines(caplog, "vault.drift_detected") == []
    status, body = await get(module, "status")
    (row,) = [r for r in body["apps"] if r["appId"] == sender.app_id]
    assert (status, row["state"]) == (200, "ok")


async def test_a_named_forced_run_resolves_drift_and_the_hand_written_credential_keeps_its_grace(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber]
) -> None:
    module, _subscriber = watched
    sender = sandbox.add_sender()
    name = module.settings.secret_name(sender.app_id)
    await first_rotation(module, sender.app_id)
    by_hand = sandbox.state.add_password(sender.app, display_name="added in the portal")
    await write_by_hand(sandbox, name, by_hand.secret_text)
    await settled(sandbox)

    status, due = await post(module, {"appIds": [sender.app_id]})  # due: still blocked
    assert (status, due["apps"][0]["outcome"]) == (200, "blocked")
    await first_rotation(module, sender.app_id)  # forced and named: resolved
    assert versions(sandbox, name)[-1].tags.get("key-id")
    assert by_hand.key_id in {p.key_id for p in sender.app.passwords}  # grace, not at once


async def test_malformed_events_are_dropped_with_a_line_and_change_nothing(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    module, subscriber = watched
    _sender, name = await promoted_sender(sandbox, module)
    grid = sandbox.event_grid
    assert grid is not None
    good = grid.published[-1]
    before = writes(sandbox.state)
    bad: list[Any] = [None, 3, "text", [], {}]
    for key in ("id", "topic", "subject", "eventType", "data"):
        for value in (None, 5, [], {"x": 1}):
            bad.append({**good, key: value})
    for key in ("Id", "VaultName", "ObjectType", "ObjectName", "Version", "EXP"):
        for value in (None, True, [1], "not right"):
            bad.append({**good, "data": {**good["data"], key: value}})
        bad.append({**good, "data": {k: v for k, v in good["data"].items() if k != key}})
    await settled(sandbox)
    caplog.clear()  # only the lines of the bodies below are counted (review finding 16)
    for body in bad:
        grid.post(SUBSCRIPTION, [body])
    await settled(sandbox)

    assert subscriber.errors == []
    assert set(subscriber.answered) == {200}
    # Exactly three bodies are well-formed, each ignored: a VaultName of "not right" (another
    # vault), and an EXP of None or left out (no expiry; the event is then the rotator's own
    # promotion). Every other body is dropped as malformed, one line each.
    assert len(lines(caplog, "event.malformed")) == len(bad) - 3
    ignored = [line["reason"] for line in lines(caplog, "event.ignored")]
    assert len(ignored) == 3, ignored
    assert sum("another vault" in reason for reason in ignored) == 1, ignored
    assert len(versions(sandbox, name)) == 1
    assert writes(sandbox.state) == before  # nothing written to Graph or Key Vault


async def test_events_of_unmanaged_secrets_and_other_vaults_are_ignored(
    sandbox: Sandbox, watched: tuple[ModuleType, Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    _module, subscriber = watched
    grid = sandbox.event_grid
    assert grid is not None
    sandbox.add_sender()
    await write_by_hand(sandbox, "acs-smtp-not-an-app", "whatever")
    await settled(sandbox)
    event = grid.published[-1]
    grid.post(SUBSCRIPTION, [{**event, "data": {**event["data"], "VaultName": "elsewhere"}}])
    await settled(sandbox)
    assert set(subscriber.answered) == {200}
    assert any("another vault" in line["reason"] for line in lines(caplog, "event.ignored"))
    assert lines(caplog, "vault.drift_detected") == []
