"""`python -m bench.auth`: what checking a caller's token costs every API request
(rotation/auth.py): the RS256 signature, the registered claims and the role, with the
signing key already cached (the usual case: Entra's keys are read once a day). No sandbox:
the key set is held in memory (tests/tokens.py) and tokens are signed with the sandbox's
key pool. Prints the best of 7 rounds of 1,000 checks, per check.
"""

from __future__ import annotations

import asyncio
import time

from tests.tokens import bearer, token_check
from tests.unit.test_http_api_runs import SETTINGS

CHECKS = 1000


async def _round() -> float:
    check = token_check(SETTINGS)
    headers = bearer(SETTINGS)
    await check.caller(headers)  # warm
    started = time.perf_counter()
    for _ in range(CHECKS):
        await check.caller(headers)
    return (time.perf_counter() - started) / CHECKS


def measure() -> str:
    best = min(asyncio.run(_round()) for _ in range(7))
    return f"token check (signature, claims, role; key cached): {best * 1e6:.0f} µs per request"


if __name__ == "__main__":
    print(measure())
