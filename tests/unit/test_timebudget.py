"""The timer run's budget from host.json's functionTimeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rotation.errors import SettingsError
from rotation.settings import load_settings
from rotation.timebudget import (
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    function_timeout_seconds,
    load_timer_budget,
    require_schedule,
    timer_budget,
    timer_budget_seconds,
    timespan,
)
from tests.unit.test_settings import BASE


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("00:30:00", 1800.0),
        ("00:00:08", 8.0),
        ("1.02:00:00", 93600.0),
        ("00:05:30.5", 330.5),
        ("-1", None),
    ],
)
def test_function_timeout_reads_timespans_and_unbounded(value: str, seconds: float | None) -> None:
    assert function_timeout_seconds({"functionTimeout": value}) == seconds


def test_a_missing_timeout_is_flex_consumptions_default() -> None:
    assert function_timeout_seconds({}) == DEFAULT_FUNCTION_TIMEOUT_SECONDS == 1800.0


@pytest.mark.parametrize("value", ["30", "00:30", "half an hour", "00:00:00", "00:61:00x"])
def test_a_malformed_timeout_stops_start_up_naming_it(value: str) -> None:
    with pytest.raises(SettingsError, match="functionTimeout"):
        function_timeout_seconds({"functionTimeout": value})


def test_the_budget_keeps_a_tenth_back_and_unbounded_has_none() -> None:
    assert timer_budget_seconds(1800.0) == pytest.approx(1620.0)
    assert timer_budget_seconds(None) is None


def test_the_repositorys_host_json_gives_27_minutes() -> None:
    assert load_timer_budget(Path("host.json")) == pytest.approx(27 * 60)


def test_an_unreadable_host_json_is_a_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text("[1, 2]")
    with pytest.raises(SettingsError, match="not a JSON object"):
        load_timer_budget(path)
    path.write_text(json.dumps({"functionTimeout": "00:02:00"}))
    assert load_timer_budget(path) == pytest.approx(108.0)


def host_json(tmp_path: Path, timeout: str) -> Path:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "functionTimeout": timeout}))
    return path


def test_a_timeout_too_short_for_one_app_is_refused_naming_both_values_and_the_fix(
    tmp_path: Path,
) -> None:
    """Issue 27: 00:05:00 leaves 270 s; one app may need 300 s of verification + 60 s."""
    with pytest.raises(SettingsError) as caught:
        timer_budget(host_json(tmp_path, "00:05:00"), load_settings(BASE))
    assert str(caught.value) == (
        "host.json functionTimeout 00:05:00 leaves the timer run 270 s (90%), less than one "
        "app's worst case, 360 s (ROTATION_VERIFY_TIMEOUT_SECONDS 300 s + 60 s for the other "
        "steps): every timer run would start no app. Fix: set functionTimeout in host.json to "
        "at least 00:06:40 and deploy again, or set ROTATION_VERIFY_TIMEOUT_SECONDS to at most "
        "210"
    )


def test_the_shortest_timeout_it_names_is_accepted(tmp_path: Path) -> None:
    assert timer_budget(host_json(tmp_path, "00:06:40"), load_settings(BASE)) == 360
    lowered = load_settings({**BASE, "ROTATION_VERIFY_TIMEOUT_SECONDS": "210"})
    assert timer_budget(host_json(tmp_path, "00:05:00"), lowered) == 270
    assert timer_budget(host_json(tmp_path, "-1"), load_settings(BASE)) is None


def test_consumer_confirmation_counts_in_the_worst_case(tmp_path: Path) -> None:
    settings = load_settings({**BASE, "ROTATION_CONSUMERS_ENABLED": "true"})
    with pytest.raises(SettingsError) as caught:
        timer_budget(host_json(tmp_path, "00:06:40"), settings)
    message = str(caught.value)
    assert "480 s (ROTATION_VERIFY_TIMEOUT_SECONDS 300 s + " in message
    assert "ROTATION_CONSUMER_CONFIRM_TIMEOUT_SECONDS 120 s + 60 s" in message
    assert "at least 00:08:54" in message
    assert "at most 180" in message


def test_no_verify_timeout_is_offered_when_none_would_fit(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        timer_budget(host_json(tmp_path, "00:01:00"), load_settings(BASE))
    assert "at least 00:06:40 and deploy again" in str(caught.value)
    assert "ROTATION_VERIFY_TIMEOUT_SECONDS to at most" not in str(caught.value)


def test_the_schedule_must_be_set_in_azure_only() -> None:
    require_schedule(load_settings(BASE), in_azure=False)
    require_schedule(load_settings({**BASE, "ROTATION_SCHEDULE": "0 0 3 * * *"}), in_azure=True)
    with pytest.raises(SettingsError, match="ROTATION_SCHEDULE is not set: the Functions host"):
        require_schedule(load_settings(BASE), in_azure=True)


@pytest.mark.parametrize(
    ("seconds", "text"), [(400, "00:06:40"), (1800, "00:30:00"), (93600, "1.02:00:00")]
)
def test_timespans_are_written_as_host_json_reads_them(seconds: float, text: str) -> None:
    assert timespan(seconds) == text
    assert function_timeout_seconds({"functionTimeout": text}) == seconds
