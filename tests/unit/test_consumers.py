"""ConsumerTracker against an in-memory fake of the WebSites port: which references are an
app's, how a confirmation is waited for, and what an unreachable site does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rotation.errors import PermissionDenied, ServiceUnavailable
from rotation.model import ConsumerReference, ManagedApp
from rotation.run.consumers import ConsumerTracker
from rotation.settings import load_settings
from tests.unit.test_settings import BASE

APP = ManagedApp("app-1", "tenant", "acs-smtp-app-1", ("user",))
OTHER = ManagedApp("app-2", "tenant", "acs-smtp-app-2", ("user2",))
SITE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/web"
SLOT = SITE + "/slots/staging"
NOW = datetime(2026, 11, 29, tzinfo=UTC)
SETTINGS = load_settings({**BASE, "ROTATION_CONSUMERS_ENABLED": "true"})  # vault "kv"


def ref(
    site: str, secret: str, active: str | None, *, vault: str = "kv", status: str = "Resolved"
) -> ConsumerReference:
    return ConsumerReference(site, "SMTP_PASSWORD", secret, status, None, active, None, vault)


class FakeSites:
    """Sites whose references change as `after_refresh` says, one read at a time."""

    def __init__(self, refs: dict[str, list[ConsumerReference]]) -> None:
        self.refs = refs
        self.refreshed: list[str] = []
        self.reads = 0
        self.after_read: Callable[[FakeSites], None] = lambda _: None
        self.broken: dict[str, Exception] = {}

    async def list_sites(self, subscription_id: str) -> list[str]:
        return [s for s in self.refs if "/slots/" not in s]

    async def list_slots(self, site_id: str) -> list[str]:
        return [s for s in self.refs if s.startswith(site_id + "/slots/")]

    async def references(self, site_id: str) -> list[ConsumerReference]:
        if site_id in self.broken:
            raise self.broken[site_id]
        self.reads += 1
        found = list(self.refs[site_id])
        self.after_read(self)
        return found

    async def refresh(self, site_id: str) -> None:
        self.refreshed.append(site_id)


def tracker(sites: FakeSites) -> ConsumerTracker:
    return ConsumerTracker(SETTINGS, sites, clock=lambda: NOW, poll_interval=0)


async def test_only_references_to_our_vault_and_the_apps_secrets_count() -> None:
    sites = FakeSites(
        {
            SITE: [
                ref(SITE, "acs-smtp-app-1", "v1"),
                ref(SITE, "acs-smtp-app-1", "v1", vault="someone-elses-vault"),
                ref(SITE, "acs-smtp-app-2", "x"),
                ref(SITE, "ACS-SMTP-APP-1-username", "u1"),
            ]
        }
    )
    scan = await tracker(sites).scan()
    check = tracker(sites).check(APP, "v1", scan)

    assert [(r.secret_name, r.vault_name) for r in check.references] == [
        ("acs-smtp-app-1", "kv"),
        ("ACS-SMTP-APP-1-username", "kv"),
    ]
    assert check.confirmed
    assert not tracker(sites).check(OTHER, "v9", scan).confirmed


async def test_confirm_refreshes_then_polls_until_the_new_version_is_resolved() -> None:
    sites = FakeSites({SITE: [ref(SITE, "acs-smtp-app-1", "v1")]})
    scan = await tracker(sites).scan()

    def site_catches_up(fake: FakeSites) -> None:
        if fake.reads >= 3:
            fake.refs[SITE] = [ref(SITE, "acs-smtp-app-1", "v2")]

    sites.after_read = site_catches_up
    check = await tracker(sites).confirm(APP, "v2", scan, timeout=5)

    assert sites.refreshed == [SITE]
    assert check.confirmed
    assert check.references[0].confirmed_at == NOW


async def test_confirm_gives_up_at_the_time_limit_and_confirms_nothing() -> None:
    sites = FakeSites({SITE: [ref(SITE, "acs-smtp-app-1", "v1")]})
    scan = await tracker(sites).scan()
    check = await tracker(sites).confirm(APP, "v2", scan, timeout=0.05)

    assert not check.confirmed
    assert check.references[0].confirmed_at is None
    assert check.references[0].active_version == "v1"


async def test_a_failed_reference_stops_the_wait_at_once() -> None:
    failed = ref(SITE, "acs-smtp-app-1", None, status="AccessToKeyVaultDenied")
    sites = FakeSites({SITE: [failed]})
    scan = await tracker(sites).scan()
    check = await tracker(sites).confirm(APP, "v2", scan, timeout=60)

    assert sites.reads == 2  # the scan's read and one after the refresh, no waiting
    assert not check.confirmed


async def test_a_site_that_cannot_be_read_is_unreachable_and_blocks_confirmation() -> None:
    sites = FakeSites({SITE: [ref(SITE, "acs-smtp-app-1", "v1")], SLOT: []})
    sites.broken[SLOT] = ServiceUnavailable("Resource Manager kept failing")
    scan = await tracker(sites).scan()
    del sites.broken[SLOT]
    sites.refs[SITE] = [ref(SITE, "acs-smtp-app-1", "v2")]
    check = await tracker(sites).confirm(APP, "v2", scan, timeout=5)

    assert check.references[0].confirmed_at == NOW
    assert check.unreachable == (f"{SLOT}: Resource Manager kept failing",)
    assert not check.confirmed


async def test_a_refresh_refused_makes_the_site_unreachable() -> None:
    sites = FakeSites({SITE: [ref(SITE, "acs-smtp-app-1", "v1")]})
    scan = await tracker(sites).scan()

    async def refuse(site_id: str) -> None:
        raise PermissionDenied("AuthorizationFailed: Microsoft.Web/sites/config/appsettings/action")

    sites.refresh = refuse  # type: ignore[method-assign]
    check = await tracker(sites).confirm(APP, "v2", scan, timeout=5)

    assert not check.confirmed
    assert "appsettings/action" in check.unreachable[0]


async def test_a_scan_never_raises_and_what_it_could_not_list_is_unreachable() -> None:
    sites = FakeSites({SITE: [ref(SITE, "acs-smtp-app-1", "v2")]})

    async def no_slots(site_id: str) -> list[str]:
        raise RuntimeError("a bug in the adapter")

    sites.list_slots = no_slots  # type: ignore[method-assign]
    scan = await tracker(sites).scan()
    check = tracker(sites).check(APP, "v2", scan)

    assert check.references[0].confirmed_at == NOW  # the site itself was read
    # Unexpected, so named by its type alone (errors.describe): its text could hold anything.
    assert check.unreachable == (f"{SITE} (slots): internal error: RuntimeError",)
    assert not check.confirmed
