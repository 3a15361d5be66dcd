"""README's performance and reliability figures are the committed results' (issue 27 item 5):
the Performance table is rendered from bench/results/latest.json (tests/bench_doc.py), and
every count in the Reliability table is one docs/reliability.md, the reliability run's
report, holds."""

from __future__ import annotations

import re

from tests import bench_doc

README = bench_doc.README.read_text(encoding="utf-8")
RELIABILITY = (bench_doc.ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")


def numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text.replace(",", ""))


def test_readme_holds_the_performance_figures_of_the_results_file() -> None:
    assert "\n".join(bench_doc.table()) in README, "run `make docs`"
    assert "\n".join(bench_doc.pacing()) in README, "run `make docs`"


def test_the_figures_say_whether_they_vary_and_the_results_which_code_they_measured() -> None:
    results = bench_doc.load()
    assert set(results["sources"]) == {"rotation", "sandbox", "bench"}
    rows = [line for line in bench_doc.table() if line.startswith("| ") and "---" not in line]
    assert len(rows) > 10
    for row in rows[1:]:
        varies = row.rstrip(" |").rsplit(" | ", 1)[1]
        assert varies.startswith(("yes", "no", "as ")) or "the same every run" in varies, row


def test_every_count_in_readmes_reliability_table_is_in_the_reliability_report() -> None:
    section = README.split("## Reliability: what was tried and what held", 1)[1]
    rows = [
        line
        for line in section.split("\n## ", 1)[0].splitlines()
        if line.startswith("| ") and not line.startswith("| scenario")
    ]
    assert len(rows) > 10
    reported = set(numbers(RELIABILITY))
    stray = {row[:50]: [n for n in numbers(row) if n not in reported] for row in rows}
    assert {row: found for row, found in stray.items() if found} == {}
