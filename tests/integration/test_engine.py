"""The engine end to end: real SDKs over HTTPS and a real SMTP client against the sandbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rotation.model import CREDENTIAL_PREFIX, Mode, Outcome, RunOptions
from rotation.service import RotationService, UnknownApps
from sandbox.server import Sandbox
from sandbox.state import GRAPH_READ_WRITE_OWNED_BY, SandboxState
from tests.integration.conftest import OpenService
from tests.waiting import cancel, until

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def writes(state: SandboxState) -> int:
    return sum(
        n
        for key, n in state.requests.items()
        if key.split()[0] in ("graph", "vault") and key.split()[1] in WRITE_METHODS
    )


def live_password_works(state: SandboxState, secret_name: str, username: str) -> bool:
    """What a consumer gets from Key Vault right now passes ACS's SMTP AUTH rule."""
    live = state.live_secret(secret_name)
    return live is not None and state.smtp_login(username, live.value).ok


async def test_due_app_is_created_verified_promoted_and_old_secret_kept_for_grace(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    report = await service.run()
    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.ROTATED, outcome.error
    name = outcome.secret_name
    live = sandbox.state.live_secret(name)
    assert live is not None
    assert live.content_type == "smtp-password"
    assert live.tags["key-id"] == outcome.new_key_id
    assert live.tags["app-id"] == sender.app_id
    assert live.tags["smtp-username"] == sender.username
    assert live.tags["managed-by"] == "acs-smtp-rotation"
    assert outcome.expires is not None
    assert live.expires == outcome.expires.replace(microsecond=0)  # Key Vault keeps seconds
    username_secret = sandbox.state.live_secret(f"{name}-username")
    assert username_secret is not None
    assert username_secret.value == sender.username
    assert live_password_works(sandbox.state, name, sender.username)
    key_ids = {p.key_id for p in sender.app.passwords}
    assert key_ids == {sender.password.key_id, outcome.new_key_id}  # old one waits for grace
    assert next(
        p.display_name for p in sender.app.passwords if p.key_id == outcome.new_key_id
    ).startswith(CREDENTIAL_PREFIX)


async def test_second_run_right_after_changes_nothing(
    sandbox: Sandbox, service: RotationService
) -> None:
    sandbox.add_sender(lifetime=timedelta(days=10))
    sandbox.add_sender(via="smtp-username")
    first = await service.run()
    assert {o.outcome for o in first.outcomes} == {Outcome.ROTATED}
    before = writes(sandbox.state)
    second = await service.run()
    assert {o.outcome for o in second.outcomes} == {Outcome.UNCHANGED}
    assert writes(sandbox.state) == before


async def test_old_secrets_are_retired_after_grace_and_their_versions_disabled(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender()
    first = (await service.run()).outcomes[0]
    second = (await service.run(RunOptions(mode=Mode.FORCE))).outcomes[0]
    assert second.outcome is Outcome.ROTATED
    assert len(sender.app.passwords) == 3
    sandbox.state.clock.advance(timedelta(hours=47))
    assert {o.outcome for o in (await service.run()).outcomes} == {Outcome.UNCHANGED}
    sandbox.state.clock.advance(timedelta(hours=2))
    third = (await service.run()).outcomes[0]
    assert third.outcome is Outcome.RETIRED
    assert set(third.removed_key_ids) == {sender.password.key_id, first.new_key_id}
    assert [p.key_id for p in sender.app.passwords] == [second.new_key_id]
    versions = sandbox.state.vault[first.secret_name.lower()]
    assert [v.enabled for v in versions] == [False, True]
    assert live_password_works(sandbox.state, first.secret_name, sender.username)


async def test_emergency_removes_every_other_secret_at_once(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender()
    await service.run()
    report = await service.run(RunOptions((sender.app_id,), mode=Mode.EMERGENCY))
    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert len(outcome.removed_key_ids) == 2
    assert [p.key_id for p in sender.app.passwords] == [outcome.new_key_id]
    assert not sandbox.state.smtp_login(sender.username, sender.password.secret_text).ok
    assert live_password_works(sandbox.state, outcome.secret_name, sender.username)


async def test_grace_zero_retires_right_after_promotion(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=5))
    async with open_service(grace_hours=0) as service:
        (outcome,) = (await service.run()).outcomes
    assert outcome.removed_key_ids == [sender.password.key_id]
    assert [p.key_id for p in sender.app.passwords] == [outcome.new_key_id]


async def test_failed_verification_removes_new_credential_and_leaves_vault_alone(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    # Known through its SMTP Username, but holding no role on ACS: every AUTH is refused.
    sender = sandbox.add_sender(via="smtp-username", role=None)
    async with open_service(verify_timeout_seconds=1) as service:
        (outcome,) = (await service.run()).outcomes
    assert outcome.outcome is Outcome.FAILED
    assert outcome.error is not None
    assert "535" in outcome.error
    assert [p.key_id for p in sender.app.passwords] == [sender.password.key_id]  # I3
    assert sandbox.state.vault == {}  # I2
    assert sandbox.state.requests["graph POST /applications/{id}/removePassword"] == 1


async def test_vault_write_refused_removes_new_credential_and_keeps_old(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.faults.inject("vault PUT /secrets/{name}", status=403)
    (outcome,) = (await service.run()).outcomes
    assert outcome.outcome is Outcome.FAILED
    assert "Key Vault" in (outcome.error or "")
    assert [p.key_id for p in sender.app.passwords] == [sender.password.key_id]
    assert sandbox.state.vault == {}


async def test_unowned_app_fails_clearly_and_the_others_go_on(
    sandbox: Sandbox, service: RotationService
) -> None:
    sandbox.state.service_principals[sandbox.rotator.principal_id].graph_roles = {
        GRAPH_READ_WRITE_OWNED_BY,
        "Application.Read.All",
    }
    stranger = sandbox.add_sender(owned=False)
    friend = sandbox.add_sender()
    report = await service.run()
    by_app = {o.app_id: o for o in report.outcomes}
    assert by_app[friend.app_id].outcome is Outcome.ROTATED
    failed = by_app[stranger.app_id]
    assert failed.outcome is Outcome.FAILED
    assert "owner" in (failed.error or "")
    assert stranger.app_id in (failed.error or "")
    assert not report.ok


async def test_app_the_rotator_does_not_own_gets_the_fix_in_its_error(
    sandbox: Sandbox, service: RotationService
) -> None:
    stranger = sandbox.add_sender(owned=False)
    (outcome,) = (await service.run()).outcomes
    assert outcome.app_id == stranger.app_id
    assert outcome.outcome is Outcome.FAILED
    assert "az ad app owner add" in (outcome.error or "")


async def test_dry_run_plans_without_writing(sandbox: Sandbox, service: RotationService) -> None:
    sandbox.add_sender(lifetime=timedelta(days=3))
    before = writes(sandbox.state)
    (outcome,) = (await service.run(RunOptions(dry_run=True))).outcomes
    assert outcome.outcome is Outcome.PLANNED
    assert outcome.action.value == "rotate"
    assert "no SMTP password" in outcome.reason
    assert writes(sandbox.state) == before


async def test_unknown_app_ids_are_refused_before_anything_runs(
    sandbox: Sandbox, service: RotationService
) -> None:
    sandbox.add_sender()
    with pytest.raises(UnknownApps, match="00000000-0000-0000-0000-000000000001"):
        await service.run(RunOptions(("00000000-0000-0000-0000-000000000001",)))
    assert writes(sandbox.state) == 0


async def test_crash_after_create_leaves_an_orphan_that_a_later_run_removes(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=3))
    await service.status()  # the rotator's tokens are cached before secrets slow down
    assert service.clients.leases is not None
    await service.clients.leases.ready()  # (the lease store's token too)
    sandbox.state.propagation_delay = timedelta(hours=1)  # verification cannot finish
    run = asyncio.create_task(service.run())
    await until(lambda: len(sender.app.passwords) == 2)
    await cancel(run)
    sandbox.state.propagation_delay = timedelta(0)
    (orphan,) = [p for p in sender.app.passwords if p.key_id != sender.password.key_id]
    # The next run rotates (the app is still due) but leaves the young orphan alone ...
    (outcome,) = (await service.run()).outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert orphan.key_id in {p.key_id for p in sender.app.passwords}
    # ... and once it is older than the verify window, it goes (I5).
    sandbox.state.clock.advance(service.settings.verify_window)
    (later,) = (await service.run()).outcomes
    assert later.removed_key_ids == [orphan.key_id]
    assert live_password_works(sandbox.state, outcome.secret_name, sender.username)


async def test_graph_504_after_add_password_fails_the_app_and_the_orphan_goes_later(
    sandbox: Sandbox, service: RotationService
) -> None:
    """Graph answers 504 after creating the secret: nothing is retried, the app fails, Key
    Vault is untouched, and a run after the verify window removes the orphan (I5)."""
    sender = sandbox.add_sender(lifetime=timedelta(days=3))
    add = "graph POST /applications/{id}/addPassword"
    sandbox.state.faults.inject(add, status=504, times=1, after=True)
    (failed,) = (await service.run()).outcomes
    assert failed.outcome is Outcome.FAILED
    assert "504" in (failed.error or "")
    assert sandbox.state.requests[add] == 1
    (orphan,) = [p for p in sender.app.passwords if p.key_id != sender.password.key_id]
    assert sandbox.state.live_secret(failed.secret_name) is None
    sandbox.state.clock.advance(service.settings.verify_window)
    (later,) = (await service.run()).outcomes
    assert later.outcome is Outcome.ROTATED, later.error
    assert orphan.key_id in later.removed_key_ids
    assert orphan.key_id not in {p.key_id for p in sender.app.passwords}
    assert live_password_works(sandbox.state, later.secret_name, sender.username)


async def test_status_lists_every_app_with_expiry_and_version(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=20))
    (before,) = await service.status()
    assert before.state == "no-password"
    await service.run()
    (row,) = await service.status()
    assert row.app_id == sender.app_id
    assert row.state == "ok"
    assert row.days_left is not None
    assert row.days_left > 170
    assert row.vault_version is not None
