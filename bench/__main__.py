"""`python -m bench` (`make bench`): the performance figures in README's "Performance",
measured against the sandbox.

Runs, each case in fresh processes: rotations of N due apps at concurrency C (N = 10, 100,
1,000; C = 16 and 32 everywhere, C = 1 up to `--c1-up-to`), a first rotation (no Key Vault
entry yet), a plan over 10,000 apps with nothing due (without latency and with the usual
latencies), the cold-start import comparison, the JSON answer of a 10,000-app run
(bench/answers.py), and verification pacing (create-to-verified at
propagation delays of 3, 15 and 60 s; AUTH attempts over a 300 s verify window; 5 minutes,
`--pacing-delays=` skips it).
Prints the tables with each target and writes bench/results/latest.md and latest.json.

Modes: the default takes about 17 minutes on 2 cores; `--quick` about 3 (N up to 100, plan
over 2,000 apps); `--full` also measures concurrency 1 at N=100 (8 more minutes);
`--c1-up-to 1000` measures concurrency 1 at N=1,000 too (about 80 more minutes). Without a
measurement, concurrency 1 is derived as critical path x N (stated in the output).
Exit status: 1 if a case failed (an app not rotated, a write during a plan); with
`--strict`, also if a target was not met.

Where the time goes in one case (the rotator's process; the sandbox runs in a child):
    .venv/bin/py-spy record -o profile.svg -- \\
        .venv/bin/python -m bench.case rotate --apps=1000 --concurrency=32
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from bench import answers, auth, coldstart, machine, report
from bench.case import run_case
from bench.config import WorldConfig
from bench.pacing import PacingResult
from bench.plan import PlanResult
from bench.rotate import RotationResult

Case = tuple[int, int, str]  # apps, concurrency, scenario


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="N up to 100, plan over 2,000 apps")
    mode.add_argument("--full", action="store_true", help="also concurrency 1 at N=100")
    parser.add_argument("--sizes", type=_ints, help="N values, e.g. 10,100,1000")
    parser.add_argument("--concurrency", type=_ints, help="C values besides 1, e.g. 16,32")
    parser.add_argument(
        "--c1-up-to", type=int, help="measure concurrency 1 at N up to this (default 10)"
    )
    parser.add_argument("--first-time-apps", type=int, help="N of the first-rotation case")
    parser.add_argument("--plan-apps", type=int, help="apps in the plan case (0: skip)")
    parser.add_argument("--coldstart-runs", type=int, help="fresh processes per import (0: skip)")
    parser.add_argument(
        "--pacing-delays", type=_floats, help="propagation delays to verify through (s)"
    )
    parser.add_argument(
        "--pacing-window", type=float, help="verify window of the never-working secret (0: skip)"
    )
    parser.add_argument("--out", type=Path, default=report.RESULTS, help="results directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    WorldConfig.add_arguments(parser)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "sizes": [10, 100] if quick else [10, 100, 1000],
        "concurrency": [16, 32],
        "c1_up_to": 100 if args.full else 10,
        "first_time_apps": 10 if quick else 100,
        "plan_apps": 2000 if quick else 10_000,
        "coldstart_runs": 3 if quick else 7,
        "pacing_delays": [3.0, 15.0] if quick else [3.0, 15.0, 60.0],
        "pacing_window": 0.0 if quick else 300.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.mode = "quick" if quick else "full" if args.full else "default"
    if any(v != defaults[k] for k, v in vars(args).items() if k in defaults):
        args.mode += " (custom)"
    return args


def cases(args: argparse.Namespace) -> list[Case]:
    out: list[Case] = []
    for apps in args.sizes:
        if apps <= args.c1_up_to:
            out.append((apps, 1, "due"))
        out += [(apps, c, "due") for c in args.concurrency if c != 1]
    if args.first_time_apps:
        out.append((args.first_time_apps, max(args.concurrency, default=16), "new"))
    return out


def _timeout(apps: int, concurrency: int, config: WorldConfig) -> float:
    per_app = config.floor_seconds * 3 + 5
    return 180 + per_app * -(-apps // concurrency) * 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    config = WorldConfig.from_args(args)
    console = Console()
    suite = report.Suite(args.mode, config)
    started = time.perf_counter()
    load_at_start = machine.load_average()
    broken = False
    for apps, concurrency, scenario in cases(args):
        console.print(f"rotate N={apps:,} C={concurrency} ({scenario}) ...", end=" ")
        data = run_case(
            "rotate",
            [f"--apps={apps}", f"--concurrency={concurrency}", f"--scenario={scenario}"],
            config,
            _timeout(apps, concurrency, config),
        )
        result = RotationResult.from_dict(data)
        suite.rotations.append(result)
        broken |= not result.ok
        console.print(f"{result.wall_seconds:.1f} s, {result.rotated} rotated")
    if args.plan_apps:
        # With the usual latencies, and (unless they are zero already) without any.
        for world in dict.fromkeys([config.without_latency(), config]):
            console.print(f"plan over {args.plan_apps:,} apps ({world.latency_label}) ...", end=" ")
            plan = PlanResult.from_dict(run_case("plan", [f"--apps={args.plan_apps}"], world, 1800))
            suite.plans.append(plan)
            broken |= not plan.ok
            console.print(f"{plan.wall_seconds:.1f} s")
    if args.coldstart_runs:
        console.print(f"cold start, {args.coldstart_runs} runs each ...", end=" ")
        suite.coldstart = coldstart.measure(args.coldstart_runs)
        console.print(
            f"{suite.coldstart.time_ratio:.2f}x time, {suite.coldstart.memory_ratio:.2f}x memory"
        )
    suite.answers, suite.auth = answers.measure(), auth.measure()
    console.print(f"JSON answer: {suite.answers}")
    console.print(suite.auth)
    if args.pacing_delays:
        delays = ",".join(f"{d:g}" for d in args.pacing_delays)
        console.print(f"verification pacing, delays {delays} s ...", end=" ")
        window = max(args.pacing_window, 0.0)
        data = run_case(
            "pacing",
            [f"--delays={delays}", f"--window={window:g}"],
            config,
            max(window, 3 * sum(args.pacing_delays)) + 300,
        )
        suite.pacing = PacingResult.from_dict(data)
        broken |= not suite.pacing.ok
        console.print(f"{len(suite.pacing.runs)} delays verified")
    suite.total_seconds = time.perf_counter() - started
    if suite.rotations:
        for table in report.rotation_tables(suite):
            console.print(table)
        for note in report.critical_path_notes(suite, config):
            console.print(f"- {note}")
    if suite.plans:
        console.print(report.plan_table(suite.plans))
    if suite.pacing is not None:
        console.print(report.pacing_table(suite.pacing))
    console.print(report.targets_table(suite))
    path = report.write(suite, machine.describe(load_at_start), args.out)
    console.print(f"written: {path} (and latest.json), {suite.total_seconds / 60:.1f} min in all")
    missed = any(t.met is False for t in report.targets(suite))
    return 1 if broken or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
