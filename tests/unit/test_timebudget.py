"""The timer run's budget from host.json's functionTimeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rotation.errors import SettingsError
from rotation.timebudget import (
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    function_timeout_seconds,
    load_timer_budget,
    timer_budget_seconds,
)


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
