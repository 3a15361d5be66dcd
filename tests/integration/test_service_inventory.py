"""What a run and `status` show of senders the rotator cannot or does not manage.

Managed identities and other tenants' apps holding a role on an ACS resource are reported
as skipped, with the reason, in both the run report and status; they are never failed, so
neither the failed-run alert nor the timer's failure fires. Status also says where each
username came from (SMTP Username resource, role, allow-list).
"""

from __future__ import annotations

import pytest
import structlog

from rotation import answers
from rotation.model import Mode, Outcome, RunOptions
from rotation.service import RotationService, UnknownApps
from sandbox.server import Sandbox
from tests.integration.conftest import OpenService


async def test_a_run_reports_managed_identities_and_other_tenants_apps_as_skipped(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender()
    identity = sandbox.add_managed_identity_holder()
    partner = sandbox.add_other_tenant_holder()
    calls_before = sandbox.state.requests.copy()

    with structlog.testing.capture_logs() as logs:
        report = await service.run(RunOptions(mode=Mode.FORCE))

    outcomes = {o.app_id: o for o in report.outcomes}
    assert outcomes[sender.app_id].outcome is Outcome.ROTATED
    for skipped in (identity.app_id, partner.client_id):
        assert outcomes[skipped].outcome is Outcome.SKIPPED
        assert outcomes[skipped].reason
    assert report.ok
    assert report.failed == []
    assert answers.RunReport.of(report).body()["counts"] == {"rotated": 1, "skipped": 2}
    # The alerts (infra/modules/alerts.bicep) fire on run.finished with failed > 0 and on
    # app.expiry_near; a skipped app causes neither.
    (finished,) = [e for e in logs if e["event"] == "run.finished"]
    assert finished["failed"] == 0
    assert finished["counts"] == {"rotated": 1, "skipped": 2}
    assert len([e for e in logs if e["event"] == "app.skipped"]) == 2
    ends = {e["app_id"]: e for e in logs if e["event"] == "app.finished"}
    for skipped in (identity.app_id, partner.client_id):
        assert ends[skipped]["outcome"] == "skipped"
    assert not [e for e in logs if e["event"] in ("app.failed", "app.expiry_near")]
    # Nothing was asked of Graph about the skipped apps' applications, let alone written.
    added = sandbox.state.requests - calls_before
    assert added["graph POST /applications/{id}/addPassword"] == 1
    assert partner.app.passwords == [partner.password]


async def test_status_shows_skipped_senders_with_the_reason_and_username_sources(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    both = sandbox.add_sender(via="both")
    identity = sandbox.add_managed_identity_holder()
    listed = sandbox.add_sender(role=None, name="listed")
    allow = f"{listed.app_id}=listed@contoso.example"

    async with open_service(app_ids=allow) as service:
        rows = {r.app_id: r for r in await service.status()}

    assert rows[both.app_id].usernames == (
        (both.usernames[0], "smtp-username"),
        (both.usernames[1], "role"),
    )
    assert answers.StatusRow.of(rows[both.app_id]).body()["smtpUsernameSource"] == "smtp-username"
    assert rows[listed.app_id].usernames == (("listed@contoso.example", "allow-list"),)
    skipped = rows[identity.app_id]
    assert skipped.state == "skipped"
    assert skipped.reason is not None
    assert "managed identity" in skipped.reason
    assert answers.StatusRow.of(skipped).body()["reason"] == skipped.reason


async def test_a_skipped_app_asked_for_by_id_is_reported_skipped_not_unknown(
    sandbox: Sandbox, service: RotationService
) -> None:
    identity = sandbox.add_managed_identity_holder()

    report = await service.run(RunOptions((identity.app_id.upper(),)))

    (outcome,) = report.outcomes
    assert (outcome.app_id, outcome.outcome) == (identity.app_id, Outcome.SKIPPED)
    with pytest.raises(UnknownApps):
        await service.run(RunOptions(("0f0f0f0f-1111-4222-8333-444444444444",)))
