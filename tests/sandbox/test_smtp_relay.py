"""The sandbox relay behaves like ACS's smtp.azurecomm.net:587, seen by real SMTP clients.

aiosmtplib (what the rotator uses) and the standard library's smtplib (what many consumers
use, run in a thread) talk to the relay over loopback with the sandbox CA trusted.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiosmtplib
import pytest

from sandbox.smtp_relay import SmtpRelay
from sandbox.state import AcsResource, Application, PasswordCredential, SandboxState
from sandbox.tls import SandboxTls, create_tls

SENDER = "donotreply@mail.example.com"
MESSAGE = f"From: {SENDER}\r\nTo: ops@example.com\r\nSubject: hello\r\n\r\nbody\r\n"


@dataclass
class World:
    state: SandboxState
    tenant_id: str
    app: Application
    resource: AcsResource
    password: PasswordCredential

    @property
    def dot_username(self) -> str:
        return f"{self.resource.name}.{self.app.app_id}.{self.tenant_id}"

    @property
    def secret(self) -> str:
        return self.password.secret_text


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> SandboxTls:
    return create_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def world() -> World:
    state = SandboxState()
    tenant_id = state.add_tenant()
    app = state.add_application(tenant_id, "mailer")
    principal = state.add_service_principal(app)
    resource = state.add_acs_resource(state.add_subscription(), "rg-mail", "acs-mail", {SENDER})
    state.assign_role(resource.id, principal, "Contributor")
    return World(state, tenant_id, app, resource, state.add_password(app))


@pytest.fixture
async def relay(world: World, tls: SandboxTls) -> AsyncIterator[SmtpRelay]:
    relay = SmtpRelay(world.state, tls.server_context)
    await relay.start()
    yield relay
    await relay.stop()


async def connect(relay: SmtpRelay, tls: SandboxTls, *, starttls: bool = True) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=relay.port,
        tls_context=tls.client_context(),
        start_tls=False,
        local_hostname="tests.example",
        timeout=5,
    )
    await client.connect()
    await client.ehlo()
    if starttls:
        await client.starttls()
        await client.ehlo()
    return client


async def auth_code(relay: SmtpRelay, tls: SandboxTls, username: str, password: str) -> int:
    client = await connect(relay, tls)
    try:
        response = await client.auth_login(username, password)
    except aiosmtplib.SMTPAuthenticationError as exc:
        return exc.code
    finally:
        client.close()
    return response.code


# ----- greeting, STARTTLS and TLS -----------------------------------------------------------


async def test_ehlo_offers_starttls_and_hides_auth_until_tls(
    relay: SmtpRelay, tls: SandboxTls
) -> None:
    client = await connect(relay, tls, starttls=False)
    assert client.supports_extension("starttls")
    assert not client.supports_extension("auth")
    await client.starttls()
    await client.ehlo()
    assert not client.supports_extension("starttls")
    assert client.server_auth_methods == ["login"]  # ACS offers AUTH LOGIN only
    await client.quit()


async def test_auth_plain_is_not_offered_and_refused_after_tls(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    client = await connect(relay, tls)
    blob = base64.b64encode(f"\0{world.dot_username}\0{world.secret}".encode())
    response = await client.execute_command(b"AUTH", b"PLAIN", blob)
    assert response.code == 504
    assert "Unrecognized authentication type" in response.message
    await client.quit()


async def test_auth_before_starttls_is_refused(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    client = await connect(relay, tls, starttls=False)
    blob = base64.b64encode(f"\0{world.dot_username}\0{world.secret}".encode())
    response = await client.execute_command(b"AUTH", b"PLAIN", blob)
    assert (response.code, response.message) == (
        530,
        "5.7.0 Must issue a STARTTLS command first",
    )
    mail = await client.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
    assert mail.code == 530
    client.close()


async def test_tls_1_1_client_fails_the_handshake(relay: SmtpRelay, tls: SandboxTls) -> None:
    legacy = tls11_client_context(tls)
    # Control: this client can speak TLS 1.1 to a server that still allows it ...
    permissive = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    allow_tls_1_1(permissive)
    tls.ca.issue_cert("127.0.0.1").configure_cert(permissive)
    control = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, ssl=permissive)
    port = control.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=legacy)
    assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
    writer.close()
    control.close()
    # ... but not to the relay.
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=relay.port, start_tls=False, local_hostname="t", timeout=5
    )
    await client.connect()
    with pytest.raises((aiosmtplib.SMTPServerDisconnected, ssl.SSLError)):
        await client.starttls(tls_context=legacy)
    client.close()


def tls11_client_context(tls: SandboxTls) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca_path))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    allow_tls_1_1(context, only=True)
    return context


def allow_tls_1_1(context: ssl.SSLContext, *, only: bool = False) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated: that is the point
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        if only:
            context.maximum_version = ssl.TLSVersion.TLSv1_1


def test_relay_refuses_a_context_below_tls_1_2(world: World, tls: SandboxTls) -> None:
    weak = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    allow_tls_1_1(weak)
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        SmtpRelay(world.state, weak)


# ----- AUTH -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["dot", "pipe", "smtp-username"])
async def test_each_username_form_authenticates(
    relay: SmtpRelay, tls: SandboxTls, world: World, form: str
) -> None:
    username = {
        "dot": world.dot_username,
        "pipe": world.dot_username.replace(".", "|"),
        "smtp-username": "mailer@contoso.example",
    }[form]
    world.state.add_smtp_username(world.resource, "mailer@contoso.example", world.app)
    client = await connect(relay, tls)
    response = await client.auth_login(username, world.secret)
    assert (response.code, response.message) == (235, "2.7.0 Authentication successful")
    await client.quit()


async def test_wrong_secret_is_refused_with_535_5_7_3(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    client = await connect(relay, tls)
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        await client.auth_login(world.dot_username, world.secret + "x")
    assert (refused.value.code, refused.value.message) == (
        535,
        "5.7.3 Authentication unsuccessful",
    )
    client.close()


async def test_expired_secret_is_refused(relay: SmtpRelay, tls: SandboxTls, world: World) -> None:
    short = world.state.add_password(world.app, lifetime=timedelta(days=1))
    assert await auth_code(relay, tls, world.dot_username, short.secret_text) == 235
    world.state.clock.advance(timedelta(days=2))
    assert await auth_code(relay, tls, world.dot_username, short.secret_text) == 535


async def test_removed_secret_stops_working_at_once(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    assert await auth_code(relay, tls, world.dot_username, world.secret) == 235
    world.app.passwords.remove(world.password)
    assert await auth_code(relay, tls, world.dot_username, world.secret) == 535


async def test_new_secret_works_only_after_propagation_delay(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    world.state.propagation_delay = timedelta(seconds=30)
    fresh = world.state.add_password(world.app, propagated=False)
    assert await auth_code(relay, tls, world.dot_username, fresh.secret_text) == 535
    world.state.clock.advance(timedelta(seconds=31))
    assert await auth_code(relay, tls, world.dot_username, fresh.secret_text) == 235


async def test_unknown_username_is_refused(relay: SmtpRelay, tls: SandboxTls, world: World) -> None:
    other_tenant = world.state.add_tenant()
    assert await auth_code(relay, tls, "nobody@contoso.example", world.secret) == 535
    assert (
        await auth_code(relay, tls, f"acs-mail.{world.app.app_id}.{other_tenant}", world.secret)
        == 535
    )


async def test_app_needs_a_role_with_the_three_documented_actions(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    state = world.state
    app = state.add_application(world.tenant_id, "reader-only")
    principal = state.add_service_principal(app)
    secret = state.add_password(app).secret_text
    username = f"{world.resource.name}.{app.app_id}.{world.tenant_id}"
    state.assign_role(world.resource.id, principal, "Reader")
    assert await auth_code(relay, tls, username, secret) == 535
    read_only = state.add_role_definition(
        "ACS read", ["Microsoft.Communication/CommunicationServices/Read"]
    )
    state.assign_role(world.resource.id, principal, read_only)
    assert await auth_code(relay, tls, username, secret) == 535
    older_docs = state.add_role_definition(
        "ACS email sender (two actions)",
        [
            "Microsoft.Communication/CommunicationServices/Read",
            "Microsoft.Communication/EmailServices/write",
        ],
    )
    state.assign_role(world.resource.id, principal, older_docs)
    assert await auth_code(relay, tls, username, secret) == 535
    email = state.add_role_definition(
        "ACS email sender",
        [
            "Microsoft.Communication/CommunicationServices/Read",
            "Microsoft.Communication/CommunicationServices/Write",
            "Microsoft.Communication/EmailServices/write",
        ],
    )
    state.assign_role(world.resource.id, principal, email)
    assert await auth_code(relay, tls, username, secret) == 235


async def test_a_role_held_through_a_group_lets_its_members_send(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    """Azure RBAC applies a group's role assignment to its members."""
    state = world.state
    app = state.add_application(world.tenant_id, "group-member")
    principal = state.add_service_principal(app)
    secret = state.add_password(app).secret_text
    username = f"{world.resource.name}.{app.app_id}.{world.tenant_id}"
    group = state.add_group("mail senders")
    state.assign_role(world.resource.id, group, "Contributor")
    assert await auth_code(relay, tls, username, secret) == 535
    group.members.add(principal.object_id)
    assert await auth_code(relay, tls, username, secret) == 235


# ----- the mail transaction ---------------------------------------------------------------


async def test_mail_before_auth_is_refused(relay: SmtpRelay, tls: SandboxTls) -> None:
    client = await connect(relay, tls)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        await client.mail(SENDER)
    assert (refused.value.code, refused.value.message) == (
        530,
        "5.7.57 Client not authenticated to send mail",
    )
    client.close()


async def test_sender_must_be_configured_on_the_resource(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    client = await connect(relay, tls)
    await client.auth_login(world.dot_username, world.secret)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        await client.mail("ceo@contoso.example")
    assert refused.value.code == 550
    assert refused.value.message.startswith("5.7.1 ")
    client.close()
    assert world.state.messages == []


async def test_accepted_message_is_kept_for_inspection(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    client = await connect(relay, tls)
    await client.auth_login(world.dot_username, world.secret)
    errors, reply = await client.sendmail(SENDER, ["ops@example.com", "dev@example.com"], MESSAGE)
    await client.quit()
    assert errors == {}
    assert reply.startswith("2.6.0")
    [kept] = world.state.messages
    assert kept.username == world.dot_username
    assert kept.acs_resource_id == world.resource.id
    assert kept.mail_from == SENDER
    assert kept.recipients == ["ops@example.com", "dev@example.com"]
    assert b"Subject: hello" in kept.data


async def test_stdlib_smtplib_sends_through_the_relay(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    def send() -> None:
        with smtplib.SMTP("localhost", relay.port, local_hostname="tests", timeout=5) as smtp:
            smtp.starttls(context=tls.client_context())
            smtp.login(world.dot_username.replace(".", "|"), world.secret)
            smtp.sendmail(SENDER, ["ops@example.com"], MESSAGE)

    await asyncio.to_thread(send)
    assert [m.recipients for m in world.state.messages] == [["ops@example.com"]]


async def test_stdlib_smtplib_sees_535_for_a_wrong_secret(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    def login() -> None:
        with smtplib.SMTP("127.0.0.1", relay.port, local_hostname="tests", timeout=5) as smtp:
            smtp.starttls(context=tls.client_context())
            smtp.login(world.dot_username, "not-the-secret")

    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        await asyncio.to_thread(login)
    assert refused.value.smtp_code == 535


# ----- counters and faults ----------------------------------------------------------------


async def test_every_command_is_counted(relay: SmtpRelay, tls: SandboxTls, world: World) -> None:
    client = await connect(relay, tls)
    await client.auth_login(world.dot_username, world.secret)
    await client.sendmail(SENDER, ["ops@example.com"], MESSAGE)
    await client.quit()
    verbs = ["CONNECT", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    assert {v: world.state.requests[f"smtp {v}"] for v in verbs} == {
        "CONNECT": 1,
        "EHLO": 2,
        "STARTTLS": 1,
        "AUTH": 1,
        "MAIL": 1,
        "RCPT": 1,
        "DATA": 1,
        "QUIT": 1,
    }


async def test_dropped_connection_fault_closes_without_reply(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    world.state.faults.inject("smtp AUTH", drop=True, times=1)
    client = await connect(relay, tls)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.auth_login(world.dot_username, world.secret)
    client.close()
    assert await auth_code(relay, tls, world.dot_username, world.secret) == 235
    assert world.state.requests["smtp AUTH"] == 2


async def test_dropped_greeting_fails_the_connect(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    world.state.faults.inject("smtp CONNECT", drop=True, times=1)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await connect(relay, tls)
    assert world.state.requests["smtp CONNECT"] == 1


async def test_status_fault_answers_with_that_code(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    world.state.faults.inject("smtp CONNECT", status=421, times=1)
    with pytest.raises(aiosmtplib.SMTPConnectResponseError) as greeting:
        await connect(relay, tls)
    assert (greeting.value.code, greeting.value.message) == (
        421,
        "4.3.2 Service not available, closing transmission channel",
    )
    world.state.faults.inject("smtp AUTH", status=451, times=1)
    client = await connect(relay, tls)
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as auth:
        await client.auth_login(world.dot_username, world.secret)
    assert auth.value.code == 451
    response = await client.auth_login(world.dot_username, world.secret)
    assert response.code == 235
    await client.quit()


async def test_latency_fault_delays_but_answers(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    fault = world.state.faults.inject("smtp EHLO", latency=0.05, times=1)
    client = await connect(relay, tls)
    assert client.supports_extension("auth")
    await client.quit()
    assert fault.hits == 1


# ----- life cycle -------------------------------------------------------------------------


async def test_stop_cuts_open_sessions_and_frees_the_port(
    relay: SmtpRelay, tls: SandboxTls, world: World
) -> None:
    client = await connect(relay, tls)
    await relay.stop()
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.noop()
    again = SmtpRelay(world.state, tls.server_context, port=relay.port)
    await again.start()
    assert await auth_code(again, tls, world.dot_username, world.secret) == 235
    await again.stop()


async def test_port_zero_binds_a_free_port(world: World, tls: SandboxTls) -> None:
    first = SmtpRelay(world.state, tls.server_context)
    second = SmtpRelay(world.state, tls.server_context)
    await first.start()
    await second.start()
    assert first.port > 0
    assert second.port not in (0, first.port)
    await first.stop()
    await second.stop()
