"""Tables for a terminal: a run's report, the status of each app, its consumer sites.

Rendering only: what the CLI and the demo print, built from the values the service returns.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from rotation.model import ConsumerCheck, RunReport
from rotation.service import StatusRow

OUTCOME_STYLE = {
    "rotated": "green",
    "retired": "cyan",
    "planned": "yellow",
    "unchanged": "dim",
    "failed": "bold red",
    "unfinished": "magenta",
    "skipped": "dim",
    "blocked": "bold yellow",
    "busy": "blue",
}


def report_table(report: RunReport) -> Table:
    title = f"run {report.run_id} ({report.mode.value}{', dry run' if report.dry_run else ''})"
    table = Table(title=title, show_lines=False)
    for column in ("app", "action", "outcome", "new key", "removed", "expires", "reason / error"):
        table.add_column(column, overflow="fold")
    for o in report.outcomes:
        style = OUTCOME_STYLE.get(o.outcome.value, "")
        table.add_row(
            o.app_id,
            o.action.value,
            f"[{style}]{o.outcome.value}[/]" if style else o.outcome.value,
            (o.new_key_id or "")[:8],
            ", ".join(k[:8] for k in o.removed_key_ids),
            o.expires.date().isoformat() if o.expires else "",
            o.error or o.reason,
        )
    if report.skipped_items:  # upstream items of no app, left out (rotation/azure/wire.py)
        table.caption = f"{len(report.skipped_items)} unreadable upstream item(s) skipped: " + (
            "; ".join(f"{i.service}, {i.answer}: {i.reason}" for i in report.skipped_items[:5])
        )
    return table


def status_table(rows: Sequence[StatusRow]) -> Table:
    table = Table(title="managed ACS SMTP senders")
    columns = ("app", "smtp username (source)", "key", "expires", "days left", "vault version")
    for column in (*columns, "state"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r.app_id,
            "\n".join(f"{u} ({source})" for u, source in r.usernames) or r.smtp_username,
            (r.key_id or "")[:8],
            r.expires.date().isoformat() if r.expires else "",
            "" if r.days_left is None else f"{r.days_left:.1f}",
            (r.vault_version or "")[:12],
            _state(r),
        )
    return table


def _state(row: StatusRow) -> str:
    """The state, with why a sender is skipped, or what drift was found (rotation/core/drift.py)."""
    if row.drift is not None:
        found = row.drift
        seen = found.seen.isoformat(timespec="seconds") if found.seen else "not yet checked"
        return (
            f"drift: version {found.version[:12]} written by hand "
            f"{found.appeared.isoformat(timespec='seconds')}; SMTP {found.smtp} ({seen}); "
            "resolve with run --app <id> --force"
        )
    return f"{row.state}: {row.reason}" if row.reason else row.state


def print_consumers(console: Console, checks: Sequence[tuple[str, ConsumerCheck | None]]) -> None:
    found = [(app_id, check) for app_id, check in checks if check is not None]
    if found:
        console.print(consumers_table(found))


def consumers_table(checks: Sequence[tuple[str, ConsumerCheck]]) -> Table:
    """Each consumer site's reference to an app's secrets: what it resolves, since when,
    and why it holds an early retirement (App Service's own details text)."""
    table = Table(title="consumer sites (App Service / Functions Key Vault references)")
    for column in ("app", "site", "setting", "status", "resolves", "confirmed", "problem"):
        table.add_column(column, overflow="fold")
    for app_id, check in checks:
        for ref in check.references:
            if ref.secret_name.lower() != check.password_secret.lower():
                mark = " (username)"
            elif ref.active_version is not None and ref.active_version == check.version:
                mark = " (current)"
            else:
                mark = ""
            resolves = (ref.active_version or "")[:12] + mark
            table.add_row(
                app_id[:8],
                _site_name(ref.site_id),
                ref.setting + (" (connection string)" if ref.setting_type != "appSetting" else ""),
                ref.status,
                resolves,
                ref.confirmed_at.strftime("%H:%M:%S") if ref.confirmed_at else "",
                check.problem_of(ref) or "",
            )
        for problem in check.unreachable:
            table.add_row(app_id[:8], "[bold red]unreachable[/]", "", "", "", "", problem)
        if not check.references and not check.unreachable:
            table.add_row(app_id[:8], "(no consumer site found)", "", "", "", "", "")
    return table


def _site_name(site_id: str) -> str:
    """ "name" or "name/slot" from a site or slot resource id."""
    parts = site_id.strip("/").split("/")
    return "/".join(parts[7::2]) if len(parts) > 7 else site_id
