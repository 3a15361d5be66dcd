"""What the reliability suite saw, kept for two checks that span every scenario.

`LeakScan` (I6): every secret value a sandbox issued (the senders' SMTP passwords, the
rotator's own client secret, consumers' secrets) is searched for in everything the
scenarios showed the outside world: log lines as the product renders them, raw log
records, HTTP answers, run reports and exception texts, subprocess output. A hit names
where it was found and a 3-character hint, never the value.

`Ledger`: one row per scenario of what was tried and what held, printed at the end of
the session (tests/reliability/conftest.py) and written to docs/reliability.md on request.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


class HasIssuedSecrets(Protocol):
    @property
    def issued_secrets(self) -> list[str]: ...


@dataclass(frozen=True)
class Leak:
    source: str
    hint: str  # the first 3 characters, as Entra itself shows them
    form: str  # "plain" or "base64"

    def __str__(self) -> str:
        return f"secret {self.hint}... ({self.form}) found in {self.source}"


@dataclass
class LeakScan:
    """Texts and the secrets to look for in them; `scan()` finds every (source, secret)."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    states: list[HasIssuedSecrets] = field(default_factory=list)
    extra_secrets: set[str] = field(default_factory=set)
    scanned_texts: int = 0
    scanned_chars: int = 0
    capture: io.StringIO | None = None  # the product's rendered log of the current test

    def watch(self, state: HasIssuedSecrets) -> None:
        """Every secret `state` issues, now or later, is looked for."""
        self.states.append(state)

    def add_secret(self, value: str) -> None:
        self.extra_secrets.add(value)

    def add(self, source: str, text: object) -> None:
        self.texts.append((source, text if isinstance(text, str) else repr(text)))

    def add_exception(self, source: str, exc: BaseException) -> None:
        import traceback

        self.add(source, "".join(traceback.format_exception(exc)))

    def secrets(self) -> set[str]:
        found = set(self.extra_secrets)
        for state in self.states:
            found.update(state.issued_secrets)
        return {s for s in found if s}

    def scan(self) -> list[Leak]:
        secrets = self.secrets()
        forms = [(s, "plain", s) for s in secrets] + [
            (s, "base64", base64.b64encode(s.encode()).decode()) for s in secrets
        ]
        leaks: list[Leak] = []
        for source, text in self.texts:
            self.scanned_texts += 1
            self.scanned_chars += len(text)
            for secret, form, needle in forms:
                if needle in text:
                    leaks.append(Leak(source, secret[:3], form))
        return leaks

    def absorb(self, other: LeakScan) -> None:
        """Adds another scan's material (the per-test scan into the session's)."""
        self.texts.extend(other.texts)
        self.states.extend(other.states)
        self.extra_secrets.update(other.extra_secrets)


@dataclass(frozen=True)
class Row:
    scenario: str
    tried: str
    held: str
    ok: bool


@dataclass
class Ledger:
    rows: list[Row] = field(default_factory=list)

    def record(self, scenario: str, tried: str, held: str, ok: bool = True) -> None:
        self.rows.append(Row(scenario, tried, held, ok))

    def extend(self, rows: Iterable[Row]) -> None:
        self.rows.extend(rows)

    def markdown(self, title: str) -> str:
        lines = [
            f"# {title}",
            "",
            "Written by `RELIABILITY_REPORT=docs/reliability.md .venv/bin/python -m pytest",
            "tests/reliability` (the same table is printed at the end of every `make test`).",
            "Every row is a scenario run against the local sandbox with the real SDKs and a",
            "real SMTP client; counts are from that run. The invariants I1-I8 are those of",
            "the design; tests/reliability/*.py say how each scenario checks them.",
            "",
            "| scenario | what was tried | what held | ok |",
            "|---|---|---|---|",
        ]
        for row in self.rows:
            cells = (row.scenario, row.tried, row.held, "yes" if row.ok else "**NO**")
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"
