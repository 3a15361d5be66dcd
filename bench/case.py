"""`python -m bench.case rotate|plan|pacing ...`: one benchmark case in a fresh process.

A fresh interpreter per case keeps cases from sharing anything (SDK caches, the log
redaction registry, warmed-up imports) and makes the peak resident set the case's own.
The result is the last line on stdout, as JSON; `run_case` is the caller's side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.config import WorldConfig

ROOT = Path(__file__).resolve().parent.parent


def run_case(kind: str, args: list[str], config: WorldConfig, timeout: float) -> dict[str, Any]:
    """Runs one case in a child process and returns its JSON result."""
    out = subprocess.run(  # noqa: S603 (our own interpreter and module, fixed arguments)
        [sys.executable, "-m", "bench.case", kind, *args, *config.as_args()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = "\n".join(out.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"bench case {kind} {' '.join(args)} failed ({out.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.case", description=__doc__)
    parser.add_argument("kind", choices=("rotate", "plan", "pacing"))
    parser.add_argument("--apps", type=int, default=0, help="rotate, plan: the number of apps")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scenario", default="due", choices=("due", "new"))
    parser.add_argument("--delays", default="3,15,60", help="pacing: propagation delays (s)")
    parser.add_argument("--window", type=float, default=300.0, help="pacing: verify window (s)")
    WorldConfig.add_arguments(parser)
    args = parser.parse_args()
    config = WorldConfig.from_args(args)
    if args.kind in ("rotate", "plan") and args.apps < 1:
        parser.error(f"{args.kind} needs --apps=N (N >= 1)")
    if args.kind == "rotate":
        from bench.rotate import run_rotation

        result = asyncio.run(
            run_rotation(args.apps, args.concurrency, config, scenario=args.scenario)
        ).as_dict()
    elif args.kind == "pacing":
        from bench.pacing import run_pacing

        delays = tuple(float(d) for d in args.delays.split(",") if d.strip())
        result = asyncio.run(run_pacing(config, delays, args.window)).as_dict()
    else:
        from bench.plan import run_plan

        result = asyncio.run(run_plan(args.apps, config, concurrency=args.concurrency)).as_dict()
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
