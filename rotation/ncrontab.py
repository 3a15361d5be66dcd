"""NCRONTAB: the schedule syntax the Functions host reads for a timer trigger.

The timer's schedule is ``%ROTATION_SCHEDULE%``, so the host takes it from that app setting
and parses it with NCrontab's ``CrontabSchedule.TryParse`` with ``IncludingSeconds = true``
(azure-webjobs-sdk-extensions, Timers/Scheduling/CronSchedule.cs). A value it cannot parse
leaves the timer without a schedule, and nothing rotates; checked here at start-up instead,
the rotator refuses it by name (503 on every route, CLI exit 2).

What NCrontab accepts (atifaziz/NCrontab, CrontabSchedule.cs, CrontabFieldImpl.cs,
CrontabField.cs):

- exactly six fields, separated by spaces (only spaces: a tab is not a separator):
  second 0-59, minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week 0-6
  (Sunday is 0; 7 is refused);
- each field a comma-separated list of ``*``, a value, or a range ``a-b``, each optionally
  stepped with ``/n``; a value stepped (``5/15``) runs from it to the field's maximum;
- months and days of week may be named: any prefix of the English name, in any case
  (``Jan``, ``March``, ``mon``; the first name it begins wins).

Two readings of NCrontab surprise more than they help, so they are refused here: a step
of 0 (NCrontab takes ``*/0`` as every value) and a range that runs high to low (NCrontab
swaps ``22-2`` into ``2-22``, every hour but the night it reads like).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_NUMBER = re.compile(r"[0-9]+")
MONTHS: tuple[str, ...] = ("January", "February", "March", "April", "May", "June", "July")
MONTHS += ("August", "September", "October", "November", "December")
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def value(self, text: str) -> int:
        """One value of this field: a number in range, or (months, days) a name's prefix."""
        if not text:
            raise ValueError("a value is missing")
        if _NUMBER.fullmatch(text):
            number = int(text)
            if not self.low <= number <= self.high:
                raise ValueError(f"{number} is outside {self.low}-{self.high}")
            return number
        for index, name in enumerate(self.names):
            if name.lower().startswith(text.lower()):
                return self.low + index
        known = f" or a name ({', '.join(n[:3] for n in self.names)})" if self.names else ""
        raise ValueError(f"{text!r} is not a number{known}")


FIELDS = (
    Field("second", 0, 59),
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day of month", 1, 31),
    Field("month", 1, 12, MONTHS),
    Field("day of week", 0, 6, DAYS),
)


def parse(expression: str) -> tuple[frozenset[int], ...]:
    """The values each of the six fields selects, or ValueError saying which field is wrong
    and why."""
    parts = [part for part in expression.split(" ") if part]
    if len(parts) != len(FIELDS):
        raise ValueError(
            f"must be NCRONTAB with six fields separated by spaces (second minute hour "
            f"day-of-month month day-of-week, e.g. '0 0 3 * * *'), not {len(parts)}"
        )
    selected = []
    for field, part in zip(FIELDS, parts, strict=True):
        try:
            selected.append(_field(field, part))
        except ValueError as exc:
            raise ValueError(f"NCRONTAB {field.name} field {part!r}: {exc}") from None
    return tuple(selected)


def _field(field: Field, text: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValueError("an empty item in a list")
        values |= _item(field, item)
    return frozenset(values)


def _item(field: Field, item: str) -> set[int]:
    """``*``, ``v``, ``a-b``, each optionally ``/step``."""
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _NUMBER.fullmatch(step_text) or int(step_text) < 1:
            raise ValueError(f"the step {step_text!r} must be a whole number of 1 or more")
        step = int(step_text)
    if span == "*":
        low, high = field.low, field.high
    elif "-" in span:
        first, _, last = span.partition("-")
        low, high = field.value(first), field.value(last)
        if low > high:
            raise ValueError(f"the range runs from {low} down to {high}; write it low to high")
    else:
        low = field.value(span)
        high = field.high if slash else low
    return set(range(low, high + 1, step))


def fired(expression: str, after: datetime, until: datetime, *, at_most: int) -> int:
    """How many times the schedule fired in (after, until], counted up to `at_most` (UTC).

    NCrontab fires on a day only when both its day of month and its day of week match
    (CrontabSchedule.TryGetNextOccurrence), unlike classic cron's either-or."""
    second, minute, hour, day, month, weekday = parse(expression)
    count, date = 0, after.date()
    while date <= until.date() and count < at_most:
        if date.day in day and date.month in month and (date.weekday() + 1) % 7 in weekday:
            for h, m, s in itertools.product(sorted(hour), sorted(minute), sorted(second)):
                moment = datetime(date.year, date.month, date.day, h, m, s, tzinfo=UTC)
                count += after < moment <= until
                if count >= at_most or moment > until:
                    break
        date += timedelta(days=1)
    return count
