"""The timer run's time budget, derived from host.json's ``functionTimeout``.

The Functions host kills an invocation that outlives ``functionTimeout`` (Microsoft Learn,
"Function app timeout duration": Flex Consumption defaults to 30 minutes, ``-1`` means
unbounded). A killed run is safe (I1-I8 hold) but wasteful and alarming, so the timer run
gets a budget a little shorter than the timeout: the engine starts an app only while its
whole time still fits, lets the apps under way finish, and reports the rest as unfinished
for the next scheduled run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from rotation.errors import SettingsError

#: What the host allows when host.json names no timeout (Flex Consumption's default).
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 30 * 60.0
#: Share of the timeout kept back for what happens outside the engine's clock: the host
#: starting the invocation, discovery before the run, the report after it.
SAFETY_FRACTION = 0.1
# TimeSpan as host.json writes it: [d.]hh:mm:ss[.fffffff]
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")


def function_timeout_seconds(host: Mapping[str, object]) -> float | None:
    """host.json's ``functionTimeout`` in seconds; None when unbounded (``-1``)."""
    raw = host.get("functionTimeout")
    if raw is None:
        return DEFAULT_FUNCTION_TIMEOUT_SECONDS
    text = str(raw).strip()
    if text == "-1":
        return None
    match = _TIMESPAN.match(text)
    if match is None:
        raise SettingsError(
            f"host.json functionTimeout {text!r} is not a TimeSpan like '00:30:00' (or -1)"
        )
    days, hours, minutes, seconds = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if total <= 0:
        raise SettingsError("host.json functionTimeout must be longer than zero")
    return total


def timer_budget_seconds(function_timeout: float | None) -> float | None:
    """Seconds the timer run may take (None: no limit)."""
    return None if function_timeout is None else function_timeout * (1 - SAFETY_FRACTION)


def load_timer_budget(host_json: Path) -> float | None:
    """The timer run's budget from the host.json the Functions host reads."""
    try:
        host = json.loads(host_json.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read {host_json.name}: {exc}") from None
    if not isinstance(host, dict):
        raise SettingsError(f"{host_json.name} is not a JSON object")
    return timer_budget_seconds(function_timeout_seconds(host))
