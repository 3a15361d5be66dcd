"""The timer run's time budget, derived from host.json's ``functionTimeout``.

The Functions host kills an invocation that outlives ``functionTimeout`` (Microsoft Learn,
"Function app timeout duration": Flex Consumption defaults to 30 minutes, ``-1`` means
unbounded). A killed run is safe (I1-I8 hold) but wasteful and alarming, so the timer run
gets a budget a little shorter than the timeout: the engine starts an app only while its
whole time still fits, lets the apps under way finish, and reports the rest as unfinished
for the next scheduled run.

A timeout too short for even one app's worst case would make every timer run start nothing,
the next one no better: `timer_budget` refuses it at start-up, naming both values and the
fix. Only what depends on the timer refuses with it (health 503, doctor's settings check,
the timer fails): HTTP runs and Key Vault events have budgets of their own and keep working.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

from rotation.errors import SettingsError
from rotation.model import STEP_MARGIN_SECONDS, longest_app_seconds
from rotation.settings import Settings

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


def timer_budget(host_json: Path, settings: Settings) -> float | None:
    """The timer run's budget, refused (SettingsError) when one app's worst case does not
    fit in it."""
    budget = load_timer_budget(host_json)
    confirm = settings.consumer_confirm_timeout_seconds if settings.consumers_enabled else None
    needed = longest_app_seconds(settings.verify_timeout_seconds, confirm)
    if budget is None or budget >= needed:
        return budget
    parts = f"ROTATION_VERIFY_TIMEOUT_SECONDS {settings.verify_timeout_seconds:g} s"
    if confirm is not None:
        parts += f" + ROTATION_CONSUMER_CONFIRM_TIMEOUT_SECONDS {confirm:g} s"
    shortest = timespan(math.ceil(needed / (1 - SAFETY_FRACTION)))
    verify_fits = budget - (needed - settings.verify_timeout_seconds)
    fixes = [f"set functionTimeout in host.json to at least {shortest} and deploy again"]
    if verify_fits > 0:
        fixes.append(f"set ROTATION_VERIFY_TIMEOUT_SECONDS to at most {math.floor(verify_fits)}")
    raise SettingsError(
        f"host.json functionTimeout {timespan(budget / (1 - SAFETY_FRACTION))} leaves the timer "
        f"run {budget:g} s ({1 - SAFETY_FRACTION:.0%}), less than one app's worst case, "
        f"{needed:g} s ({parts} + {STEP_MARGIN_SECONDS:g} s for the other steps): every timer "
        f"run would start no app. Fix: {', or '.join(fixes)}"
    )


def timespan(seconds: float) -> str:
    """Seconds as host.json writes a TimeSpan: [d.]hh:mm:ss (whole seconds)."""
    days, rest = divmod(round(seconds), 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}.{clock}" if days else clock


def require_schedule(settings: Settings, in_azure: bool) -> None:
    """In Azure the timer's schedule is the app setting itself (``%ROTATION_SCHEDULE%``,
    resolved by the host, never the Python default): unset, the timer never runs, so say so
    rather than answer healthy."""
    if in_azure and "schedule" not in settings.model_fields_set:
        raise SettingsError(
            "invalid settings: ROTATION_SCHEDULE is not set: the Functions host reads the timer's "
            "schedule from this app setting, so no timer run happens (set it to NCRONTAB, "
            "e.g. '0 0 3 * * *'; azd up does)"
        )
