"""ROTATION_SCHEDULE is held to what the Functions host's NCrontab parser accepts
(rotation/ncrontab.py names the sources): six fields with their ranges, refused by name."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from rotation import ncrontab
from rotation.errors import SettingsError
from rotation.settings import load_settings
from tests.unit.test_settings import BASE

#: Microsoft Learn, "Timer trigger for Azure Functions", NCRONTAB examples, and NCrontab's
#: own test cases (atifaziz/NCrontab, CrontabScheduleTests.cs) written with seconds.
ACCEPTED = [
    "0 */5 * * * *",
    "0 0 * * * *",
    "0 0 */2 * * *",
    "0 0 8-18 * * *",
    "0 30 9 * * *",
    "0 30 9 * * 1-5",
    "0 30 9 * Jan Mon",
    "0 0 3 * * *",
    "*/15 * * * * *",
    "5/15 0 0 1,15 * *",
    "0 0 0 1 JANUARY-mar sun,sat",
    "  0  0   3 * * *  ",  # repeated and surrounding spaces are empty entries, dropped
    "59 59 23 31 12 6",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_what_the_host_accepts_is_accepted(expression: str) -> None:
    assert len(ncrontab.parse(expression)) == 6
    assert load_settings({**BASE, "ROTATION_SCHEDULE": expression}).schedule == expression


def test_each_field_selects_its_values() -> None:
    second, minute, hour, day, month, weekday = ncrontab.parse("5/20 0-10/5 3 */10 Ma,D 1-5")
    assert second == {5, 25, 45}
    assert minute == {0, 5, 10}
    assert hour == {3}
    assert day == {1, 11, 21, 31}
    assert month == {3, 12}  # "Ma" is March, the first name it begins
    assert weekday == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("x x x x x x", "second field 'x': 'x' is not a number"),
        ("0 3 * * *", "six fields"),  # five: classic cron, which the host refuses
        ("0 0 3 * * * 2026", "six fields"),
        ("* * *", "six fields"),
        ("0\t0\t3 * * *", "six fields"),  # NCrontab splits on spaces only
        ("60 0 3 * * *", "second field '60': 60 is outside 0-59"),
        ("0 60 3 * * *", "minute field '60': 60 is outside 0-59"),
        ("0 0 24 * * *", "hour field '24': 24 is outside 0-23"),
        ("0 0 3 0 * *", "day of month field '0': 0 is outside 1-31"),
        ("0 0 3 32 * *", "day of month field '32'"),
        ("0 0 3 * 13 *", "month field '13': 13 is outside 1-12"),
        ("0 0 3 * * 7", "day of week field '7': 7 is outside 0-6"),
        ("0 0 3 * Foo *", "month field 'Foo': 'Foo' is not a number or a name (Jan,"),
        ("0 0 3 * * Mx", "day of week field 'Mx'"),
        ("0 0 22-2 * * *", "the range runs from 22 down to 2"),
        ("0 */0 * * * *", "the step '0' must be a whole number of 1 or more"),
        ("0 */x * * * *", "the step 'x'"),
        ("0 */ * * * *", "the step ''"),
        ("0 1,,2 * * * *", "an empty item in a list"),
        ("0 ,1 * * * *", "an empty item in a list"),
        ("0 -5 * * * *", "a value is missing"),
        ("0 5- * * * *", "a value is missing"),
        ("0 +5 * * * *", "'+5' is not a number"),
        ("0 \uff15 * * * *", "is not a number"),  # a full-width digit: .NET's int.Parse refuses it
        ("%ROTATION_SCHEDULE%", "six fields"),  # the host resolves %...% in the binding only
        ("00:05:00", "six fields"),  # a TimeSpan: App Service plans only, not Flex Consumption
    ],
)
def test_what_the_host_refuses_is_refused_saying_which_field(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ncrontab.parse(expression)

    with pytest.raises(SettingsError) as refused:
        load_settings({**BASE, "ROTATION_SCHEDULE": expression})
    assert str(refused.value).startswith("invalid settings: ROTATION_SCHEDULE: ")
    assert message in str(refused.value)


AFTER = datetime(2026, 12, 1, 12, tzinfo=UTC)  # a Tuesday
UNTIL = datetime(2026, 12, 10, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "times"),
    [
        ("0 0 3 * * *", 9),  # 2 December to 10 December, each at 03:00
        ("0 0 3 * * Mon", 1),  # 7 December
        ("0 0 3 8 * Mon", 0),  # NCrontab: the 8th AND a Monday (the 8th is a Tuesday)
        ("0 0 3 8 * Tue", 1),
        ("0 0 12 1 * *", 0),  # 12:00 on the 1st is the start itself, which does not count
        ("0 0 */6 * * *", 34),  # 18:00 on the 1st, 4 a day for 8 days, 00:00 on the 10th
        ("0 0 3 31 2 *", 0),  # never
    ],
)
def test_the_times_a_schedule_fired_are_counted(expression: str, times: int) -> None:
    assert ncrontab.fired(expression, AFTER, UNTIL, at_most=100) == times


def test_counting_stops_at_the_cap() -> None:
    assert ncrontab.fired("* * * * * *", AFTER, UNTIL, at_most=7) == 7
