"""A Key Vault name held by a soft-deleted secret blocks the app, before any Entra write.

Purge protection keeps a deleted `acs-smtp-<appId>` (or its `-username` companion) for the
retention period, and Key Vault refuses to reuse the name (409). Without a check first,
every run would create an Entra secret, verify it, fail to store it and roll it back. The
rotator reads GET /deletedsecrets/{name} first, reports the app as blocked with the exact
`az keyvault secret recover` command, and leaves Entra alone.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from rotation import answers
from rotation.model import Mode, Outcome, RunOptions
from rotation.service import RotationService
from sandbox.server import Sandbox
from sandbox.state import SandboxState

GRAPH_WRITES = (
    "graph POST /applications/{id}/addPassword",
    "graph POST /applications/{id}/removePassword",
)


def graph_writes(state: SandboxState) -> int:
    return sum(state.requests[key] for key in GRAPH_WRITES)


def vault_name(sandbox: Sandbox) -> str:
    return (urlsplit(sandbox.vault_url).hostname or "").split(".", 1)[0]


async def test_a_soft_deleted_secret_name_blocks_the_app_with_zero_entra_writes(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    other = sandbox.add_sender(lifetime=timedelta(days=10))
    name = service.settings.secret_name(sender.app_id)
    sandbox.state.soft_delete_secret(name)

    report = await service.run()

    outcomes = {o.app_id: o for o in report.outcomes}
    blocked = outcomes[sender.app_id]
    assert blocked.outcome is Outcome.BLOCKED
    assert blocked.error is not None
    assert f"az keyvault secret recover --vault-name {vault_name(sandbox)} --name {name}" in (
        blocked.error
    )
    assert "purge" in blocked.error
    assert outcomes[other.app_id].outcome is Outcome.ROTATED  # the others go on
    assert report.ok  # blocked is not failed
    assert answers.RunReport.of(report).blocked == [sender.app_id]  # listed for the operator
    assert [p.key_id for p in sender.app.passwords] == [sender.password.key_id]
    assert graph_writes(sandbox.state) == 1  # the other app's addPassword only


async def test_a_soft_deleted_username_companion_blocks_too(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender()
    companion = service.settings.secret_name(sender.app_id) + "-username"
    sandbox.state.soft_delete_secret(companion)

    report = await service.run(RunOptions((sender.app_id,), mode=Mode.FORCE))

    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.BLOCKED
    assert outcome.error is not None
    assert f"--name {companion}`" in outcome.error
    assert graph_writes(sandbox.state) == 0


async def test_once_the_name_is_recovered_the_next_run_rotates(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender()
    name = service.settings.secret_name(sender.app_id)
    first = await service.run(RunOptions((sender.app_id,), mode=Mode.FORCE))
    sandbox.state.soft_delete_secret(name)
    sandbox.state.soft_delete_secret(name + "-username")

    blocked = await service.run(RunOptions((sender.app_id,), mode=Mode.FORCE))
    sandbox.state.recover_secret(name)  # what `az keyvault secret recover` does
    sandbox.state.recover_secret(name + "-username")
    after = await service.run(RunOptions((sender.app_id,), mode=Mode.FORCE))

    assert first.outcomes[0].outcome is Outcome.ROTATED
    assert blocked.outcomes[0].outcome is Outcome.BLOCKED
    (outcome,) = after.outcomes
    assert outcome.outcome is Outcome.ROTATED, outcome.error
    live = sandbox.state.live_secret(name)
    assert live is not None
    assert live.tags["key-id"] == outcome.new_key_id


async def test_a_name_still_being_deleted_is_caught_at_the_write_and_rolled_back(
    sandbox: Sandbox, service: RotationService
) -> None:
    """While the deletion runs, GET /deletedsecrets answers 404 like a free name; the
    write's 409 ObjectIsBeingDeleted then blocks the app and the new secret goes (I3)."""
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    name = service.settings.secret_name(sender.app_id)
    sandbox.state.soft_delete_secret(name, finishing_in=timedelta(hours=1))

    report = await service.run()

    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.BLOCKED
    assert outcome.error is not None
    assert "is being deleted" in outcome.error
    assert f"--name {name}`" in outcome.error
    assert [p.key_id for p in sender.app.passwords] == [sender.password.key_id]
    assert sandbox.state.live_secret(name) is None


async def test_a_dry_run_shows_the_block_too_without_writing(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    name = service.settings.secret_name(sender.app_id)
    sandbox.state.soft_delete_secret(name)

    report = await service.run(RunOptions(dry_run=True))

    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.BLOCKED
    assert f"--name {name}`" in (outcome.error or "")
    assert graph_writes(sandbox.state) == 0


async def test_one_listing_of_deleted_names_serves_every_first_rotation_of_a_run(
    sandbox: Sandbox, service: RotationService
) -> None:
    senders = [sandbox.add_sender(lifetime=timedelta(days=10)) for _ in range(5)]
    sandbox.state.soft_delete_secret(service.settings.secret_name(senders[0].app_id))

    first = await service.run()
    listings = sandbox.state.requests["vault GET /deletedsecrets"]
    second = await service.run(
        RunOptions(mode=Mode.FORCE)
    )  # only the blocked app still needs a listing

    assert sorted(o.outcome.value for o in first.outcomes) == ["blocked"] + ["rotated"] * 4
    assert listings == 1
    assert sandbox.state.requests["vault GET /deletedsecrets/{name}"] == 0
    assert {o.outcome for o in second.outcomes if o.app_id != senders[0].app_id} == {
        Outcome.ROTATED
    }
    assert sandbox.state.requests["vault GET /deletedsecrets"] == 1 + 1  # the blocked app's


async def test_when_the_listing_fails_each_app_asks_about_its_own_names(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    sandbox.state.soft_delete_secret(service.settings.secret_name(sender.app_id))
    sandbox.state.faults.inject("vault GET /deletedsecrets", status=400)

    report = await service.run()

    (outcome,) = report.outcomes
    assert outcome.outcome is Outcome.BLOCKED
    assert sandbox.state.requests["vault GET /deletedsecrets/{name}"] >= 1
    assert graph_writes(sandbox.state) == 0
