"""An SMTP relay that answers like ACS's ``smtp.azurecomm.net:587``, on the caller's loop.

What a client sees, and why each rule is here (the rotator must cope with every one):

- EHLO offers STARTTLS; ``AUTH LOGIN`` (and no other mechanism) only once TLS is up, as
  independent reports of smtp.azurecomm.net:587 say (QuantumNous/new-api PR #600: "ACS only
  supports LOGIN auth"; goksan/statusnook PR #3: "smtp.azurecomm.net on port 587 which only
  supports LOGIN"); ``AUTH PLAIN`` gets ``504 5.5.4 Unrecognized authentication type``. Anything but
  EHLO/HELO/STARTTLS/NOOP/RSET/QUIT before STARTTLS gets
  ``530 5.7.0 Must issue a STARTTLS command first``. TLS 1.2 is the minimum.
- AUTH is checked by :meth:`SandboxState.smtp_login` on every attempt (ACS does not cache
  the Entra token, so a removed secret stops working at once): ``235 2.7.0`` or
  ``535 5.7.3 Authentication unsuccessful``, the same answer for a wrong, expired, removed
  or not yet propagated secret, an unknown username and a missing role.
- MAIL before AUTH gets ``530 5.7.57``; MAIL FROM must be one of the resource's sender
  addresses (``550 5.7.1`` otherwise). Accepted messages land in ``state.messages``.
- Every command is counted in ``state.requests["smtp <VERB>"]`` (the connection itself as
  ``"smtp CONNECT"``) and ``state.faults.take`` of that key is applied before answering:
  latency, a dropped connection, or a reply code such as 421 or 451.

It is aiosmtpd's protocol class on a plain ``loop.create_server`` (no Controller thread), so
tests and the HTTPS sandbox share one event loop and start/stop take milliseconds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.faults import Fault
from sandbox.state import AcceptedMessage, AcsResource, SandboxState

log = logging.getLogger("sandbox.smtp")

#: The name the relay greets with (ACS's public host name).
SERVER_NAME = "smtp.azurecomm.net"
ALLOWED_BEFORE_STARTTLS = frozenset({"EHLO", "HELO", "STARTTLS", "NOOP", "RSET", "QUIT"})

REPLY_STARTTLS_FIRST = "530 5.7.0 Must issue a STARTTLS command first"
REPLY_NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail"
REPLY_AUTH_OK = "235 2.7.0 Authentication successful"
REPLY_AUTH_FAILED = "535 5.7.3 Authentication unsuccessful"
REPLY_SENDER_REFUSED = "550 5.7.1 Sender address is not a configured sender of this resource"

#: Texts for reply codes injected as faults (the code comes from the fault).
FAULT_TEXTS = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.0 Mailbox unavailable, try again later",
    451: "4.3.0 Temporary server error. Please try again later",
    452: "4.3.1 Insufficient system resources",
    454: "4.7.0 Temporary authentication failure",
    554: "5.3.0 Transaction failed",
}


class SmtpRelay:
    """The ACS-like relay; ``await start()`` binds it, ``.port`` is then the real port."""

    def __init__(
        self,
        state: SandboxState,
        ssl_context: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if ssl_context.minimum_version < ssl.TLSVersion.TLSv1_2:
            raise ValueError("the relay's SSL context must require TLS 1.2 or newer, as ACS does")
        self.state = state
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[_AcsSmtp] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _AcsSmtp(self, loop), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stops listening and cuts every open session (Python 3.11 keeps them otherwise)."""
        if self._server is None:
            return
        self._server.close()
        tasks = [s.abort() for s in list(self._sessions)]
        pending = [t for t in tasks if t is not None]
        for task in pending:
            # A session cut mid-handshake never hears connection_lost (asyncio's SSL layer
            # only reports it once the handshake is done), so its reader would wait forever.
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        self._sessions.clear()
        await self._server.wait_closed()
        self._server = None

    def _opened(self, session: _AcsSmtp) -> None:
        self._sessions.add(session)

    def _closed(self, session: _AcsSmtp) -> None:
        self._sessions.discard(session)


class _AcsSmtp(SMTP):
    """One client connection: aiosmtpd's state machine plus ACS's rules, counters and faults."""

    def __init__(self, relay: SmtpRelay, loop: asyncio.AbstractEventLoop) -> None:
        self.relay = relay
        super().__init__(
            _AcsHandler(relay.state),
            hostname=SERVER_NAME,
            ident="Microsoft ESMTP MAIL Service ready (sandbox)",
            tls_context=relay.ssl_context,
            require_starttls=False,  # enforced in _guard, with ACS's wording and after counting
            auth_require_tls=True,
            authenticator=self._check_login,
            auth_exclude_mechanism=["PLAIN"],  # ACS offers LOGIN only (module docstring)
            loop=loop,
        )
        self._smtp_methods = {
            verb: self._guard(verb, method) for verb, method in self._smtp_methods.items()
        }

    # ----- connection life --------------------------------------------------------------

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:
            self.relay._opened(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.relay._closed(self)
        super().connection_lost(error)

    def abort(self) -> asyncio.Task[None] | None:
        """Cuts the connection now; returns the session task to wait for."""
        for transport in (self.transport, self._original_transport):
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
        task: asyncio.Task[None] | None = self._handler_coroutine
        return task

    async def _handle_client(self) -> None:
        # The greeting is the answer to "smtp CONNECT": count it and let faults replace it.
        if await self._apply_faults("CONNECT"):
            return
        await super()._handle_client()

    # ----- every command ------------------------------------------------------------------

    def _guard(
        self, verb: str, method: Callable[[str | None], Awaitable[None]]
    ) -> Callable[[str | None], Awaitable[None]]:
        @functools.wraps(method)  # keeps aiosmtpd's HELP syntax attributes
        async def guarded(arg: str | None) -> None:
            if await self._apply_faults(verb):
                return
            if verb not in ALLOWED_BEFORE_STARTTLS and not self._tls_active:
                await self.push(REPLY_STARTTLS_FIRST)
                return
            if verb == "STARTTLS" and self._tls_active:
                await self.push("503 5.5.1 TLS already active")
                return
            await method(arg)

        return guarded

    @property
    def _tls_active(self) -> bool:
        return self._tls_protocol is not None

    async def _apply_faults(self, verb: str) -> bool:
        """Counts the command and applies injected faults; True when the answer was given."""
        key = f"smtp {verb}"
        self.relay.state.requests[key] += 1
        faults = self.relay.state.faults.take(key)
        latency = sum(f.latency for f in faults)
        if latency:
            await asyncio.sleep(latency)
        final = next((f for f in faults if f.status is not None or f.drop), None)
        if final is None:
            return False
        await self._answer_fault(verb, final)
        return True

    async def _answer_fault(self, verb: str, fault: Fault) -> None:
        if fault.drop:
            self.abort()
            return
        status = fault.status or 451
        await self.push(f"{status} {FAULT_TEXTS.get(status, 'Injected fault')}")
        if status == 421 or verb == "CONNECT":
            # 421 closes the channel (RFC 5321 3.8); a refused greeting leaves nothing to say.
            assert self.transport is not None
            self.transport.close()

    # ----- AUTH ---------------------------------------------------------------------------

    def _check_login(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        username = auth_data.login.decode("utf-8", errors="replace")
        password = auth_data.password.decode("utf-8", errors="replace")
        result = self.relay.state.smtp_login(username, password)
        if not result.ok or result.acs_resource is None:
            # The reason stays in the sandbox's own log; clients get ACS's one answer.
            log.info("smtp AUTH refused for %s: %s", username, result.reason)
            return AuthResult(success=False, handled=False, message=REPLY_AUTH_FAILED)
        return AuthResult(
            success=True,
            message=REPLY_AUTH_OK,
            auth_data=_Login(username, result.acs_resource),
        )


class _QuietSession(Session):
    """aiosmtpd's session without the deprecation warning it logs on every successful AUTH
    (its own AUTH code sets the deprecated ``login_data``)."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Login:
    """What a successful AUTH leaves on the session: who, and for which ACS resource."""

    def __init__(self, username: str, resource: AcsResource) -> None:
        self.username = username
        self.resource = resource


class _AcsHandler:
    """aiosmtpd hooks for the mail transaction: sender rule and message capture."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        login = session.auth_data
        if not session.authenticated or not isinstance(login, _Login):
            return REPLY_NOT_AUTHENTICATED
        if address.lower() not in {s.lower() for s in login.resource.senders}:
            return REPLY_SENDER_REFUSED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data
        assert isinstance(login, _Login)
        assert envelope.mail_from is not None
        self.state.messages.append(
            AcceptedMessage(
                username=login.username,
                acs_resource_id=login.resource.id,
                mail_from=envelope.mail_from,
                recipients=list(envelope.rcpt_tos),
                data=envelope.original_content or b"",
            )
        )
        return "250 2.6.0 Queued mail for delivery"

    async def handle_exception(self, error: Exception) -> str:
        # A failed TLS handshake lands here too (aiosmtpd then closes the connection).
        log.info("smtp session error: %s", type(error).__name__, exc_info=error)
        return "451 4.3.0 Temporary server error. Please try again later"
