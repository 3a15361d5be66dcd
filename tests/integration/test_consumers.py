"""Consumer sites (App Service / Functions Key Vault references) confirmed before the old
secret goes: the real RotationService against the sandbox's Microsoft.Web routes."""

from __future__ import annotations

import time
from datetime import timedelta

from rotation import answers
from rotation.model import UNREPORTED, Mode, Outcome, RunOptions
from sandbox.server import Sandbox
from tests.integration.conftest import OpenService


def secret_name(app_id: str) -> str:
    return f"acs-smtp-{app_id.lower()}"


async def held_by_one_unreachable_site(open_service: OpenService) -> str:
    """Runs once with every app declared fully covered; the one app rotates but keeps its
    old secrets because one consumer site was unreachable: why it was."""
    async with open_service(consumers_enabled="true", consumers_fully_covered="all") as service:
        report = await service.run()
    [outcome] = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert outcome.removed_key_ids == []
    assert outcome.consumers is not None
    assert not outcome.consumers.confirmed
    [problem] = outcome.consumers.unreachable
    return problem


async def test_consumer_sites_confirm_and_a_fully_covered_app_retires_at_once(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    name = secret_name(sender.client_id)
    web = sandbox.add_consumer_site("mailer-web", name, form="uri")
    slot = sandbox.add_consumer_site("mailer-web", name, form="name", slot="staging")
    functions = sandbox.add_consumer_site("mailer-func", name, form="name", kind="functionapp")
    original = sender.password.key_id
    async with open_service(
        consumers_enabled="true", consumers_fully_covered=sender.client_id
    ) as service:
        report = await service.run()
    [outcome] = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    check = outcome.consumers
    assert check is not None
    assert check.confirmed
    live = sandbox.state.live_secret(name)
    assert live is not None
    assert check.version == live.version
    sites = {r.site_id for r in check.password_references}
    assert sites == {web.id, slot.id, functions.id}
    assert all(
        r.active_version == live.version and r.confirmed_at
        for r in check.references
        if r.secret_name == name
    )
    assert outcome.removed_key_ids == [original]
    assert answers.RunReport.of(report).body()["apps"][0]["consumers"]["confirmed"] is True


async def test_an_app_not_declared_fully_covered_shows_confirmations_but_keeps_grace(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    sandbox.add_consumer_site("mailer-web", secret_name(sender.client_id))
    async with open_service(consumers_enabled="true") as service:
        report = await service.run()
    [outcome] = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert outcome.consumers is not None
    assert outcome.consumers.confirmed
    assert outcome.removed_key_ids == []
    assert len(sender.app.passwords) == 2


async def test_a_reference_that_does_not_resolve_holds_retirement_and_shows_its_details(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    name = secret_name(sender.client_id)
    sandbox.add_consumer_site("mailer-web", name)
    denied = sandbox.add_consumer_site("mailer-jobs", name)
    denied.vault_access = False
    async with open_service(consumers_enabled="true", consumers_fully_covered="all") as service:
        report = await service.run()
        rows = await service.status()
    [outcome] = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert outcome.removed_key_ids == []
    assert outcome.consumers is not None
    assert not outcome.consumers.confirmed
    problems = [r for r in outcome.consumers.references if r.problem]
    assert {r.site_id for r in problems} == {denied.id}
    assert all(r.status == "AccessToKeyVaultDenied" for r in problems)
    assert "Key Vault Secrets User" in (problems[0].problem or "")
    [row] = rows
    shown = answers.StatusRow.of(row).body()["consumers"]
    assert isinstance(shown, dict)
    assert "AccessToKeyVaultDenied" in str(shown["references"])


async def test_sites_answering_as_the_published_example_keep_the_grace_and_say_why(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    """Microsoft's published example of the configreferences answer has no status and no
    activeVersion: nothing is confirmed, the old secret keeps its grace, the report says
    why, and the run does not wait out the confirmation time for an answer that never
    comes."""
    sender = sandbox.add_sender()
    name = secret_name(sender.client_id)
    site = sandbox.add_consumer_site("mailer-web", name)
    site.reference_fields = "published-example"
    async with open_service(
        consumers_enabled="true",
        consumers_fully_covered="all",
        consumer_confirm_timeout_seconds="60",
    ) as service:
        started = time.monotonic()
        report = await service.run()
        took = time.monotonic() - started
        rows = await service.status()
    [outcome] = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert outcome.removed_key_ids == []
    assert len(sender.app.passwords) == 2
    check = outcome.consumers
    assert check is not None
    assert not check.confirmed
    assert {r.status for r in check.references} == {UNREPORTED}
    assert {r.active_version for r in check.references} == {None}
    shown = answers.RunReport.of(report).body()["apps"][0]["consumers"]
    problems = {r["setting"]: r["problem"] for r in shown["references"]}
    assert set(problems) == {"SMTP_PASSWORD", "SMTP_USERNAME"}
    assert all("no status" in p and "grace period is kept" in p for p in problems.values())
    status = answers.StatusRow.of(rows[0]).body()["consumers"]
    assert "no status" in str(status)
    assert took < 30, f"the run waited {took:.0f} s for a status that never comes"


async def test_a_pinned_reference_is_reported_and_keeps_the_grace(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    name = secret_name(sender.client_id)
    async with open_service(consumers_enabled="true", consumers_fully_covered="all") as service:
        await service.run()  # the first password; no consumer yet
        first = sandbox.state.live_secret(name)
        assert first is not None
        pinned = sandbox.add_consumer_site("mailer-web", name, version=first.version)
        report = await service.run(RunOptions(mode=Mode.FORCE))
    [outcome] = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert outcome.removed_key_ids == []
    assert outcome.consumers is not None
    [password_ref] = outcome.consumers.password_references
    assert password_ref.site_id == pinned.id
    assert password_ref.pinned_version == first.version
    assert "pinned" in (password_ref.problem or "")


async def test_an_unreachable_consumer_site_never_causes_an_early_retirement(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    name = secret_name(sender.client_id)
    good = sandbox.add_consumer_site("mailer-web", name)
    gone = good.id.replace("mailer-web", "mailer-deleted")
    async with open_service(
        consumers_enabled="true",
        consumers_fully_covered="all",
        consumer_sites=f"{good.id},{gone}",
    ) as service:
        report = await service.run()
    [outcome] = report.outcomes
    assert outcome.outcome is Outcome.ROTATED
    assert outcome.removed_key_ids == []
    check = outcome.consumers
    assert check is not None
    assert not check.confirmed
    assert all(r.confirmed_at for r in check.references)  # the reachable one did confirm
    assert len(check.unreachable) == 1
    assert "mailer-deleted" in check.unreachable[0]


async def test_a_site_the_rotator_may_not_refresh_is_unreachable_and_named_in_the_report(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    sandbox.add_consumer_site("mailer-web", secret_name(sender.client_id), grant_rotator=False)
    problem = await held_by_one_unreachable_site(open_service)
    assert "Microsoft.Web/sites/config/appsettings/action" in problem


async def test_a_later_run_retires_early_once_the_sites_own_24h_refetch_confirms(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    original = sender.password.key_id
    site = sandbox.add_consumer_site("mailer-web", secret_name(sender.client_id))
    site.vault_access = False  # fixed by the operator after the rotation
    async with open_service(consumers_enabled="true", consumers_fully_covered="all") as service:
        first = await service.run()
        assert first.outcomes[0].removed_key_ids == []
        site.vault_access = True
        sandbox.state.clock.advance(timedelta(hours=24))  # App Service refetches; grace is 48 h
        second = await service.run()
    [outcome] = second.outcomes
    assert outcome.outcome is Outcome.RETIRED
    assert outcome.removed_key_ids == [original]
    assert outcome.consumers is not None
    assert outcome.consumers.confirmed


async def test_a_site_reading_the_password_from_a_connection_string_holds_retirement_until_it_resolves_it(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    name = secret_name(sender.client_id)
    async with open_service(
        consumers_enabled="true", consumers_fully_covered="all", consumer_confirm_timeout_seconds=1
    ) as service:
        await service.run()  # the first password in Key Vault; no consumer yet
        before = sandbox.state.live_secret(name)
        assert before is not None
        old = sorted(p.key_id for p in sender.app.passwords)
        sandbox.add_consumer_site("mailer-web", name)  # app settings: confirms on the refresh
        legacy = sandbox.add_consumer_site("mailer-legacy", name, connection_strings=True)
        first = await service.run(RunOptions(mode=Mode.FORCE))
        [held] = first.outcomes
        assert held.outcome is Outcome.ROTATED
        assert held.removed_key_ids == []  # the connection string still resolves the old one
        assert held.consumers is not None
        assert not held.consumers.confirmed
        [legacy_ref] = [r for r in held.consumers.password_references if r.site_id == legacy.id]
        assert legacy_ref.setting == "SMTP_PASSWORD"
        assert legacy_ref.setting_type == "connectionString"
        assert legacy_ref.active_version == before.version
        assert legacy_ref.confirmed_at is None
        shown = answers.RunReport.of(first).body()["apps"][0]["consumers"]["references"]
        assert {"site": legacy.id, "settingType": "connectionString"}.items() <= next(
            r for r in shown if r["site"] == legacy.id and r["setting"] == "SMTP_PASSWORD"
        ).items()
        sandbox.state.clock.advance(timedelta(hours=24))  # its own refetch; grace is 48 h
        second = await service.run()
    [outcome] = second.outcomes
    assert outcome.outcome is Outcome.RETIRED
    assert sorted(outcome.removed_key_ids) == old
    assert outcome.consumers is not None
    assert outcome.consumers.confirmed
    live = sandbox.state.live_secret(name)
    assert live is not None
    assert {r.active_version for r in outcome.consumers.password_references} == {live.version}


async def test_a_site_whose_connection_strings_cannot_be_read_holds_retirement(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    site = sandbox.add_consumer_site(
        "mailer-web", secret_name(sender.client_id), grant_rotator=False
    )
    state, rotator = sandbox.state, sandbox.rotator.sp
    # The rotator's Reader, less the connection strings read; the refresh on the site.
    state.role_assignments[:] = [
        a for a in state.role_assignments if a.principal_id != rotator.object_id
    ]
    reader = state.add_role_definition(
        "Reader but connection strings",
        ["*/read"],
        ["Microsoft.Web/sites/config/connectionstrings/read"],
    )
    state.assign_role(f"/subscriptions/{sandbox.subscription_id}", rotator, reader)
    refresh = state.add_role_definition(
        "refresh", ["Microsoft.Web/sites/config/appsettings/action"]
    )
    state.assign_role(site.id, rotator, refresh)
    problem = await held_by_one_unreachable_site(open_service)
    assert problem.startswith(site.id)
    assert "Microsoft.Web/sites/config/connectionstrings/read" in problem


async def test_consumer_tracking_is_off_unless_enabled(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    sender = sandbox.add_sender()
    sandbox.add_consumer_site("mailer-web", secret_name(sender.client_id))
    async with open_service(consumers_fully_covered="all") as service:
        report = await service.run()
    assert report.outcomes[0].consumers is None
    assert report.outcomes[0].removed_key_ids == []
    assert not any(k.startswith("arm") and "Microsoft.Web" in k for k in sandbox.state.requests)
