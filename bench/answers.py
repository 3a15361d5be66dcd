"""`python -m bench.answers`: how long turning a 10,000-app RunReport into its JSON answer
takes (rotation/answers.py), as the timer run does once at its end and the HTTP API before
it answers. No sandbox: the report is built in memory (one app in ten rotated, one in a
hundred with a consumer site). Prints the best of 7 for building the models, dumping them to
a dict, and json.dumps of that dict (what function_app.py sends).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rotation import answers
from rotation.model import (
    Action,
    AppOutcome,
    ConsumerCheck,
    ConsumerReference,
    Mode,
    Outcome,
    RunReport,
)

APPS = 10_000
START = datetime(2026, 11, 30, tzinfo=UTC)
SITE = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/mailer"


def _outcome(i: int) -> AppOutcome:
    name = f"acs-smtp-{i}"
    rotated = i % 10 == 0
    consumers = None
    if i % 100 == 0:
        ref = ConsumerReference(SITE, "SMTP_PASSWORD", name, "Resolved", None, "v2", None, "kv")
        consumers = ConsumerCheck("v2", (ref,), (), name)
    return AppOutcome(
        f"{i:08d}-0000-4000-8000-000000000000",
        name,
        Action.ROTATE if rotated else Action.NOTHING,
        "expires in 20 days" if rotated else "valid for 150 more days",
        Outcome.ROTATED if rotated else Outcome.UNCHANGED,
        new_key_id="k2" if rotated else None,
        removed_key_ids=["k1"] if rotated else [],
        expires=START + timedelta(days=180) if rotated else None,
        duration_seconds=1.234567,
        consumers=consumers,
    )


def best_ms(step: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def measure() -> str:
    """One line: the three costs of the answer, best of 7 each."""
    report = RunReport(
        "run",
        Mode.DUE,
        False,
        START,
        START + timedelta(minutes=5),
        [_outcome(i) for i in range(APPS)],
    )
    model = answers.RunReport.of(report)
    body = model.body()
    build = best_ms(lambda: answers.RunReport.of(report))
    dump = best_ms(model.body)
    text = best_ms(lambda: json.dumps(body))
    size = len(json.dumps(body)) / 1e6
    return (
        f"RunReport of {APPS:,} apps ({size:.1f} MB): models {build:.0f} ms, "
        f"dict {dump:.0f} ms, json.dumps {text:.0f} ms"
    )


if __name__ == "__main__":
    print(measure())
