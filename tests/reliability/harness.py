"""What every reliability scenario needs: the real rotator wired to a sandbox, conditions
to wait on, and the checks that say what "converged" and "the password works" mean.

The rotator is built with `RotationService.open` exactly as the Function App builds it;
only its SMTP verifier gets a quicker backoff (production starts at 1 s), so that a
propagation delay of a fraction of a second costs a fraction of a second.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from rotation import answers
from rotation.azure.clients import Overrides
from rotation.azure.identity import build_credential
from rotation.azure.smtp import Backoff, SmtpVerifier
from rotation.azure.trust import connection_options, trusted_ssl_context
from rotation.core.ports import Verifier
from rotation.model import CREDENTIAL_PREFIX
from rotation.service import RotationService
from rotation.settings import Settings, load_settings
from sandbox.faults import Fault
from sandbox.seed import Sender
from sandbox.server import Sandbox
from sandbox.state import Application, SandboxState, SecretVersion

FAST_BACKOFF = Backoff(initial=0.05, max=0.2, jitter=0.02)
#: Verify timeout of the scenarios: long enough for any injected fault, short for I5 windows.
VERIFY_TIMEOUT = 20
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
#: Python started by subprocess scenarios: this interpreter, the repo on its path.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class World:
    """A running sandbox, its senders, and the rotator's service pointed at it."""

    sandbox: Sandbox
    env: dict[str, str]
    settings: Settings
    service: RotationService
    senders: list[Sender] = field(default_factory=list)

    @functools.cached_property
    def auth(self) -> dict[str, str]:
        """An operator's Authorization header: every app role of the API, as Azure CLI gets it."""
        return {"Authorization": f"Bearer {self.sandbox.user_token(self.sandbox.add_api_user())}"}

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    def secret_name(self, sender: Sender) -> str:
        return self.settings.secret_name(sender.app_id)

    def application(self, sender: Sender) -> Application:
        return sender.app

    def key_ids(self, sender: Sender) -> set[str]:
        return {p.key_id for p in sender.app.passwords}

    def our_key_ids(self, sender: Sender) -> set[str]:
        """Credentials the rotator made (by display name), whether promoted or not."""
        return {
            p.key_id
            for p in sender.app.passwords
            if (p.display_name or "").startswith(CREDENTIAL_PREFIX)
        }

    def live(self, sender: Sender) -> SecretVersion | None:
        """What a consumer reading "latest" gets from Key Vault right now."""
        return self.state.live_secret(self.secret_name(sender))

    def live_key_id(self, sender: Sender) -> str | None:
        live = self.live(sender)
        return live.tags.get("key-id") if live else None

    def password_works(self, sender: Sender) -> bool:
        """I1 seen from outside: the Key Vault password passes ACS's SMTP AUTH rule."""
        live = self.live(sender)
        return live is not None and self.state.smtp_login(sender.username, live.value).ok

    def writes(self) -> int:
        """Write requests Graph and Key Vault have received so far (for I7)."""
        return sum(
            n
            for key, n in self.state.requests.items()
            if key.split(" ")[0] in ("graph", "vault") and key.split(" ")[1] in WRITE_METHODS
        )

    def count(self, route: str) -> int:
        return self.state.requests[route]


#: The `make_world` fixture: `make_world(senders, **settings)` (tests/reliability/conftest.py).
MakeWorld = Callable[..., World]


def fast_verifier(settings: Settings) -> SmtpVerifier:
    return SmtpVerifier(
        settings.smtp_host,
        settings.smtp_port,
        trusted_ssl_context(settings),
        attempt_timeout=5,
        backoff=FAST_BACKOFF,
    )


def open_service(
    sandbox: Sandbox, settings: Settings, verifier: Verifier | None = None
) -> RotationService:
    """The real wiring (`RotationService.open`) with a quick verifier backoff, or the
    scenario's own `verifier` put in through the composition root."""
    overrides = Overrides(verifier=verifier or fast_verifier(settings))
    return RotationService.open(settings, clock=sandbox.state.clock.now, overrides=overrides)


def set_propagation_delay(sandbox: Sandbox, seconds: float) -> None:
    """New secrets start working `seconds` after creation; the ones already seeded count
    as propagated (as with ``Sandbox(propagation_delay=...)``, which seeds after setting it)."""
    delay = timedelta(seconds=seconds)
    longer = max(timedelta(0), delay - sandbox.state.propagation_delay)
    for app in sandbox.state.applications.values():
        for password in app.passwords:
            password.created -= longer
    sandbox.state.propagation_delay = delay


def world_env(sandbox: Sandbox, **overrides: object) -> dict[str, str]:
    overrides.setdefault("verify_timeout_seconds", VERIFY_TIMEOUT)
    overrides.setdefault("log_format", "json")
    return sandbox.env(**overrides)


def open_world(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    senders: int | list[Sender] = 1,
    **overrides: object,
) -> World:
    """Seeds `senders` (or takes them), exports the environment DefaultAzureCredential
    reads, and opens the rotator on `sandbox`."""
    seeded = (
        senders if isinstance(senders, list) else [sandbox.add_sender() for _ in range(senders)]
    )
    env = world_env(sandbox, **overrides)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(env)
    return World(sandbox, env, settings, open_service(sandbox, settings), seeded)


async def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = 15.0, poll: float = 0.005
) -> None:
    """Waits for `condition` (never for a fixed time); fails naming `what` on timeout."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110 (sandbox state has no event to wait on)
                await asyncio.sleep(poll)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


def past_verify_window(world: World) -> timedelta:
    """How far to move the sandbox clock so that every orphan is past its window (I5)."""
    return world.settings.verify_window + timedelta(seconds=1)


class Tripwire(Fault):
    """A fault that changes nothing but calls `on_hit` when its route is requested (after
    skipping the first `skip` requests): a condition on the sandbox, not on time."""

    def __init__(self, route: str, on_hit: Callable[[], None], skip: int = 0) -> None:
        super().__init__(route)
        self.on_hit = on_hit
        self.skip = skip
        self.fired = False

    def matches(self, route: str) -> bool:
        if self.fired or not super().matches(route):
            return False
        if self.skip:
            self.skip -= 1
            return False
        self.fired = True
        self.on_hit()
        return False


class HoldAfter(Fault):
    """Holds (latency, then a dropped connection) every request of `route` after the
    first `skip`, so that a process can be killed with that request in flight."""

    def __init__(self, route: str, skip: int, hold: float) -> None:
        super().__init__(route, latency=hold, drop=True)
        self.skip = skip

    def matches(self, route: str) -> bool:
        if not super().matches(route):
            return False
        if self.skip:
            self.skip -= 1
            return False
        return True


@contextmanager
def faults_cleared(state: SandboxState) -> Iterator[None]:
    """Removes every injected fault on exit (recovery runs see a healthy cloud)."""
    try:
        yield
    finally:
        state.faults.clear()


class VaultWatch:
    """I1 as a monitor: every few milliseconds, each app's Key Vault password must pass
    ACS's AUTH rule (once the app has one). Runs in the sandbox's own event loop, so each
    sample sees a consistent state."""

    def __init__(self, world: World, senders: list[Sender]) -> None:
        self.world = world
        self.senders = senders
        self.samples = 0
        self.seen: set[str] = set()
        self.violations: list[str] = []

    async def run(self, stop: asyncio.Event, period: float = 0.005) -> None:
        while not stop.is_set():
            self.check()
            await asyncio.sleep(period)
        self.check()

    def check(self) -> None:
        self.samples += 1
        for sender in self.senders:
            live = self.world.live(sender)
            if live is None:
                if sender.app_id in self.seen:
                    self.violations.append(f"{sender.app_id}: Key Vault serves no password")
                continue
            self.seen.add(sender.app_id)
            if not self.world.state.smtp_login(sender.username, live.value).ok:
                key_id = live.tags.get("key-id")
                self.violations.append(
                    f"{sender.app_id}: Key Vault version {live.version} (key {key_id}) is refused"
                )


@dataclass(frozen=True)
class EngineEvent:
    at: float  # time.monotonic()
    event: str
    fields: dict[str, object]


class EngineEvents(logging.Handler):
    """The engine's structured events as they are logged, with optional triggers that run
    synchronously inside the engine's log call (so "cancel right after X" is exact)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[EngineEvent] = []
        self.triggers: dict[str, Callable[[EngineEvent], None]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, dict):
            return
        fields = dict(record.msg)
        event = EngineEvent(time.monotonic(), str(fields.get("event")), fields)
        self.events.append(event)
        trigger = self.triggers.pop(event.event, None)
        if trigger is not None:
            trigger(event)

    def named(self, name: str) -> list[EngineEvent]:
        return [e for e in self.events if e.event == name]

    @contextmanager
    def attached(self) -> Iterator[EngineEvents]:
        logger = logging.getLogger("rotation")
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)


def versions_enabled_without_credential(world: World, sender: Sender) -> list[str]:
    """Key Vault versions still enabled although their credential is gone (dead passwords
    that a consumer pinned to a version would still be served)."""
    alive = world.key_ids(sender)
    return [
        v.version
        for v in world.state.vault.get(world.secret_name(sender).lower(), [])
        if v.enabled and v.tags.get("key-id") not in alive
    ]


async def converge(world: World, sender: Sender, record: Callable[[str, object], None]) -> int:
    """What the design promises after any crash: the next run succeeds, the Key Vault
    password works throughout, every orphan is gone once its verify window has passed,
    exactly the Key Vault credential is left, no enabled version names a removed one, and
    one more run writes nothing (I7). Returns the runs it took."""
    runs = 0
    for advance in (timedelta(0), past_verify_window(world)):
        world.state.clock.advance(advance)
        report = await world.service.run()
        runs += 1
        record(f"recovery run {report.run_id}", answers.RunReport.of(report).body())
        assert report.ok, answers.RunReport.of(report).body()
        assert world.password_works(sender)
    current = world.live_key_id(sender)
    assert current is not None
    assert world.key_ids(sender) == {current}, "a credential outlived its window"
    assert versions_enabled_without_credential(world, sender) == []
    writes = world.writes()
    report = await world.service.run()
    record(f"idle run {report.run_id}", answers.RunReport.of(report).body())
    assert world.writes() == writes, "a run right after convergence still wrote (I7)"
    return runs + 1


async def break_dead_leases(world: World) -> int:
    """Breaks (Lease Blob, action "break", period 0) every lease held in the world's lease
    container, and says how many there were: what a killed worker's leases come to by
    themselves within ROTATION_LEASE_SECONDS, without the wait. test_leases.py shows the
    wait itself once."""
    from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

    settings = world.settings
    assert settings.lease_blob_url is not None
    credential = build_credential(settings)
    client = BlobServiceClient(
        settings.lease_blob_url, credential=credential, **connection_options(settings)
    )
    broken = 0
    async with credential, client:
        container = client.get_container_client(settings.lease_container)
        async for blob in container.list_blobs():
            if blob.lease.state == "leased":
                lease = BlobLeaseClient(container.get_blob_client(blob.name))
                await lease.break_lease(lease_break_period=0)
                broken += 1
    return broken


def load_function_app(
    monkeypatch: pytest.MonkeyPatch, world: World, verifier: Verifier | None = None
) -> ModuleType:
    """function_app as the Functions host imports it (settings from the environment),
    its Api over the same wiring as `open_service` (quick verifier backoff, or `verifier`)."""
    from rotation.http_api import Api

    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ROTATION_SCHEDULE", "0 0 3 * * *")
    # A fresh import, as a worker start does; the previous module comes back afterwards.
    monkeypatch.setitem(sys.modules, "function_app", ModuleType("function_app"))
    sys.modules.pop("function_app")
    module = importlib.import_module("function_app")
    module.api = Api(module.settings, lambda s: open_service(world.sandbox, s, verifier))  # type: ignore[attr-defined]
    return module


def function_handlers(module: ModuleType) -> dict[str, Callable[..., Awaitable[Any]]]:
    """The user functions behind function_app's decorators, by function name."""
    return {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}
