"""Proves a new SMTP password works: a live SMTP AUTH handshake with ACS (step 2, "verify").

Why retries: Entra replicates a new client secret over seconds to minutes (4-18 s is
commonly seen). Until it has, ACS's own token request with that secret fails and the relay
answers ``535 5.7.3``, exactly as for a wrong secret. A 535 right after ``addPassword`` is
therefore expected, not a verdict: it is retried, like the transient faults (4xx replies,
dropped or refused connections, timeouts), by stamina, on the capped schedule of
`rotation.core.pacing` (the gap grows with the time spent, so the wait past propagation stays
small and a secret that never works costs few attempts), until the verify timeout. Only
then is the secret called rejected.

Why some failures are not retried: a certificate or host-name mismatch, a TLS protocol
failure, or a host name that does not resolve will not heal by waiting. They fail at once
with a message that says what to fix, instead of after five minutes of retries.

Every attempt is the whole conversation a consumer has (EHLO, STARTTLS with certificate and
host-name checks at TLS 1.2 or newer, EHLO, AUTH, QUIT) on a fresh connection, so a pass
means a real mail client with this username and password will get in.

The password is sent in the AUTH exchange and nowhere else: messages are built from reply
codes and texts with any trace of the password removed, and aiosmtplib's exceptions are
never chained into ours.
"""

from __future__ import annotations

import asyncio
import base64
import random
import socket
import ssl

import aiosmtplib
import stamina
from pydantic import SecretStr

from rotation.core.pacing import Backoff as Backoff  # re-exported: callers configure pacing here
from rotation.core.pacing import wait_before_next
from rotation.errors import FailureKind, VerificationFailed
from rotation.permissions import SENDER_ACTIONS, listed

_AUTH_REJECTED = 535
# The actions the current ACS quickstart asks for (rotation/permissions.py), and its
# recommended username: an SMTP Username resource.
_FIX_REJECTED = (
    "A new Entra secret can take minutes to work; if this persists, check the SMTP username "
    "(an SMTP Username resource of the ACS resource, as ACS recommends, or "
    "<ACS resource>.<app id>.<tenant id>) and that the app holds, on the ACS resource, "
    f"'Communication and Email Service Owner' or a role with {listed(SENDER_ACTIONS)}"
)


class _Retryable(Exception):
    """One attempt failed in a way that waiting may cure. Its text is already scrubbed
    (stamina logs its repr when it schedules the next attempt)."""

    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class SmtpVerifier:
    """SMTP AUTH checks against one ACS SMTP endpoint (smtp.azurecomm.net:587 in Azure)."""

    def __init__(
        self,
        host: str,
        port: int,
        tls_context: ssl.SSLContext,
        *,
        attempt_timeout: float = 30,
        backoff: Backoff | None = None,
        local_hostname: str | None = None,
    ) -> None:
        _require_strict_tls(tls_context)
        self.host = host
        self.port = port
        self.tls_context = tls_context
        self.attempt_timeout = attempt_timeout
        self.backoff = backoff or Backoff()
        # Given explicitly: aiosmtplib's default (socket.getfqdn) may wait on reverse DNS.
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
        """Retries SMTP AUTH through Entra's propagation delay; returns the attempts made.

        Raises VerificationFailed: at once for TLS and DNS problems (and other permanent
        refusals), else with the last failure's kind once `timeout` seconds have passed.
        """
        if timeout <= 0:
            raise VerificationFailed(
                f"no time left to verify SMTP AUTH as {username} at {self.endpoint}",
                FailureKind.TIMEOUT,
            )
        attempts = 0
        last: _Retryable | None = None
        clock = asyncio.get_running_loop().time
        began = clock()
        started = 0.0  # when the latest attempt began, in seconds since `began`

        def pace(exc: Exception) -> bool | float:
            if not isinstance(exc, _Retryable):
                return False
            jitter = random.uniform(0, self.backoff.jitter)  # noqa: S311 (not for secrets)
            return wait_before_next(self.backoff, started, clock() - began, jitter)

        retrying = stamina.retry_context(on=pace, attempts=None, timeout=timeout)
        try:
            async with asyncio.timeout(timeout):  # stamina's timeout stops retrying, this cuts
                async for attempt in retrying:
                    with attempt:
                        attempts = attempt.num
                        started = clock() - began
                        try:
                            await self._attempt(username, password)
                        except _Retryable as exc:
                            last = exc
                            raise
        except _Retryable as exc:
            raise self._gave_up(username, exc, attempts, timeout) from None
        except TimeoutError:
            raise self._gave_up(username, last, attempts, timeout) from None
        return attempts

    async def egress(self) -> tuple[str, tuple[str, ...]]:
        """Connect, EHLO, STARTTLS (certificate and host name checked), EHLO, QUIT, and
        never AUTH: (TLS version, AUTH mechanisms offered). For `doctor`; raises
        VerificationFailed with the same messages a rotation's verify step would give."""
        try:
            client = await self._session("", SecretStr(""), auth=False)
        except _Retryable as exc:
            raise VerificationFailed(exc.message, exc.kind) from None
        ssl_object = client.transport.get_extra_info("ssl_object") if client.transport else None
        version = str(ssl_object.version()) if ssl_object else "none"
        mechanisms = tuple(sorted(m.upper() for m in client.server_auth_methods))
        await _quit_quietly(client)
        return version, mechanisms

    # ----- one attempt ----------------------------------------------------------------------

    async def _attempt(self, username: str, password: SecretStr) -> None:
        """EHLO, STARTTLS, EHLO, AUTH, QUIT on a new connection; raises _Retryable or
        VerificationFailed (permanent), both with scrubbed messages."""
        client = await self._session(username, password, auth=True)
        await _quit_quietly(client)

    async def _session(self, username: str, password: SecretStr, *, auth: bool) -> aiosmtplib.SMTP:
        """A new connection through EHLO, STARTTLS and EHLO again, then AUTH when `auth`;
        the open client, or _Retryable / VerificationFailed with a scrubbed message."""
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            tls_context=self.tls_context,
            start_tls=False,
            local_hostname=self.local_hostname,
            timeout=self.attempt_timeout,
        )
        step = "connect"
        try:
            async with asyncio.timeout(self.attempt_timeout):
                await client.connect()
                step = "EHLO"
                await client.ehlo()
                step = "STARTTLS"
                await client.starttls(server_hostname=self.host)
                step = "EHLO after STARTTLS"
                await client.ehlo()
                if auth:
                    step = "AUTH"
                    await _authenticate(client, username, password.get_secret_value())
        except Exception as exc:
            client.close()
            raise _classify(exc, step, self.endpoint, username, password) from None
        except BaseException:  # cancelled (the verify deadline): leave no socket behind
            client.close()
            raise
        return client

    def _gave_up(
        self, username: str, last: _Retryable | None, attempts: int, timeout: float
    ) -> VerificationFailed:
        kind: FailureKind = last.kind if last else FailureKind.TIMEOUT
        detail = last.message if last else "no attempt finished"
        message = (
            f"SMTP AUTH as {username} at {self.endpoint} did not succeed within {timeout:g}s "
            f"({attempts} attempt{'s' if attempts != 1 else ''}); last failure: {detail}"
        )
        if kind == FailureKind.REJECTED:
            message += f". {_FIX_REJECTED}"
        return VerificationFailed(message, kind)


async def _authenticate(client: aiosmtplib.SMTP, username: str, password: str) -> None:
    """One AUTH command (aiosmtplib's login() would try every mechanism on a 535)."""
    methods = client.server_auth_methods
    if "login" in methods:
        await client.auth_login(username, password)
    elif "plain" in methods:
        await client.auth_plain(username, password)
    else:
        raise aiosmtplib.SMTPNotSupported(
            "the server offers neither AUTH LOGIN nor AUTH PLAIN after STARTTLS"
        )


async def _quit_quietly(client: aiosmtplib.SMTP) -> None:
    """QUIT politely; AUTH already succeeded, so a failure here changes nothing."""
    try:
        await client.quit(timeout=5)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def _require_strict_tls(context: ssl.SSLContext) -> None:
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ValueError("the SMTP TLS context must verify certificates and host names")
    if context.minimum_version < ssl.TLSVersion.TLSv1_2:
        raise ValueError("the SMTP TLS context must require TLS 1.2 or newer (ACS's minimum)")


# ----- classifying failures (pure) ------------------------------------------------------------


def _classify(
    exc: BaseException, step: str, endpoint: str, username: str, password: SecretStr
) -> _Retryable | VerificationFailed:
    """Turns what went wrong into a retryable or a final failure, with a safe message."""
    host = endpoint.rpartition(":")[0]
    cause = exc.__cause__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return VerificationFailed(
            f"TLS certificate of {endpoint} failed verification during {step}: "
            f"{_tls_reason(exc)}. Use the DNS name smtp.azurecomm.net (not an IP address) "
            "and make sure the certificate's issuer is trusted",
            FailureKind.TLS,
        )
    if isinstance(exc, ssl.SSLError):
        return VerificationFailed(
            f"TLS handshake with {endpoint} failed during {step}: {_tls_reason(exc)}. "
            "ACS requires TLS 1.2 or newer",
            FailureKind.TLS,
        )
    resolution = exc if isinstance(exc, socket.gaierror) else cause
    if isinstance(resolution, socket.gaierror):
        reason = resolution.strerror
        return VerificationFailed(
            f"cannot resolve the SMTP host {host!r}: {reason}. Check ROTATION_SMTP_HOST "
            "(smtp.azurecomm.net) and the Function App's DNS",
            FailureKind.DNS,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = _scrub(f"{exc.code} {exc.message}", username, password)
        if exc.code == _AUTH_REJECTED:
            return _Retryable(f"{step} answered {text}", FailureKind.REJECTED)
        if 400 <= exc.code < 500:
            return _Retryable(f"{step} answered {text}", FailureKind.CONNECTION)
        return VerificationFailed(f"{endpoint} refused {step}: {text}", FailureKind.REJECTED)
    if isinstance(exc, TimeoutError):  # aiosmtplib's timeouts are TimeoutErrors too
        return _Retryable(f"{step} timed out", FailureKind.TIMEOUT)
    if isinstance(exc, OSError):  # refused, reset, dropped (SMTPServerDisconnected is one)
        text = _scrub(str(exc), username, password)
        return _Retryable(f"connection lost during {step}: {text}", FailureKind.CONNECTION)
    if step == "STARTTLS":
        return VerificationFailed(
            f"{endpoint} does not offer STARTTLS; ACS always does. Check ROTATION_SMTP_HOST "
            "and ROTATION_SMTP_PORT (587)",
            FailureKind.TLS,
        )
    text = _scrub(str(exc), username, password)
    return VerificationFailed(f"{endpoint} failed during {step}: {text}", FailureKind.REJECTED)


def _tls_reason(exc: ssl.SSLError) -> str:
    reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return str(reason).rstrip(".")


def _scrub(text: str, username: str, password: SecretStr) -> str:
    """`text` without the password in any form a server could echo (plain or base64)."""
    secret = password.get_secret_value()
    if not secret:
        return text[:300]
    forms = {
        secret,
        _b64(secret),
        _b64(f"\0{username}\0{secret}"),
        _b64(f"{username}\0{username}\0{secret}"),
    }
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "[REDACTED]")
    return text[:300]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
