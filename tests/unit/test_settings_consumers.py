"""The consumer settings: opt-in, site ids checked, the fully covered list, clear errors."""

from __future__ import annotations

import pytest

from rotation.errors import SettingsError
from rotation.settings import load_settings
from tests.unit.test_settings import BASE

APP = "11111111-2222-3333-4444-555555555555"
SITE = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.Web/sites/mailer"
)


def test_consumers_are_off_and_nothing_is_fully_covered_by_default() -> None:
    settings = load_settings(BASE)
    assert settings.consumers_enabled is False
    assert settings.run_config().covers(APP) is False
    assert settings.consumer_confirm_timeout_seconds == 120


def test_sites_slots_and_the_covered_apps_are_read_from_comma_lists() -> None:
    settings = load_settings(
        {
            **BASE,
            "ROTATION_CONSUMERS_ENABLED": "true",
            "ROTATION_CONSUMER_SITES": f"{SITE}, {SITE}/slots/staging",
            "ROTATION_CONSUMERS_FULLY_COVERED": APP.upper(),
        }
    )
    assert settings.consumer_sites == [SITE, f"{SITE}/slots/staging"]
    assert settings.run_config().covers(APP)
    assert not settings.run_config().covers("99999999-2222-3333-4444-555555555555")


def test_all_covers_every_app() -> None:
    settings = load_settings({**BASE, "ROTATION_CONSUMERS_FULLY_COVERED": "All"})
    assert settings.run_config().covers(APP)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ROTATION_CONSUMER_SITES", "/subscriptions/x/sites/y", "ROTATION_CONSUMER_SITES"),
        ("ROTATION_CONSUMERS_FULLY_COVERED", "all,someone", "is not a GUID"),
        ("ROTATION_CONSUMER_CONFIRM_TIMEOUT_SECONDS", "0", "ROTATION_CONSUMER_CONFIRM_TIMEOUT"),
        ("ROTATION_CONSUMERS_ENABLED", "perhaps", "ROTATION_CONSUMERS_ENABLED"),
    ],
)
def test_bad_consumer_settings_stop_start_up_naming_the_setting(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**BASE, name: value})


def test_consumers_need_somewhere_to_look_for_sites() -> None:
    environ = {
        **{k: v for k, v in BASE.items() if k != "ROTATION_SUBSCRIPTION_IDS"},
        "ROTATION_APP_IDS": APP,
        "ROTATION_CONSUMERS_ENABLED": "true",
    }
    with pytest.raises(SettingsError, match="ROTATION_CONSUMER_SITES"):
        load_settings(environ)
    assert load_settings({**environ, "ROTATION_CONSUMER_SITES": SITE}).consumers_enabled


def test_the_vault_name_is_the_first_label_of_its_host() -> None:
    settings = load_settings({**BASE, "ROTATION_KEY_VAULT_URL": "https://KV-Mail.vault.azure.net/"})
    assert settings.key_vault_name == "kv-mail"
