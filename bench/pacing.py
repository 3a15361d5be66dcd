"""Verification pacing: how late a new secret is proven, and what it costs ACS.

For each propagation delay D a fresh credential is created in the sandbox directory (the
moment Graph's addPassword returns) and the product's `SmtpVerifier`, with its production
schedule (`rotation.core.pacing.Backoff()`), retries SMTP AUTH against the sandbox relay until the
secret works. Measured: create-to-verified seconds, the lateness past D, and the AUTH
attempts it took. Meanwhile, on a second relay, a secret that never works is retried for a
whole verify window: the most attempts one app can cost ACS in one rotation.

Targets: verified within D + max(2 s, 15 % of D); at most one AUTH attempt per app per 5 s,
averaged over the verify window. Every SMTP connection carries the world's handshake latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.config import WorldConfig
from rotation.azure.smtp import SmtpVerifier
from rotation.core.pacing import Backoff, next_start
from rotation.errors import VerificationFailed
from sandbox.smtp_relay import SmtpRelay
from sandbox.state import Application, SandboxState
from sandbox.tls import SandboxTls, create_tls

DELAYS = (3.0, 15.0, 60.0)
WINDOW = 300.0  # the default ROTATION_VERIFY_TIMEOUT_SECONDS
AUTH = "smtp AUTH"


def allowed_lateness(delay: float) -> float:
    """How late past the propagation delay a secret may be verified (the pacing target in
    README, "Performance"): max(2 s, 15 % of the delay)."""
    return max(2.0, 0.15 * delay)


def attempt_starts(backoff: Backoff, horizon: float, *, jitter: float = 0.0) -> list[float]:
    """The start times of every attempt begun within `horizon` seconds, when each attempt
    fails at once and every gap carries the same `jitter`."""
    starts = [0.0]
    while (following := next_start(backoff, starts[-1], jitter)) <= horizon:
        starts.append(following)
    return starts


@dataclass(frozen=True, slots=True)
class DelayRun:
    delay: float
    verified_seconds: float  # from creation to the AUTH that passed, handshake included
    attempts: int
    ok: bool

    @property
    def late(self) -> float:
        return self.verified_seconds - self.delay

    @property
    def allowed(self) -> float:
        return allowed_lateness(self.delay)

    @property
    def met(self) -> bool:
        return self.ok and self.late <= self.allowed


@dataclass
class PacingResult:
    backoff: dict[str, float]
    smtp_ms: float
    runs: list[DelayRun] = field(default_factory=list)
    window_seconds: float = 0.0
    window_attempts: int = 0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def attempts_per_5s(self) -> float | None:
        if not self.window_seconds:
            return None
        return self.window_attempts / self.window_seconds * 5

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PacingResult:
        runs = [DelayRun(**r) for r in data.pop("runs")]
        return cls(runs=runs, **data)


@dataclass
class _Sender:
    state: SandboxState
    app: Application
    username: str
    relay: SmtpRelay


async def _sender(tls: SandboxTls, smtp_ms: float) -> _Sender:
    """One ACS resource, one app with a role on it, and a relay of its own (own counters)."""
    state = SandboxState()
    tenant_id = state.add_tenant()
    app = state.add_application(tenant_id, "pacing")
    resource = state.add_acs_resource(state.add_subscription(), "rg", "acs-pacing")
    state.assign_role(resource.id, state.add_service_principal(app), "Contributor")
    if smtp_ms:
        state.faults.inject("smtp CONNECT", latency=smtp_ms / 1000)
    relay = SmtpRelay(state, tls.server_context)
    await relay.start()
    return _Sender(state, app, f"{resource.name}.{app.app_id}.{tenant_id}", relay)


def _verifier(tls: SandboxTls, sender: _Sender, backoff: Backoff) -> SmtpVerifier:
    return SmtpVerifier("localhost", sender.relay.port, tls.client_context(), backoff=backoff)


async def _one_delay(
    tls: SandboxTls, sender: _Sender, backoff: Backoff, delay: float, timeout: float
) -> DelayRun:
    state = sender.state
    state.propagation_delay = timedelta(seconds=delay)
    before = state.requests[AUTH]
    credential = state.add_password(sender.app, propagated=False)
    created = time.monotonic()
    verifier = _verifier(tls, sender, backoff)
    try:
        await verifier.verify(sender.username, SecretStr(credential.secret_text), timeout)
        ok = True
    except VerificationFailed:
        ok = False
    return DelayRun(delay, time.monotonic() - created, state.requests[AUTH] - before, ok)


async def _never_works(tls: SandboxTls, sender: _Sender, backoff: Backoff, window: float) -> int:
    """AUTH attempts spent on a secret that never works, over one verify window."""
    verifier = _verifier(tls, sender, backoff)
    with contextlib.suppress(VerificationFailed):
        await verifier.verify(sender.username, SecretStr("never-works-" + "x" * 30), window)
    return sender.state.requests[AUTH]


async def run_pacing(
    config: WorldConfig,
    delays: tuple[float, ...] = DELAYS,
    window: float = WINDOW,
    backoff: Backoff | None = None,
) -> PacingResult:
    """Each delay one after another; the never-working secret alongside, for `window` s."""
    backoff = backoff or Backoff()
    result = PacingResult(asdict(backoff), config.smtp_ms)
    with tempfile.TemporaryDirectory() as tmp:
        tls = create_tls(Path(tmp))
        sender = await _sender(tls, config.smtp_ms)
        spender = await _sender(tls, config.smtp_ms) if window else None
        try:
            never = (
                asyncio.create_task(_never_works(tls, spender, backoff, window))
                if spender
                else None
            )
            for delay in delays:
                timeout = max(window, 2 * delay + 30)
                result.runs.append(await _one_delay(tls, sender, backoff, delay, timeout))
            if never is not None:
                result.window_attempts = await never
                result.window_seconds = window
        finally:
            await sender.relay.stop()
            if spender is not None:
                await spender.relay.stop()
    return result
