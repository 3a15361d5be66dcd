"""Verification that never succeeds: roll back, leave Key Vault alone, say why (I2, I3).

Each scenario starts from an app whose Key Vault password works (K1), breaks one thing
the SMTP AUTH proof depends on, then forces a rotation. The new credential must be
removed again (rollback), Key Vault must not be written (same version, same value), the
report must name the problem, and a TLS problem must fail at once instead of retrying
for the whole verify timeout.

What the product proves, and what it does not: the verify step is one SMTP AUTH with the
app's username and the new password (EHLO, STARTTLS with certificate and host-name
checks, AUTH, QUIT). It proves username, password, the app's ACS role and the TLS path.
It does not send mail, so a wrong *sender address* (MAIL FROM not among the ACS domain's
senders) is not a verification failure: that is a property of the ACS email domain, not
of the password, and ACS refuses it with 550 whatever the password. The last test pins
this down: the rotation succeeds, and the consumer's wrong sender is refused the same
way before and after it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiosmtplib
import pytest
import trustme

from rotation import answers
from rotation.azure.smtp import SmtpVerifier
from rotation.model import Mode, Outcome, RunOptions
from sandbox.seed import Sender
from sandbox.server import Sandbox
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import FAST_BACKOFF, EngineEvents, MakeWorld, World, open_service

VERIFY_TIMEOUT = 2  # seconds: a refusal is retried this long (propagation looks the same)
PUT = "vault PUT /secrets/{name}"


@dataclass(frozen=True)
class Breakage:
    name: str
    via: str  # how the sender is found: its role must not be what finds it, if removed
    # Breaks something in the world, or returns the verifier the rotation is to use instead.
    breaks: Callable[[World, Sender], SmtpVerifier | None]
    kind: str  # VerificationFailed kind in the engine's log
    says: tuple[str, ...]  # words the report's error must contain
    fails_fast: bool


def remove_role(world: World, sender: Sender) -> None:
    world.state.role_assignments = [
        a for a in world.state.role_assignments if a.principal_id != sender.sp.object_id
    ]


def mismatched_host_name(world: World, sender: Sender) -> SmtpVerifier:
    # The relay's certificate names localhost, 127.0.0.1 and ::1. "127.1" reaches the
    # same socket, but as a host name that the certificate does not carry.
    return SmtpVerifier(
        "127.1",
        world.settings.smtp_port,
        world.sandbox.client_ssl(),
        attempt_timeout=5,
        backoff=FAST_BACKOFF,
    )


def untrusted_ca(world: World, sender: Sender) -> SmtpVerifier:
    # What a TLS-intercepting proxy on port 587 looks like: a certificate from a CA the
    # rotator does not trust (only the SMTP path; Graph and Key Vault stay trusted).
    context = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return SmtpVerifier(
        world.settings.smtp_host,
        world.settings.smtp_port,
        context,
        attempt_timeout=5,
        backoff=FAST_BACKOFF,
    )


BREAKAGES = [
    Breakage(
        "ACS role removed from the app",
        "smtp-username",
        remove_role,
        "rejected",
        ("535", "did not succeed", "CommunicationServices/Read"),
        fails_fast=False,
    ),
    Breakage(
        "TLS host name mismatch (127.1 vs the certificate)",
        "role",
        mismatched_host_name,
        "tls",
        ("TLS certificate", "127.1", "smtp.azurecomm.net"),
        fails_fast=True,
    ),
    Breakage(
        "TLS certificate from an untrusted CA",
        "role",
        untrusted_ca,
        "tls",
        ("TLS certificate", "failed verification"),
        fails_fast=True,
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.name for b in BREAKAGES])
async def test_verification_that_never_succeeds_rolls_back_and_leaves_key_vault_alone(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger, breakage: Breakage
) -> None:
    sender = sandbox.add_sender(via=breakage.via)  # type: ignore[arg-type]
    world = make_world([sender], verify_timeout_seconds=VERIFY_TIMEOUT)
    await world.service.run()
    before_keys = world.key_ids(sender)
    before = world.live(sender)
    assert before is not None
    verifier = breakage.breaks(world, sender)
    puts = world.count(PUT)
    connects = world.count("smtp CONNECT")
    events = EngineEvents()

    started = time.monotonic()
    async with open_service(world.sandbox, world.settings, verifier) as service:
        with events.attached():
            report = await service.run(RunOptions(mode=Mode.FORCE))
    evidence.add("report", answers.RunReport.of(report).body())
    outcome = report.outcomes[0]

    assert outcome.outcome is Outcome.FAILED
    assert outcome.error is not None
    for words in breakage.says:
        assert words in outcome.error, outcome.error
    assert world.key_ids(sender) == before_keys, "the unverified credential outlived the run"
    assert [e.fields["key_id"] for e in events.named("credential.rolled_back")] == [
        outcome.new_key_id
    ]
    assert world.count(PUT) == puts, "Key Vault was written although verification failed"
    after = world.live(sender)
    assert after is not None
    assert (after.version, after.value) == (before.version, before.value)
    attempts = world.count("smtp CONNECT") - connects
    if breakage.fails_fast:
        assert attempts == 1, f"a TLS failure was retried {attempts} times"
    else:
        assert attempts > 1
    ledger.record(
        f"verification never succeeds: {breakage.name}",
        f"forced rotation; {attempts} SMTP attempt(s) in {time.monotonic() - started:.1f} s "
        f"(verify timeout {VERIFY_TIMEOUT} s)",
        f"rolled back (new credential removed), Key Vault untouched, report says: "
        f"{outcome.error[:160]}...",
    )


async def test_a_wrong_sender_address_is_not_an_auth_failure(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    world = make_world(1)
    sender = world.senders[0]
    wrong, right = "someone@not-a-connected-domain.example", sorted(sender.resource.senders)[0]

    async def send(mail_from: str) -> int:
        live = world.live(sender)
        assert live is not None
        async with aiosmtplib.SMTP(
            hostname=world.settings.smtp_host,
            port=world.settings.smtp_port,
            tls_context=sandbox.client_ssl(),
            start_tls=True,
        ) as smtp:
            await smtp.login(sender.username, live.value)
            code, _ = await smtp.mail(mail_from)
            return code

    await world.service.run()
    refused = []
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as caught:
        await send(wrong)
    refused.append(caught.value.code)
    report = await world.service.run(RunOptions(mode=Mode.FORCE))
    evidence.add("report", answers.RunReport.of(report).body())
    assert report.outcomes[0].outcome is Outcome.ROTATED
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as caught:
        await send(wrong)
    refused.append(caught.value.code)
    assert refused == [550, 550]
    assert await send(right) == 250
    ledger.record(
        "wrong sender address (MAIL FROM) — not a verification failure",
        "consumer sends from an address the ACS domain does not allow, before and after a rotation",
        "rotation succeeded (it proves AUTH: username, password, role, TLS); the wrong sender "
        "got 550 5.7.1 both times, the right one 250: a domain setting, not a password problem",
    )


@pytest.mark.slow
async def test_a_wrong_smtp_username_rolls_back_like_a_wrong_password(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    """An allow-list entry with a typo in its username (`<appId>=<username>` wins over
    discovered usernames): ACS answers 535 as for a wrong password, so it is retried until
    the verify timeout, then rolled back."""
    sender = sandbox.add_sender()
    world = make_world([sender], verify_timeout_seconds=VERIFY_TIMEOUT)
    await world.service.run()
    before, keys = world.live(sender), world.key_ids(sender)
    typo = sender.username.replace("acs-", "acz-", 1)
    mistaken = make_world(
        [sender], verify_timeout_seconds=VERIFY_TIMEOUT, app_ids=f"{sender.app_id}={typo}"
    )
    puts = world.count(PUT)

    report = await mistaken.service.run(RunOptions(mode=Mode.FORCE))
    evidence.add("report", answers.RunReport.of(report).body())

    outcome = report.outcomes[0]
    assert outcome.outcome is Outcome.FAILED
    assert outcome.error is not None
    assert typo in outcome.error
    assert "535" in outcome.error
    assert "SMTP username" in outcome.error
    assert world.key_ids(sender) == keys
    assert world.count(PUT) == puts
    assert world.live(sender) is before
    ledger.record(
        "verification never succeeds: wrong SMTP username (allow-list typo)",
        f"forced rotation as {typo!r}",
        f"rolled back, Key Vault untouched, report says: {outcome.error[:120]}...",
    )
