"""rotation/vault_watch.py on fakes of our own ports: what SMTP's answer becomes, and what is
ignored before anything is read. (tests/function/test_key_vault_events.py runs it for real,
through the trigger, against the sandbox.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import structlog
from pydantic import SecretStr

from rotation.errors import FailureKind, VerificationFailed
from rotation.model import DRIFT_SMTP_TAG, ManagedApp, VaultEntry, VaultVersion
from rotation.settings import load_settings
from rotation.vault_watch import Handled, VaultWatch
from tests.unit.test_settings import BASE
from tests.unit.test_vault_events import published

APP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
VERSION = "ee059b2bb5bc48398a53b168c6cdcb10"
NOW = datetime(2026, 12, 7, tzinfo=UTC)


@dataclass
class Vault:
    entry: VaultEntry
    tagged: dict[str, dict[str, str]] = field(default_factory=dict)
    reads: int = 0

    async def read(self, name: str) -> VaultEntry:
        self.reads += 1
        return self.entry

    async def read_value(self, name: str, version: str) -> SecretStr:
        return SecretStr("pasted by hand")

    async def tag(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.tagged[version] = dict(tags)


@dataclass
class Verifier:
    refusal: FailureKind | None

    async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
        if self.refusal is not None:
            raise VerificationFailed(f"SMTP said no ({self.refusal})", self.refusal)
        return 1


def watch(refusal: FailureKind | None) -> tuple[VaultWatch, Vault]:
    settings = load_settings(
        {**BASE, "ROTATION_KEY_VAULT_URL": "https://sample-kv.vault.azure.net"}
    )
    name = settings.secret_name(APP)
    hand = VaultVersion(VERSION, None, NOW, True)
    # over a secret the rotator manages (a secret it never wrote is adoption, not drift)
    ours = VaultVersion("v0", "k0", NOW - timedelta(days=100), True, tags={"key-id": "k0"})
    vault = Vault(VaultEntry(name, (hand, ours)))
    app = ManagedApp(APP, "t", name, ("user@example",))

    async def choose(app_ids: list[str]) -> Any:
        return SimpleNamespace(apps=[app], skipped=[])

    service = SimpleNamespace(
        settings=settings,
        clients=SimpleNamespace(vault=vault, verifier=Verifier(refusal)),
        engine=SimpleNamespace(clock=lambda: NOW),
        choose=choose,
    )
    return VaultWatch(service), vault  # type: ignore[arg-type]


def hand_written_event() -> dict[str, Any]:
    name = f"acs-smtp-{APP}"
    return published(
        Id=f"https://sample-kv.vault.azure.net/secrets/{name}/{VERSION}", **{"ObjectName ": name}
    )


async def test_smtp_that_cannot_be_reached_leaves_the_version_unverified_and_errors() -> None:
    watcher, vault = watch(FailureKind.TLS)
    with structlog.testing.capture_logs() as lines:
        assert await watcher.handle(hand_written_event()) is Handled.DRIFT
    assert vault.tagged[VERSION][DRIFT_SMTP_TAG] == "unverified"
    (caught,) = [line for line in lines if line["event"] == "vault.drift_detected"]
    assert (caught["smtp"], caught["log_level"]) == ("unverified", "error")
    assert "pasted by hand" not in str(lines)


async def test_a_535_is_refused_and_acceptance_is_a_warning() -> None:
    refused, vault = watch(FailureKind.REJECTED)
    await refused.handle(hand_written_event())
    assert vault.tagged[VERSION][DRIFT_SMTP_TAG] == "refused"
    accepted, vault = watch(None)
    with structlog.testing.capture_logs() as lines:
        await accepted.handle(hand_written_event())
    assert vault.tagged[VERSION][DRIFT_SMTP_TAG] == "accepted"
    assert [line["log_level"] for line in lines if line["event"] == "vault.drift_detected"] == [
        "warning"
    ]


async def test_an_unmanaged_secret_is_ignored_with_a_debug_line_and_nothing_read() -> None:
    watcher, vault = watch(None)
    with structlog.testing.capture_logs() as lines:
        assert await watcher.handle(published()) is Handled.IGNORED  # "newsecret"
    assert vault.reads == 0
    assert [(line["event"], line["log_level"]) for line in lines] == [("event.ignored", "debug")]
    assert lines[0]["reason"] == "not a managed secret"


async def test_another_vault_is_ignored_before_anything_is_read() -> None:
    watcher, vault = watch(None)
    event = hand_written_event()
    event["data"]["VaultName"] = "elsewhere"
    assert await watcher.handle(event) is Handled.IGNORED
    assert vault.reads == 0


async def test_a_malformed_event_is_dropped() -> None:
    watcher, vault = watch(None)
    assert (
        await watcher.handle({"eventType": "Microsoft.KeyVault.SecretExpired"}) is Handled.DROPPED
    )
    assert vault.reads == 0
