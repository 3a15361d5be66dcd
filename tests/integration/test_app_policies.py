"""The tenant's app-management policies (Entra), read through Graph with the real SDK: a new
secret lasts no longer than the policy governing its app allows, an app whose policy
forbids new passwords is blocked before any write, and without the permission to read them
the run goes on and says so. The sandbox applies the same policies to addPassword
(sandbox/app_policies.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rotation.model import Mode, Outcome, RunOptions
from rotation.service import RotationService
from sandbox.app_policies import PasswordRestriction, new_policy
from sandbox.server import Sandbox
from sandbox.state import GRAPH_APPLICATION_READ_ALL, GRAPH_POLICY_READ_ALL, SandboxState
from tests.integration.conftest import OpenService

ADD = "graph POST /applications/{id}/addPassword"
BAN = PasswordRestriction("passwordAddition")


def cap(days: int) -> PasswordRestriction:
    return PasswordRestriction("passwordLifetime", timedelta(days=days))


def tenant_policy(sandbox: Sandbox, *restrictions: PasswordRestriction) -> None:
    default = sandbox.state.tenants[sandbox.tenant_id]
    default.enabled = True
    default.passwords = list(restrictions)


def writes(state: SandboxState) -> int:
    return sum(n for k, n in state.requests.items() if k.split()[:2] == ["graph", "POST"])


async def test_a_tenant_cap_shortens_the_new_secret_and_the_plan_says_so(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    tenant_policy(sandbox, cap(90))

    plan = await service.run(RunOptions(dry_run=True))
    report = await service.run()

    (planned,), (rotated,) = plan.outcomes, report.outcomes
    assert rotated.outcome is Outcome.ROTATED, rotated.error
    assert "the new secret lasts 90.0 days" in planned.reason
    assert "the tenant default app-management policy allows at most 90.0 days" in rotated.reason
    assert "ROTATION_SECRET_LIFETIME_DAYS is 180" in rotated.reason
    new = next(p for p in sender.app.passwords if p.key_id == rotated.new_key_id)
    assert timedelta(days=89, hours=23) < new.end - new.start < timedelta(days=90)


async def test_an_app_whose_policy_forbids_passwords_is_blocked_with_zero_entra_writes(
    sandbox: Sandbox, service: RotationService
) -> None:
    banned = sandbox.add_sender(lifetime=timedelta(days=10))
    free = sandbox.add_sender(lifetime=timedelta(days=10))
    sandbox.state.assign_policy(banned.app, new_policy("no secrets", BAN))

    planned = {o.app_id: o for o in (await service.run(RunOptions(dry_run=True))).outcomes}
    report = {o.app_id: o for o in (await service.run()).outcomes}

    blocked = report[banned.app_id]
    assert blocked.outcome is Outcome.BLOCKED
    assert planned[banned.app_id].outcome is Outcome.BLOCKED  # the plan shows it too
    assert "app-management policy 'no secrets'" in (blocked.error or "")
    assert "forbids adding a password" in (blocked.error or "")
    assert "appManagementPolicies/$ref" in (blocked.error or "")
    assert [p.key_id for p in banned.app.passwords] == [banned.password.key_id]
    assert sandbox.state.requests[ADD] == 1  # the free app's only
    assert report[free.app_id].outcome is Outcome.ROTATED


async def test_an_app_policy_of_its_own_exempts_it_from_a_tenant_ban(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    tenant_policy(sandbox, BAN)
    sandbox.state.assign_policy(sender.app, new_policy("rotator's apps", cap(120)))

    (outcome,) = (await service.run()).outcomes

    assert outcome.outcome is Outcome.ROTATED, outcome.error
    assert "app-management policy 'rotator's apps'" in outcome.reason
    assert "lasts 120.0 days" in outcome.reason


async def test_a_restriction_reaches_only_apps_created_after_its_date(
    sandbox: Sandbox, service: RotationService
) -> None:
    older = sandbox.add_sender(lifetime=timedelta(days=10))
    older.app.created -= timedelta(days=400)
    newer = sandbox.add_sender(lifetime=timedelta(days=10))
    since = sandbox.state.clock.now() - timedelta(days=30)
    tenant_policy(sandbox, PasswordRestriction("passwordAddition", applies_from=since))

    report = {o.app_id: o for o in (await service.run()).outcomes}

    assert report[older.app_id].outcome is Outcome.ROTATED
    assert report[newer.app_id].outcome is Outcome.BLOCKED


async def test_a_cap_not_above_the_rotation_window_blocks_with_the_setting_to_change(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    tenant_policy(sandbox, cap(20))  # ROTATION_ROTATE_BEFORE_DAYS is 30

    (outcome,) = (await service.run()).outcomes

    assert outcome.outcome is Outcome.BLOCKED
    assert "set ROTATION_ROTATE_BEFORE_DAYS below 20.0 days" in (outcome.error or "")
    assert len(sender.app.passwords) == 1


@pytest.mark.slow
@pytest.mark.parametrize("missing", [GRAPH_POLICY_READ_ALL, GRAPH_APPLICATION_READ_ALL])
async def test_without_the_permission_to_read_them_the_run_goes_on_and_says_so(
    sandbox: Sandbox, open_service: OpenService, missing: str
) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=10))
    other = sandbox.state.add_application(sandbox.tenant_id, "someone else's app")
    sandbox.state.assign_policy(other, new_policy("theirs", cap(30)))  # whose reach is read
    sandbox.rotator.sp.graph_roles.discard(missing)

    async with open_service() as service:
        (outcome,) = (await service.run()).outcomes

    assert outcome.outcome is Outcome.ROTATED, outcome.error
    assert "app-management policies could not be read" in outcome.reason
    assert "Policy.Read.All and Application.Read.All" in outcome.reason
    assert len(sender.app.passwords) == 2


async def test_unread_assignments_never_block_on_the_tenant_default_alone(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    """Without Application.Read.All the rotator cannot see an app's own policy, which may
    exempt it: the tenant default's ban is not applied on that guess. Graph's own refusal
    of the password then blocks the app, with no write made."""
    exempt = sandbox.add_sender(lifetime=timedelta(days=10))
    banned = sandbox.add_sender(lifetime=timedelta(days=10))
    tenant_policy(sandbox, BAN)
    sandbox.state.assign_policy(exempt.app, new_policy("exempt", cap(365)))
    sandbox.rotator.sp.graph_roles.discard(GRAPH_APPLICATION_READ_ALL)

    async with open_service() as service:
        report = {o.app_id: o for o in (await service.run()).outcomes}

    assert report[exempt.app_id].outcome is Outcome.ROTATED, report[exempt.app_id].error
    refused = report[banned.app_id]
    assert refused.outcome is Outcome.BLOCKED  # not failed: an administrator must act
    assert "CredentialTypeNotAllowedAsPerAppPolicy" in (refused.error or "")
    assert len(banned.app.passwords) == 1


async def test_an_emergency_rotation_respects_the_ban_too(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.assign_policy(sender.app, new_policy("no secrets", BAN))
    before = writes(sandbox.state)

    (outcome,) = (
        await service.run(RunOptions(mode=Mode.EMERGENCY, app_ids=[sender.app_id]))
    ).outcomes

    assert outcome.outcome is Outcome.BLOCKED
    assert writes(sandbox.state) == before
    assert [p.key_id for p in sender.app.passwords] == [sender.password.key_id]
