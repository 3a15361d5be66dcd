"""The sandbox's Microsoft.Web routes, driven by the product's own ARM pipeline client:
sites and slots, ApiKVReference in Azure's shape, the 24 h cache on the sandbox clock, a
refresh that resolves through the sandbox's Key Vault, and RBAC on each call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from azure.identity.aio import ClientSecretCredential

from rotation.azure.app_service import WebSiteReader
from rotation.azure.trust import TrustedTransport
from rotation.errors import NotFound, PermissionDenied
from rotation.model import UNREPORTED
from sandbox import web_api
from sandbox.server import Sandbox
from sandbox.state import SandboxState, SecretVersion

FAST = {"retry_total": 0}
SECRET = "acs-smtp-consumer-test"


def put_version(state: SandboxState, name: str, value: str) -> SecretVersion:
    """A new version of a secret, as a SetSecret would leave it."""
    now = state.clock.now()
    version = SecretVersion(name, uuid.uuid4().hex, value, None, {}, True, None, None, now, now)
    state.vault.setdefault(name.lower(), []).append(version)
    return version


@pytest.fixture
async def reader(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> AsyncIterator[WebSiteReader]:
    transport = TrustedTransport(sandbox.client_ssl())
    web = WebSiteReader(credential, sandbox.arm_url, {"transport": transport}, retry=FAST)
    yield web
    await web.close()


async def test_sites_and_slots_are_listed_by_subscription(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    web = sandbox.add_consumer_site("mailer-web", SECRET)
    slot = sandbox.add_consumer_site("mailer-web", SECRET, slot="staging")
    func = sandbox.add_consumer_site("mailer-func", SECRET, kind="functionapp")
    assert await reader.list_sites(sandbox.subscription_id) == [func.id, web.id]
    assert await reader.list_slots(web.id) == [slot.id]
    assert await reader.list_slots(func.id) == []


async def test_both_reference_forms_resolve_and_plain_settings_are_not_listed(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    first = put_version(sandbox.state, SECRET, "first-password")
    put_version(sandbox.state, SECRET + "-username", "sender@example")
    for form in ("uri", "name"):
        site = sandbox.add_consumer_site(f"site-{form}", SECRET, form=form)
        refs = {r.setting: r for r in await reader.references(site.id)}
        assert set(refs) == {"SMTP_PASSWORD", "SMTP_USERNAME"}  # SMTP_HOST is plain
        password = refs["SMTP_PASSWORD"]
        assert password.status == "Resolved"
        assert password.vault_name == sandbox.state.vault_name
        assert password.secret_name == SECRET
        assert password.active_version == first.version
        assert password.pinned_version is None
        assert password.details == "Reference has been successfully resolved."


async def test_the_site_keeps_its_cached_version_for_24_hours_unless_refreshed(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    first = put_version(sandbox.state, SECRET, "first-password")
    cached = sandbox.add_consumer_site("cached", SECRET)
    refreshed = sandbox.add_consumer_site("refreshed", SECRET)
    second = put_version(sandbox.state, SECRET, "second-password")

    async def active(site_id: str) -> str | None:
        refs = await reader.references(site_id)
        return next(r.active_version for r in refs if r.setting == "SMTP_PASSWORD")

    await reader.refresh(refreshed.id)
    assert await active(refreshed.id) == second.version
    sandbox.state.clock.advance(timedelta(hours=23, minutes=59))
    assert await active(cached.id) == first.version
    assert (
        cached.value(
            "SMTP_PASSWORD",
            sandbox.state.vault,
            sandbox.state.vault_name,
            sandbox.state.clock.now(),
        )
        == "first-password"
    )
    sandbox.state.clock.advance(timedelta(minutes=1))
    assert await active(cached.id) == second.version


async def test_failures_carry_azure_statuses_and_the_sites_details(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    put_version(sandbox.state, SECRET, "first-password")
    missing = sandbox.add_consumer_site("missing", "no-such-secret")
    pinned_gone = sandbox.add_consumer_site("pinned", SECRET, version="0" * 32)
    denied = sandbox.add_consumer_site("denied", SECRET)
    denied.vault_access = False
    await reader.refresh(denied.id)
    statuses = {
        site.name: {r.setting: r.status for r in await reader.references(site.id)}
        for site in (missing, pinned_gone, denied)
    }
    assert statuses["missing"]["SMTP_PASSWORD"] == "SecretNotFound"
    assert statuses["pinned"]["SMTP_PASSWORD"] == "SecretVersionNotFound"
    assert statuses["denied"]["SMTP_PASSWORD"] == "AccessToKeyVaultDenied"


async def test_a_site_may_answer_as_microsofts_published_example(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    """The spec's example of the answer has only secretName, secretVersion and vaultName:
    no status, no activeVersion, no name. The reader records what is missing as such."""
    state = sandbox.state
    first = put_version(state, SECRET, "first-password")
    put_version(state, SECRET + "-username", "sender@example")
    site = sandbox.add_consumer_site("terse", SECRET)
    pinned = sandbox.add_consumer_site("terse-pinned", SECRET, version=first.version)
    for each in (site, pinned):
        each.reference_fields = "published-example"
    await reader.refresh(site.id)

    found = site.resolutions(state.vault, state.vault_name, state.clock.now())
    body = web_api._reference_json(site, "SMTP_PASSWORD", found["SMTP_PASSWORD"])
    assert set(body) == {"id", "properties"}
    assert body["properties"] == {"secretName": SECRET, "vaultName": state.vault_name}
    refs = {r.setting: r for r in await reader.references(site.id)}
    assert set(refs) == {"SMTP_PASSWORD", "SMTP_USERNAME"}  # named by the id's last segment
    password = refs["SMTP_PASSWORD"]
    assert (password.secret_name, password.vault_name) == (SECRET, state.vault_name)
    assert (password.status, password.active_version, password.details) == (UNREPORTED, None, None)
    assert password.pinned_version is None
    [held] = [r for r in await reader.references(pinned.id) if r.setting == "SMTP_PASSWORD"]
    assert held.pinned_version == first.version  # secretVersion: what the reference names


async def test_reader_may_read_references_but_not_refresh_them(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    site = sandbox.add_consumer_site("mailer-web", SECRET, grant_rotator=False)
    assert len(await reader.references(site.id)) == 2  # Reader's */read covers the GET
    with pytest.raises(PermissionDenied, match=r"Microsoft\.Web/sites/config/appsettings/action"):
        await reader.refresh(site.id)
    slot = sandbox.add_consumer_site("mailer-web", SECRET, slot="blue", grant_rotator=False)
    with pytest.raises(PermissionDenied, match="sites/slots/config/appsettings/action"):
        await reader.refresh(slot.id)


async def test_a_site_that_does_not_exist_is_not_found(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    site = sandbox.add_consumer_site("mailer-web", SECRET)
    with pytest.raises(NotFound, match="ResourceNotFound"):
        await reader.references(site.id.replace("mailer-web", "gone"))


async def test_connection_string_references_are_listed_apart_and_wait_for_their_24_hours(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    first = put_version(sandbox.state, SECRET, "first-password")
    put_version(sandbox.state, SECRET + "-username", "sender@example")
    site = sandbox.add_consumer_site("mailer-cs", SECRET, connection_strings=True)
    slot = sandbox.add_consumer_site("mailer-cs", SECRET, slot="staging", connection_strings=True)
    second = put_version(sandbox.state, SECRET, "second-password")

    async def passwords() -> list[str | None]:
        active: list[str | None] = []
        for each in (site, slot):
            refs = {r.setting: r for r in await reader.references(each.id)}
            assert set(refs) == {"SMTP_PASSWORD", "SMTP_USERNAME"}  # SMTP_HOST: plain setting
            assert {r.setting_type for r in refs.values()} == {"connectionString"}
            active.append(refs["SMTP_PASSWORD"].active_version)
        return active

    for each in (site, slot):
        await reader.refresh(each.id)  # the documented refresh names app settings only
    assert await passwords() == [first.version, first.version]
    sandbox.state.clock.advance(timedelta(hours=24))
    assert await passwords() == [second.version, second.version]
    assert any("configreferences/connectionstrings" in key for key in sandbox.state.requests)


async def test_reading_connection_string_references_needs_its_own_action(
    sandbox: Sandbox, reader: WebSiteReader
) -> None:
    site = sandbox.add_consumer_site("mailer-web", SECRET, grant_rotator=False)
    slot = sandbox.add_consumer_site("mailer-web", SECRET, slot="blue", grant_rotator=False)
    state = sandbox.state
    state.role_assignments[:] = [
        a for a in state.role_assignments if a.principal_id != sandbox.rotator.sp.object_id
    ]
    app_settings_only = state.add_role_definition(
        "app settings references only",
        [
            "Microsoft.Web/sites/config/appsettings/read",
            "Microsoft.Web/sites/slots/config/appsettings/read",
        ],
    )
    state.assign_role(
        f"/subscriptions/{sandbox.subscription_id}", sandbox.rotator.sp, app_settings_only
    )
    with pytest.raises(
        PermissionDenied,
        match=r"connection string .* 'Microsoft\.Web/sites/config/connectionstrings/read'",
    ):
        await reader.references(site.id)
    with pytest.raises(PermissionDenied, match="sites/slots/config/connectionstrings/read"):
        await reader.references(slot.id)
