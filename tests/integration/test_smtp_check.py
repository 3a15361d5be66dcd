"""SmtpVerifier against the sandbox relay: real aiosmtplib, real STARTTLS, real backoff (short)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from pydantic import SecretStr

from rotation.azure.smtp import Backoff, SmtpVerifier
from rotation.errors import VerificationFailed
from sandbox.smtp_relay import SmtpRelay
from sandbox.state import Application, SandboxState
from sandbox.tls import SandboxTls, create_tls

FAST = Backoff(initial=0.01, max=0.05, jitter=0.01)


@dataclass
class World:
    state: SandboxState
    app: Application
    username: str


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> SandboxTls:
    return create_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def world() -> World:
    state = SandboxState()
    tenant_id = state.add_tenant()
    app = state.add_application(tenant_id, "mailer")
    principal = state.add_service_principal(app)
    resource = state.add_acs_resource(state.add_subscription(), "rg", "acs-mail")
    state.assign_role(resource.id, principal, "Contributor")
    return World(state, app, f"{resource.name}.{app.app_id}.{tenant_id}")


@pytest.fixture
async def relay(world: World, tls: SandboxTls) -> AsyncIterator[SmtpRelay]:
    relay = SmtpRelay(world.state, tls.server_context)
    await relay.start()
    yield relay
    await relay.stop()


@pytest.fixture
def verifier(relay: SmtpRelay, tls: SandboxTls) -> SmtpVerifier:
    return SmtpVerifier(
        "localhost", relay.port, tls.client_context(), attempt_timeout=5, backoff=FAST
    )


def new_secret(world: World, *, propagated: bool = True) -> SecretStr:
    return SecretStr(world.state.add_password(world.app, propagated=propagated).secret_text)


async def wait_for(condition: object, timeout: float = 5) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (the state has no event to wait on)
            await asyncio.sleep(0.005)


async def test_a_working_secret_passes_in_one_attempt(verifier: SmtpVerifier, world: World) -> None:
    attempts = await verifier.verify(world.username, new_secret(world), timeout=10)
    assert attempts == 1
    requests = world.state.requests
    assert [requests[f"smtp {v}"] for v in ("CONNECT", "STARTTLS", "AUTH", "QUIT")] == [1] * 4


async def test_login_only_relay_is_passed_with_auth_login(
    verifier: SmtpVerifier, world: World
) -> None:
    """The relay, like ACS, offers AUTH LOGIN only (PLAIN gets 504): one AUTH, and it passes."""
    attempts = await verifier.verify(world.username, new_secret(world), timeout=10)
    assert attempts == 1
    assert world.state.requests["smtp AUTH"] == 1


async def test_verify_waits_out_the_propagation_delay(verifier: SmtpVerifier, world: World) -> None:
    world.state.propagation_delay = timedelta(minutes=1)
    secret = new_secret(world, propagated=False)

    async def entra_catches_up() -> None:
        # Entra "replicates" the secret once the rotator has been refused twice: the third
        # AUTH can arrive only after the second one's 535 (the count rises on arrival).
        await wait_for(lambda: world.state.requests["smtp AUTH"] >= 3)
        world.state.clock.advance(timedelta(minutes=1))

    catching_up = asyncio.create_task(entra_catches_up())
    attempts = await verifier.verify(world.username, secret, timeout=10)
    await catching_up
    assert attempts >= 3
    assert world.state.requests["smtp AUTH"] == attempts


async def test_verify_gives_up_as_rejected_at_the_deadline(
    verifier: SmtpVerifier, world: World
) -> None:
    wrong = SecretStr("Zq58Q~not-a-secret-of-this-app-0123456789")
    with pytest.raises(VerificationFailed) as failed:
        await verifier.verify(world.username, wrong, timeout=0.3)
    assert failed.value.kind == "rejected"
    assert world.state.requests["smtp AUTH"] > 1
    message = str(failed.value)
    assert world.username in message
    assert "535 5.7.3" in message
    assert "EmailServices/write" in message  # tells the operator what to check
    assert "CommunicationServices/Write" in message  # as the current ACS docs ask
    assert "SMTP Username resource" in message


async def test_verify_fails_fast_on_a_host_name_mismatch(world: World, tls: SandboxTls) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.ca.issue_cert("smtp.azurecomm.net").configure_cert(context)
    elsewhere = SmtpRelay(world.state, context)
    await elsewhere.start()
    try:
        verifier = SmtpVerifier("127.0.0.1", elsewhere.port, tls.client_context(), backoff=FAST)
        with pytest.raises(VerificationFailed) as failed:
            await verifier.verify(world.username, new_secret(world), timeout=30)
    finally:
        await elsewhere.stop()
    assert failed.value.kind == "tls"
    assert "127.0.0.1" in str(failed.value)
    assert world.state.requests["smtp STARTTLS"] == 1  # not retried
    assert world.state.requests["smtp AUTH"] == 0


async def test_verify_fails_fast_on_an_untrusted_certificate(
    relay: SmtpRelay, world: World
) -> None:
    system_trust_only = ssl.create_default_context()
    verifier = SmtpVerifier("localhost", relay.port, system_trust_only, backoff=FAST)
    with pytest.raises(VerificationFailed) as failed:
        await verifier.verify(world.username, new_secret(world), timeout=30)
    assert failed.value.kind == "tls"
    assert world.state.requests["smtp STARTTLS"] == 1


async def test_verify_fails_fast_on_an_unresolvable_host(tls: SandboxTls, world: World) -> None:
    verifier = SmtpVerifier("smtp.no-such-host.invalid", 587, tls.client_context(), backoff=FAST)
    with pytest.raises(VerificationFailed) as failed:
        await verifier.verify(world.username, new_secret(world), timeout=30)
    assert failed.value.kind == "dns"
    assert "smtp.no-such-host.invalid" in str(failed.value)


async def test_verify_survives_dropped_connections(verifier: SmtpVerifier, world: World) -> None:
    faults = world.state.faults
    faults.inject("smtp CONNECT", status=421, times=1)
    faults.inject("smtp EHLO", drop=True, times=1)
    faults.inject("smtp STARTTLS", status=454, times=1)
    faults.inject("smtp AUTH", drop=True, times=1)
    attempts = await verifier.verify(world.username, new_secret(world), timeout=10)
    assert attempts == 5
    assert world.state.requests["smtp CONNECT"] == 5


async def test_verify_reports_connection_when_nothing_listens(
    tls: SandboxTls, world: World
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    verifier = SmtpVerifier("localhost", free_port, tls.client_context(), backoff=FAST)
    with pytest.raises(VerificationFailed) as failed:
        await verifier.verify(world.username, new_secret(world), timeout=0.2)
    assert failed.value.kind == "connection"


async def test_verify_reports_timeout_when_the_server_stalls(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    world.state.faults.inject("smtp CONNECT", latency=30)
    verifier = SmtpVerifier(
        "localhost", relay.port, tls.client_context(), attempt_timeout=0.1, backoff=FAST
    )
    with pytest.raises(VerificationFailed) as failed:
        await verifier.verify(world.username, new_secret(world), timeout=0.3)
    assert failed.value.kind == "timeout"


async def test_the_password_appears_in_no_message_or_log(
    verifier: SmtpVerifier,
    world: World,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    world.state.propagation_delay = timedelta(hours=1)
    secret = new_secret(world, propagated=False)
    with pytest.raises(VerificationFailed) as failed:
        await verifier.verify(world.username, secret, timeout=0.2)
    value = secret.get_secret_value()
    captured = capsys.readouterr()
    for text in (str(failed.value), repr(failed.value), caplog.text, captured.out, captured.err):
        assert value not in text
    assert failed.value.__cause__ is None


async def test_no_time_left_fails_as_timeout_without_connecting(
    verifier: SmtpVerifier, world: World
) -> None:
    with pytest.raises(VerificationFailed) as failed:
        await verifier.verify(world.username, new_secret(world), timeout=0)
    assert failed.value.kind == "timeout"
    assert world.state.requests["smtp CONNECT"] == 0
