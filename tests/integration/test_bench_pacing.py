"""The pacing benchmark runs end to end on short delays and renders its table. It asserts
that each case ran and was reported, never how fast (the figures live in bench/)."""

from __future__ import annotations

from bench.config import WorldConfig
from bench.pacing import PacingResult, run_pacing
from bench.report import Suite, markdown, targets
from rotation.core.pacing import Backoff

QUICK = Backoff(initial=0.05, max=0.2, jitter=0.01, fraction=0.11)


async def test_pacing_case_verifies_each_delay_and_counts_the_window() -> None:
    config = WorldConfig(smtp_ms=0)
    result = await run_pacing(config, delays=(0.0, 0.3), window=1.0, backoff=QUICK)
    assert [r.delay for r in result.runs] == [0.0, 0.3]
    assert all(r.ok for r in result.runs)
    assert result.runs[0].attempts == 1  # already working: one AUTH
    assert result.runs[1].attempts >= 2  # refused until it propagated
    assert result.window_attempts >= 2
    assert PacingResult.from_dict(result.as_dict()) == result

    suite = Suite("test", config, pacing=result)
    names = {t.name for t in targets(suite)}
    assert "create-to-verified, propagation delay 0.3 s" in names
    assert "AUTH attempts per app per 5 s over a verify window (secret never works)" in names
    assert "## Verification pacing" in markdown(suite, {"cpu": "test"})
