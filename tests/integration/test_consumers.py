"""Consumer sites (App Service / Functions Key Vault references) confirmed before the old
secret goes: the real RotationService against the sandbox's Microsoft.Web routes."""

from __future__ import annotations

from datetime import timedelta

from rotation.model import Outcome
from sandbox.server import Sandbox
from tests.integration.conftest import OpenService


def secret_name(app_id: str) -> str:
    return f"acs-smtp-{app_id.lower()}"


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
    assert check is not None and check.confirmed
    live = sandbox.state.live_secret(name)
    assert live is not None and check.version == live.version
    sites = {r.site_id for r in check.password_references}
    assert sites == {web.id, slot.id, functions.id}
    assert all(r.active_version == live.version and r.confirmed_at for r in check.references
               if r.secret_name == name)
    assert outcome.removed_key_ids == [original]
    assert report.as_dict()["apps"][0]["consumers"]["confirmed"] is True  # type: ignore[index]
