"""Observation at scale: one listing of the vault, version histories only where needed.

An untouched app (its last rotation seen to finish, nothing due, no other credential)
costs no Key Vault request of its own; everything else still has its versions read.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from rotation.azure.key_vault import SETTLED_TAG
from rotation.model import Mode, Outcome, RunOptions
from rotation.service import RotationService
from sandbox.seed import Sender
from sandbox.server import Sandbox
from sandbox.state import SandboxState, SecretVersion
from tests.integration.conftest import OpenService
from tests.integration.test_engine_lease import MemoryLeases
from tests.reliability.harness import Tripwire

LIST = "vault GET /secrets"
VERSIONS = "vault GET /secrets/{name}/versions"
PATCH = "vault PATCH /secrets/{name}/{version}"
WRITES = ("POST", "PUT", "PATCH", "DELETE")

ROLE_ASSIGNMENTS = "arm GET /{scope}/providers/Microsoft.Authorization/roleAssignments"
LIST_PRINCIPALS = "graph GET /servicePrincipals"


def vault_requests(state: SandboxState) -> dict[str, int]:
    return {k: n for k, n in state.requests.items() if k.startswith("vault ")}


def writes(state: SandboxState) -> int:
    return sum(
        n
        for key, n in state.requests.items()
        if key.split()[0] in ("graph", "vault") and key.split()[1] in WRITES
    )


def current_tags(sandbox: Sandbox, service: RotationService, sender: Sender) -> dict[str, str]:
    live = sandbox.state.live_secret(service.settings.secret_name(sender.app_id))
    assert live is not None
    return live.tags


async def a_run_reads_no_versions_and_writes_nothing(
    sandbox: Sandbox, service: RotationService
) -> None:
    """Once marked, the app is untouched: the next run lists and writes nothing (I7)."""
    sandbox.state.requests.clear()
    await service.run()
    assert writes(sandbox.state) == 0
    assert VERSIONS not in vault_requests(sandbox.state)


async def test_untouched_apps_cost_one_listing_and_no_version_reads(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    senders = [sandbox.add_sender() for _ in range(3)]
    async with open_service(grace_hours=0) as service:
        first = await service.run()
        assert {o.outcome for o in first.outcomes} == {Outcome.ROTATED}
        for sender in senders:  # the rotation finished: old secret gone, version marked
            assert current_tags(sandbox, service, sender)[SETTLED_TAG]
        sandbox.state.requests.clear()

        second = await service.run()
        rows = await service.status()

    assert {o.outcome for o in second.outcomes} == {Outcome.UNCHANGED}
    # Two listings (run, status) of 6 secrets (passwords and -username companions).
    assert vault_requests(sandbox.state) == {LIST: 2}
    assert writes(sandbox.state) == 0
    for row, sender in zip(rows, sorted(senders, key=lambda s: s.app_id), strict=True):
        assert row.state == "ok"
        assert row.vault_version == current_tags(sandbox, service, sender)[SETTLED_TAG]


async def test_an_app_with_a_new_credential_has_its_versions_read_again(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    senders = [sandbox.add_sender() for _ in range(3)]
    async with open_service(grace_hours=0) as service:
        await service.run()
        sandbox.state.add_password(senders[1].app, display_name="added by a person")
        sandbox.state.requests.clear()

        report = await service.run()

    by_app = {o.app_id: o for o in report.outcomes}
    assert by_app[senders[1].app_id].outcome is Outcome.RETIRED  # grace 0: it goes at once
    assert vault_requests(sandbox.state)[VERSIONS] == 1
    assert len(senders[1].app.passwords) == 1


async def test_a_rotation_whose_mark_was_refused_is_marked_by_the_next_run(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    """The mark is the rotation's last write; a run stopped before it (here: refused)
    leaves the app to be read in full and finished by the next run, which then marks it."""
    sender = sandbox.add_sender()
    async with open_service(grace_hours=0) as service:
        sandbox.state.faults.inject(PATCH, status=403, times=1)
        (first,) = (await service.run()).outcomes
        assert first.outcome is Outcome.ROTATED, first.error
        assert SETTLED_TAG not in current_tags(sandbox, service, sender)

        sandbox.state.requests.clear()
        (second,) = (await service.run()).outcomes
        assert second.outcome is Outcome.UNCHANGED
        assert vault_requests(sandbox.state) == {LIST: 1, VERSIONS: 1, PATCH: 1}
        assert SETTLED_TAG in current_tags(sandbox, service, sender)

        await a_run_reads_no_versions_and_writes_nothing(sandbox, service)


def promoted_before_the_mark(
    sandbox: Sandbox, service: RotationService, sender: Sender | None = None
) -> Sender:
    """A sender whose secret Key Vault serves, as a rotator without the mark left it."""
    sender = sender or sandbox.add_sender()
    name = service.settings.secret_name(sender.app_id)
    now = sandbox.state.clock.now()
    sandbox.state.vault[name] = [
        SecretVersion(
            name=name,
            version=uuid.uuid4().hex,
            value=sender.password.secret_text,
            content_type="smtp-password",
            tags={"key-id": sender.password.key_id, "smtp-username": sender.username},
            enabled=True,
            expires=sender.password.end,
            not_before=None,
            created=now - timedelta(days=3),
            updated=now - timedelta(days=3),
        )
    ]
    return sender


async def test_a_secret_promoted_before_the_mark_existed_is_marked_once_not_by_a_dry_run(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = promoted_before_the_mark(sandbox, service)
    name = service.settings.secret_name(sender.app_id)

    await service.run(RunOptions(dry_run=True))
    assert writes(sandbox.state) == 0
    (outcome,) = (await service.run()).outcomes
    tags = current_tags(sandbox, service, sender)
    assert outcome.outcome is Outcome.UNCHANGED
    assert tags == {
        "key-id": sender.password.key_id,
        "smtp-username": sender.username,
        SETTLED_TAG: sandbox.state.vault[name][0].version,
    }
    assert vault_requests(sandbox.state)[PATCH] == 1
    await a_run_reads_no_versions_and_writes_nothing(sandbox, service)


async def test_marking_an_untouched_app_waits_for_its_lease(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    """The mark is a write: it is made under the app's lease, and not while another run
    holds it (that run marks the app when it finishes)."""
    sender = sandbox.add_sender()
    leases = MemoryLeases(sandbox.state, taken={sender.app_id.lower()})
    async with open_service(leases=leases) as service:
        promoted_before_the_mark(sandbox, service, sender)
        (held,) = (await service.run()).outcomes
        assert held.outcome is Outcome.UNCHANGED
        assert SETTLED_TAG not in current_tags(sandbox, service, sender)
        leases.held.clear()
        await service.run()

        assert SETTLED_TAG in current_tags(sandbox, service, sender)
    ((app_id, before, after),) = leases.spans
    assert app_id == sender.app_id.lower()
    assert after - before == 1  # the tag, inside the hold


async def test_named_apps_read_their_own_versions_instead_of_listing_the_vault(
    sandbox: Sandbox, service: RotationService
) -> None:
    senders = [sandbox.add_sender() for _ in range(3)]
    await service.run()
    sandbox.state.requests.clear()

    await service.run(RunOptions((senders[0].app_id,), mode=Mode.DUE))

    assert LIST not in vault_requests(sandbox.state)
    assert vault_requests(sandbox.state)[VERSIONS] == 1


async def test_the_vault_listing_runs_beside_discovery_not_after_it(
    sandbox: Sandbox, service: RotationService
) -> None:
    """design.md ("Parts"): discovery and the vault listing side by side. ARM's role
    assignments are slowed, so discovery reaches Graph late; the listing's first page is
    asked for before discovery's Graph reads, not after them (as it was)."""
    sandbox.add_sender()
    sandbox.state.faults.inject(ROLE_ASSIGNMENTS, latency=0.5)
    graph_reads_then: list[int] = []
    sandbox.state.faults.add(
        Tripwire(
            LIST,
            lambda: graph_reads_then.append(sandbox.state.requests[LIST_PRINCIPALS]),
        )
    )
    for run in (service.run(RunOptions(dry_run=True)), service.status()):
        graph_reads_then.clear()
        sandbox.state.requests.clear()
        await run
        assert graph_reads_then == [0], "the vault listing waited for discovery"
        assert sandbox.state.requests[LIST_PRINCIPALS] > 0  # discovery did read Graph
        for fault in sandbox.state.faults.faults:
            if isinstance(fault, Tripwire):
                fault.fired = False
