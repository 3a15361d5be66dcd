"""One malformed item in an answer stays one app's problem (issue 23, item 1).

Each test reproduces a row of the issue's table: five senders, and the sandbox rewrites one
item of one answer (sandbox.faults.Rewrite) while the real SDKs read it over HTTPS. The
sender the item belongs to is failed or flagged with a reason naming the field; the others
rotate (force runs) or are read as usual (status); an item that belongs to no app is
skipped and counted in the report.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotation.model import Mode, Outcome, RunOptions
from rotation.service import RotationService, UnknownApps
from sandbox.seed import Sender
from sandbox.server import Sandbox
from tests.integration.conftest import OpenService

APPS = "graph GET /applications"
PRINCIPALS = "graph GET /servicePrincipals"
VAULT_LISTING = "vault GET /secrets"
ARM = "arm GET *"  # the rewrite's match picks the one item

FORCE = RunOptions(mode=Mode.FORCE)


def five(sandbox: Sandbox) -> list[Sender]:
    return [sandbox.add_sender() for _ in range(5)]


def outcomes(report: Any) -> dict[str, Outcome]:
    return {o.app_id: o.outcome for o in report.outcomes}


def others_rotated(report: Any, senders: list[Sender], bad: Sender) -> None:
    got = outcomes(report)
    assert {got[s.app_id] for s in senders if s is not bad} == {Outcome.ROTATED}, report


@pytest.mark.parametrize(
    ("path", "value", "delete", "field"),
    [
        ("passwordCredentials.0.keyId", None, True, "passwordCredentials[0].keyId: missing"),
        ("passwordCredentials", "none", False, "passwordCredentials: should be a valid list"),
        ("passwordCredentials.0.endDateTime", "soon", False, "passwordCredentials[0].endDateTime"),
        ("passwordCredentials.0.endDateTime", None, False, "endDateTime: is null"),
    ],
)
async def test_one_unreadable_application_fails_only_its_app(
    sandbox: Sandbox,
    service: RotationService,
    path: str,
    value: object,
    delete: bool,
    field: str,
) -> None:
    senders = five(sandbox)
    bad = senders[2]
    edit = sandbox.state.faults.rewrite(
        APPS, {"appId": bad.app_id}, path, value=value, delete=delete
    )
    for options in (FORCE, RunOptions(), RunOptions(mode=Mode.FORCE, dry_run=True)):
        report = await service.run(options)
        failed = next(o for o in report.outcomes if o.app_id == bad.app_id)
        assert failed.outcome is Outcome.FAILED
        assert field in (failed.error or ""), failed.error
        others = {o.outcome for o in report.outcomes if o.app_id != bad.app_id}
        assert Outcome.FAILED not in others, report
    assert edit.edited >= 3
    assert bad.password.key_id in {p.key_id for p in bad.app.passwords}  # nothing written
    assert len(bad.app.passwords) == 1
    rows = {r.app_id: r for r in await service.status()}
    assert rows[bad.app_id].state == "unreadable"
    assert field in (rows[bad.app_id].reason or "")
    assert {rows[s.app_id].state for s in senders if s is not bad} == {"ok"}


async def test_an_unreadable_vault_listing_item_reads_that_apps_versions_instead(
    sandbox: Sandbox, service: RotationService
) -> None:
    senders = five(sandbox)
    first = await service.run()
    assert set(outcomes(first).values()) == {Outcome.ROTATED}
    bad = senders[1]
    edit = sandbox.state.faults.rewrite(
        VAULT_LISTING, {"tags.app-id": bad.app_id}, "tags", value="x"
    )
    report = await service.run(FORCE)
    assert edit.edited == 2  # the password's item and its -username companion's
    assert set(outcomes(report).values()) == {Outcome.ROTATED}, report
    rows = await service.status()
    assert {r.state for r in rows} == {"ok"}


async def test_an_unreadable_version_item_fails_only_its_app(
    sandbox: Sandbox, service: RotationService
) -> None:
    senders = five(sandbox)
    await service.run()
    bad = senders[3]
    sandbox.state.faults.rewrite(
        "vault GET /secrets/{name}/versions", {"tags.app-id": bad.app_id}, "attributes.created",
        value="yesterday",
    )  # fmt: skip
    sandbox.state.faults.rewrite(VAULT_LISTING, {"tags.app-id": bad.app_id}, "tags", value=7)
    report = await service.run(FORCE)
    failed = next(o for o in report.outcomes if o.app_id == bad.app_id)
    assert failed.outcome is Outcome.FAILED
    assert "attributes.created" in (failed.error or "")
    others_rotated(report, senders, bad)
    rows = {r.app_id: r for r in await service.status()}
    assert rows[bad.app_id].state == "unreadable"


@pytest.mark.parametrize("value", ["Contributor", None])
async def test_a_role_assignment_without_readable_properties_is_skipped_and_counted(
    sandbox: Sandbox, service: RotationService, value: object
) -> None:
    senders = five(sandbox)
    bad = senders[0]
    sandbox.state.faults.rewrite(
        ARM, {"properties.principalId": bad.principal_id}, "properties", value=value
    )
    report = await service.run(FORCE)
    assert bad.app_id not in outcomes(report)
    assert {o.outcome for o in report.outcomes} == {Outcome.ROTATED}
    assert len(report.outcomes) == 4
    (item,) = report.skipped_items
    assert item.service == "Azure Resource Manager"
    assert "role assignment" in item.reason
    assert "properties" in item.reason
    assert len(await service.status()) == 4


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("appId", "not-a-guid", "appId: is not a GUID"),
        ("appId", None, "appId"),
        ("id", None, "does not return it"),
    ],
)
async def test_an_unreadable_service_principal_is_shown_skipped_never_a_ghost(
    sandbox: Sandbox, service: RotationService, path: str, value: object, words: str
) -> None:
    senders = five(sandbox)
    bad = senders[4]
    sandbox.state.faults.rewrite(PRINCIPALS, {"appId": bad.app_id}, path, value=value)
    report = await service.run(FORCE)
    got = {o.app_id: o for o in report.outcomes}
    skipped = got[bad.principal_id.lower()]
    assert skipped.outcome is Outcome.SKIPPED
    assert words in skipped.reason, skipped.reason
    others_rotated(report, senders, bad)
    assert len(report.outcomes) == 5
    rows = {r.app_id: r for r in await service.status()}
    assert rows[bad.principal_id.lower()].state == "skipped"


async def test_a_named_run_does_not_take_a_skipped_principal_s_object_id_for_an_app_id(
    sandbox: Sandbox, service: RotationService
) -> None:
    """Review finding 12: the skipped row is keyed by the object id, which is no app id."""
    senders = five(sandbox)
    bad = senders[4]
    sandbox.state.faults.rewrite(PRINCIPALS, {"appId": bad.app_id}, "appId", value="not-a-guid")
    with pytest.raises(UnknownApps, match=bad.principal_id):
        await service.run(RunOptions((bad.principal_id,)))
    rows = {r.app_id: r for r in await service.status()}
    assert rows[bad.principal_id.lower()].state == "skipped"  # still shown in status


async def test_an_smtp_username_without_a_readable_app_id_is_skipped_and_counted(
    sandbox: Sandbox, service: RotationService
) -> None:
    senders = [sandbox.add_sender(via="smtp-username", role=None) for _ in range(3)]
    bad = senders[1]
    sandbox.state.faults.rewrite(
        ARM, {"properties.entraApplicationId": bad.app_id}, "properties.entraApplicationId",
        value="someone",
    )  # fmt: skip
    report = await service.run(RunOptions(mode=Mode.FORCE, dry_run=True))
    assert bad.app_id not in outcomes(report)
    assert len(report.outcomes) == 2
    assert [i.reason for i in report.skipped_items] == [
        "an SMTP Username: properties.entraApplicationId: is not a GUID"
    ]


async def test_an_unreadable_key_vault_reference_makes_its_site_unreachable_by_name(
    sandbox: Sandbox, open_service: OpenService
) -> None:
    """App Service's answer for one site: unusable as a whole (the reference may be the
    password's), so that site is unreachable with the field named and no app retires early
    on its word; the run goes on."""
    sender = sandbox.add_sender()
    name = f"acs-smtp-{sender.app_id}"
    site = sandbox.add_consumer_site("mailer-web", name)
    sandbox.state.faults.rewrite(
        ARM, {"properties.secretName": name}, "properties.status", value=42
    )
    async with open_service(consumers_enabled="true") as service:
        (row,) = await service.status()
        report = await service.run()
    assert row.consumers is not None
    (unreachable,) = row.consumers.unreachable
    assert site.id in unreachable
    assert "properties.status" in unreachable
    assert [o.outcome for o in report.outcomes] == [Outcome.ROTATED]


async def test_an_unreadable_role_definition_grants_nothing_and_is_counted(
    sandbox: Sandbox, service: RotationService
) -> None:
    """The role's holders are not senders through it (a role that cannot be read cannot be
    judged), the item is counted, and the run and the other role's holders go on."""
    owner = sandbox.add_sender(role="Owner")
    contributors = [sandbox.add_sender() for _ in range(2)]
    sandbox.state.faults.rewrite(
        ARM, {"properties.roleName": "Contributor"}, "properties.permissions", value="x"
    )
    report = await service.run(FORCE)
    assert outcomes(report) == {owner.app_id: Outcome.ROTATED}
    assert not {c.app_id for c in contributors} & set(outcomes(report))
    (item,) = report.skipped_items
    assert item.answer.startswith("role definition ")
    assert "Azure Resource Manager answered" in item.reason
