"""README's table of the HTTP API's error codes, generated from rotation/error_codes.py
(`make docs` writes it; tests/unit/test_error_codes.py fails while it differs)."""

from __future__ import annotations

import sys
from pathlib import Path

from rotation.error_codes import CODES, ROUTES, STATUS

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- BEGIN error codes generated from rotation/error_codes.py: make docs -->"
END = "<!-- END error codes -->"


def table() -> list[str]:
    """One row per status and set of routes: the codes answered so."""
    rows = [BEGIN, "| status | `error.code` | routes |", "|---|---|---|"]
    groups: dict[tuple[int, tuple[str, ...]], list[str]] = {}
    for code in CODES:
        routes = tuple(r for r, given in ROUTES.items() if code in given)
        groups.setdefault((STATUS[code], routes), []).append(f"`{code}`")
    for (status, routes), codes in sorted(groups.items(), key=lambda g: g[0][0]):
        where = ", ".join(f"`{r}`" for r in routes)
        if set(routes) == set(ROUTES) - {"/health"}:
            where = "every route but `/health`"
        rows.append(f"| {status} | {', '.join(codes)} | {where} |")
    return [*rows, END]


def write() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    start, end = lines.index(BEGIN), lines.index(END)
    README.write_text("\n".join([*lines[:start], *table(), *lines[end + 1 :]]) + "\n", "utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print("\n".join(table()))
