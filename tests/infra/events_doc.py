"""docs/events.md's table of events, rendered from rotation/telemetry/events.py (the doc must match:
tests/infra/test_workbook.py; `python -m tests.infra.events_doc` prints the table)."""

from __future__ import annotations

from rotation.telemetry import events

DOC = "docs/events.md"
HEADER = "| event | fields (kind; `?` may be null or absent) | context | status | meaning |"


def _field(event: events.Event, name: str, kind: str) -> str:
    return f"`{name}` {kind}{'?' if name in event.optional else ''}"


def rows() -> list[str]:
    out = [HEADER, "|---|---|---|---|---|"]
    for event in events.EVENTS:
        fields = ", ".join(_field(event, n, k) for n, k in event.fields.items()) or "none"
        context = ", ".join(f"`{c}`" for c in sorted(event.context)) or "none"
        status = "planned" if event.planned else "logged"
        out.append(f"| `{event.name}` | {fields} | {context} | {status} | {event.meaning} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows()))
