"""`python -m rotation plan|run|status|doctor`: the operator's terminal.

Settings come from the environment (ROTATION_*), built once here. Results go to
stdout (a table, or JSON with --json); logs go to stderr. The exit code is 1 when any
app failed and 2 for a usage or settings error, so scripts and pipelines can act on it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rotation import answers, doctor, render
from rotation.errors import RotationError, SettingsError, describe
from rotation.model import AppOutcome, Mode, Requester, RunOptions, RunReport
from rotation.service import RotationService
from rotation.settings import InvalidSettings, Settings, load_settings
from rotation.telemetry import logs, redaction

log = logs.get_logger("rotation.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rotation",
        description="Rotate the SMTP passwords (Entra client secrets) of ACS email senders.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("plan", "show what a run would do for each app, and why"),
        ("run", "rotate what is due (or what --force/--emergency says), then report"),
        ("status", "every managed app: current key, expiry, days left, Key Vault version"),
        ("doctor", "check every prerequisite against the live services, one line each"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        if name == "doctor":
            sub.add_argument("--json", action="store_true", help="print JSON instead of lines")
            continue
        sub.add_argument(
            "--app",
            action="append",
            default=[],
            metavar="APP_ID",
            help="limit to this app (repeatable)",
        )
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name in ("plan", "run"):
            mode = sub.add_mutually_exclusive_group()
            mode.add_argument("--force", action="store_true", help="rotate even if not due")
            mode.add_argument(
                "--emergency",
                action="store_true",
                help="rotate now and remove every other secret at once (needs --app, "
                "or --all-apps and a confirmation)",
            )
        if name == "run":
            sub.add_argument(
                "--all-apps",
                action="store_true",
                help="with --emergency and no --app: every managed app (asks to confirm)",
            )
            sub.add_argument(
                "--yes-all-apps",
                action="store_true",
                help="confirm --all-apps without a prompt (for scripts)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Piped or captured output gets room for full ids instead of rich's 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 160)
    if args.command == "doctor":
        return _doctor(args, console)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(describe(exc), file=sys.stderr)
        return 2
    logs.configure(
        settings.log_format,
        level=logging.getLevelName(settings.log_level),
        known_secrets=redaction.secrets_in(os.environ),
    )
    try:
        return asyncio.run(_dispatch(args, settings, console))
    except RotationError as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2


def _doctor(args: argparse.Namespace, console: Console) -> int:
    """Exit 1 when any check fails; invalid settings are the first failed check."""
    site = doctor.Site.from_environment(os.environ)
    try:
        settings = load_settings()
    except InvalidSettings as exc:
        checks = [doctor.settings_failed(exc.public, site)]
    else:
        logs.configure(settings.log_format)
        checks = asyncio.run(doctor.diagnose(settings, site))
    return report_doctor(checks, as_json=args.json, console=console)


def report_doctor(checks: Sequence[doctor.Check], *, as_json: bool, console: Console) -> int:
    """Prints the checks (lines, or JSON) and returns the exit code: 1 when any failed."""
    if as_json:
        print(json.dumps(answers.DoctorReport.of(checks).body(), indent=2))
    else:
        doctor.render(checks, console)
    return 0 if doctor.ok(checks) else 1


async def _dispatch(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    mode = (
        Mode.EMERGENCY
        if getattr(args, "emergency", False)
        else Mode.FORCE
        if getattr(args, "force", False)
        else Mode.DUE
    )
    refusal = _emergency_refusal(args, mode)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    async with RotationService.open(settings) as service:
        if args.command == "status":
            rows = await service.status(args.app or None)
            if args.json:
                print(json.dumps(answers.Status.of(rows).body(), indent=2))  # as GET /api/status
            else:
                console.print(render.status_table(rows))
                render.print_consumers(console, [(r.app_id, r.consumers) for r in rows])
            return 0
        dry_run = args.command == "plan"
        all_apps = bool(getattr(args, "all_apps", False))
        if all_apps and not await _confirmed_all_apps(service, args.yes_all_apps):
            print("not confirmed: nothing changed", file=sys.stderr)
            return 2
        log.info(
            "run.requested",
            mode=mode.value,
            dry_run=dry_run,
            app_ids=",".join(args.app) or "all",
            caller=_caller(),
        )
        operator = Requester(type="cli", name=_caller())
        options = RunOptions(
            tuple(args.app), mode, dry_run, all_apps=all_apps, requested_by=operator
        )
        with structlog.contextvars.bound_contextvars(**operator.log_fields()):
            if args.json or dry_run:
                report = await service.run(options)
            else:
                report = await _run_with_progress(service, options, console)
        if args.json:
            print(json.dumps(answers.RunReport.of(report).body(), indent=2))
        else:
            console.print(render.report_table(report))
            render.print_consumers(console, [(o.app_id, o.consumers) for o in report.outcomes])
        return 0 if report.ok else 1


def _emergency_refusal(args: argparse.Namespace, mode: Mode) -> str | None:
    """Why the arguments cannot run as given, if they cannot. An emergency removes every
    other secret at once; over every app that is a tenant-wide outage for any consumer that
    has not re-read Key Vault, so it is never the result of leaving --app out."""
    all_apps = getattr(args, "all_apps", False)
    if all_apps and args.app:
        return "--all-apps and --app exclude each other"
    if all_apps and mode is not Mode.EMERGENCY:
        return "--all-apps goes with --emergency only (force and due runs cover every app anyway)"
    if args.command == "run" and mode is Mode.EMERGENCY and not args.app and not all_apps:
        return (
            "--emergency removes every other secret of each app at once: name the apps with "
            "--app APP_ID (repeatable), or give --all-apps to do it to every managed app"
        )
    return None


async def _confirmed_all_apps(service: RotationService, yes: bool) -> bool:
    """An emergency over every app goes ahead only after the operator confirms it: typing
    the number of apps at the prompt, or --yes-all-apps where there is no terminal."""
    apps = await service.select(None)
    if yes:
        return True
    if not sys.stdin.isatty():
        print(
            "error: --all-apps asks for confirmation on a terminal; add --yes-all-apps to "
            "confirm without one",
            file=sys.stderr,
        )
        return False
    print(
        f"An emergency rotation of ALL {len(apps)} managed apps removes every other secret of "
        "each at once: every consumer that has not re-read Key Vault fails until it does.",
        file=sys.stderr,
    )
    answer = await asyncio.to_thread(input, f"Type the number of apps ({len(apps)}) to go ahead: ")
    return answer.strip() == str(len(apps))


def _caller() -> str:
    """The operator at the terminal, as the operating system names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def _run_with_progress(
    service: RotationService, options: RunOptions, console: Console
) -> RunReport:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("rotating", total=None)

        def advance(outcome: AppOutcome) -> None:
            progress.update(
                task, advance=1, description=f"{outcome.app_id[:8]}… {outcome.outcome.value}"
            )

        chosen = await service.choose(options.app_ids)
        progress.update(task, total=len(chosen.apps) + len(chosen.skipped))
        return await service.run(options, on_outcome=advance, chosen=chosen)
