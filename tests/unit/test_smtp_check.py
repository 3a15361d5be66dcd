"""The pure parts of rotation.azure.smtp: which failures are retried, and what a message may say."""

from __future__ import annotations

import base64
import socket
import ssl
import warnings

import aiosmtplib
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from rotation.azure.smtp import SmtpVerifier, _classify, _Retryable, _scrub
from rotation.errors import VerificationFailed

ENDPOINT = "smtp.azurecomm.net:587"
USER = "acs-mail.11111111-1111-1111-1111-111111111111.22222222-2222-2222-2222-222222222222"
SECRET = SecretStr("Abc8Q~s3cr3t-value_0123456789.abcdefghij")
#: Characters Entra puts in client secrets.
SECRET_ALPHABET = st.sampled_from(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-"
)


def classify(exc: BaseException, step: str = "AUTH") -> _Retryable | VerificationFailed:
    return _classify(exc, step, ENDPOINT, USER, SECRET)


def caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.3 Authentication unsuccessful"), "rejected"),
        (aiosmtplib.SMTPConnectResponseError(421, "4.3.2 Service not available"), "connection"),
        (aiosmtplib.SMTPResponseException(451, "4.3.0 Temporary server error"), "connection"),
        (aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"), "connection"),
        (
            caused(aiosmtplib.SMTPConnectError("refused"), ConnectionRefusedError(111, "refused")),
            "connection",
        ),
        (aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"), "timeout"),
        (aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"), "timeout"),
        (TimeoutError(), "timeout"),
    ],
)
def test_transient_failures_are_retried(exc: BaseException, kind: str) -> None:
    outcome = classify(exc)
    assert isinstance(outcome, _Retryable)
    assert outcome.kind == kind


@pytest.mark.parametrize(
    ("exc", "step", "kind"),
    [
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "STARTTLS", "tls"),
        (ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION]"), "STARTTLS", "tls"),
        (
            caused(
                aiosmtplib.SMTPConnectError("Error connecting"),
                socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            ),
            "connect",
            "dns",
        ),
        (aiosmtplib.SMTPException("STARTTLS extension not supported"), "STARTTLS", "tls"),
        (aiosmtplib.SMTPResponseException(554, "5.7.1 Access denied"), "connect", "rejected"),
        (aiosmtplib.SMTPNotSupported("no AUTH LOGIN or PLAIN"), "AUTH", "rejected"),
    ],
)
def test_permanent_failures_fail_at_once(exc: BaseException, step: str, kind: str) -> None:
    outcome = classify(exc, step)
    assert isinstance(outcome, VerificationFailed)
    assert outcome.kind == kind


def test_dns_failure_names_the_host_and_the_setting() -> None:
    exc = caused(aiosmtplib.SMTPConnectError("x"), socket.gaierror(-2, "Name or service not known"))
    message = str(classify(exc, "connect"))
    assert "'smtp.azurecomm.net'" in message
    assert "ROTATION_SMTP_HOST" in message


@pytest.mark.parametrize(
    "echo",
    [
        SECRET.get_secret_value(),
        base64.b64encode(SECRET.get_secret_value().encode()).decode(),
        base64.b64encode(f"\0{USER}\0{SECRET.get_secret_value()}".encode()).decode(),
    ],
)
def test_a_server_echoing_the_password_does_not_leak_it(echo: str) -> None:
    outcome = classify(aiosmtplib.SMTPAuthenticationError(535, f"5.7.3 bad credentials {echo}"))
    assert isinstance(outcome, _Retryable)
    assert echo not in str(outcome)
    assert echo not in repr(outcome)
    assert "[REDACTED]" in str(outcome)


@given(
    secret=st.text(SECRET_ALPHABET, min_size=8, max_size=48),
    before=st.text(max_size=200),
    after=st.text(max_size=200),
)
def test_scrub_never_returns_the_secret(secret: str, before: str, after: str) -> None:
    assert secret not in _scrub(before + secret + after, USER, SecretStr(secret))


def test_verifier_refuses_a_context_without_checks() -> None:
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify certificates and host names"):
        SmtpVerifier("smtp.azurecomm.net", 587, unchecked)


def test_verifier_refuses_tls_below_1_2() -> None:
    legacy = ssl.create_default_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy.minimum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        SmtpVerifier("smtp.azurecomm.net", 587, legacy)
