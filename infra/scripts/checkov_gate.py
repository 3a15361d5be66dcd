"""Runs checkov over infra/ and fails unless every finding is either fixed or justified.

checkov's own exit code already fails on a failed check. This adds what it does not check:
- every Bicep file parsed (a file checkov cannot parse is silently not scanned at all);
- every skip carries a reason (`// checkov:skip=<ID>:<why>`), not checkov's "No comment";
- no stale skip: each skip comment names a check that actually ran on that resource.

Run with the interpreter of .venv-infra (`make infra-check`); standard library only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parent.parent
SKIP = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def run_checkov() -> dict[str, object]:
    command = [
        sys.executable,
        "-m",
        "checkov.main",
        "--directory",
        str(INFRA),
        "--framework",
        "bicep",
        "secrets",
        "--skip-download",  # offline: no guidelines or policies from the vendor's API
        "--output",
        "json",
        "--compact",
    ]
    offline = {
        **os.environ,
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no version look-up on each run
        "BC_SKIP_MAPPING": "TRUE",  # no check-id mapping download from the vendor
    }
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=offline)  # noqa: S603
    try:
        parsed = json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit("checkov did not produce a JSON report") from None
    reports = parsed if isinstance(parsed, list) else [parsed]
    merged: dict[str, object] = {"failed": [], "skipped": [], "parsing_errors": 0}
    for report in reports:
        if not isinstance(report, dict) or "results" not in report:
            continue  # a framework with nothing to scan reports a bare summary
        results = report["results"]
        merged["failed"] += results.get("failed_checks", [])  # type: ignore[operator]
        merged["skipped"] += results.get("skipped_checks", [])  # type: ignore[operator]
        merged["parsing_errors"] += report["summary"].get("parsing_errors", 0)  # type: ignore[operator]
    return merged


def skip_comments() -> set[tuple[str, str]]:
    """(file relative to infra/, check id) for every skip comment in the templates."""
    found = set()
    for path in INFRA.rglob("*.bicep"):
        for match in SKIP.finditer(path.read_text(encoding="utf-8")):
            found.add((path.relative_to(INFRA).as_posix(), match.group(1)))
    return found


def main() -> int:
    report = run_checkov()
    problems: list[str] = []
    for check in report["failed"]:  # type: ignore[attr-defined]
        problems.append(
            f"FAILED {check['check_id']} {check['check_name']}: {check['resource']} "
            f"({check['file_path'].lstrip('/')}:{check['file_line_range'][0]})"
        )
    if report["parsing_errors"]:
        problems.append(
            f"{report['parsing_errors']} Bicep file(s) could not be parsed, so were not scanned"
        )
    applied = set()
    for check in report["skipped"]:  # type: ignore[attr-defined]
        reason = check.get("check_result", {}).get("suppress_comment", "")
        if not reason or reason == "No comment provided":
            problems.append(f"skip of {check['check_id']} on {check['resource']} gives no reason")
        applied.add((check["file_path"].lstrip("/"), check["check_id"]))
    for file, check_id in sorted(skip_comments() - applied):
        problems.append(f"stale skip: {check_id} in {file} no longer matches a check that ran")
    print(f"checkov: {len(report['failed'])} failed, {len(applied)} skipped with a reason")  # type: ignore[arg-type]
    for line in problems:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
