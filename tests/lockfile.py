"""The dependency locks, generated from pyproject.toml with uv.

- requirements.txt: [project] dependencies and every package they pull in, each pinned with
  the hashes of its files. It is what the Function App deploys: the platform's build runs
  `pip install -r requirements.txt`, and a file with hashes puts pip in hash-checking mode,
  so the build installs exactly the files the tests ran with, or fails.
- requirements-dev.txt: the same plus the [dev] extra, constrained to requirements.txt so
  that every package the app deploys has the same version in development.

The resolution is universal (every platform, Python 3.11 only: requires-python), so the
same lock serves a developer's machine and Azure's Linux workers.

    python -m tests.lockfile --write    # after changing pyproject.toml's dependencies

tests/unit/test_lockfile.py fails while the locks and pyproject.toml disagree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "requirements.txt"
DEV = ROOT / "requirements-dev.txt"
COMMAND = "python -m tests.lockfile --write"
_COMMON = (
    "pip",
    "compile",
    "pyproject.toml",
    "--universal",
    "--python-version",
    "3.11",
    "--generate-hashes",
    "--custom-compile-command",
    COMMAND,
    "--quiet",
)


def compile_args() -> dict[Path, tuple[str, ...]]:
    """uv's arguments for each lock (the dev lock reads the runtime lock, so it comes second)."""
    return {
        RUNTIME: (*_COMMON, "--output-file", RUNTIME.name),
        DEV: (*_COMMON, "--extra", "dev", "--constraint", RUNTIME.name, "--output-file", DEV.name),
    }


def write() -> None:
    uv = Path(sys.executable).with_name("uv")
    for args in compile_args().values():
        subprocess.run([str(uv), *args], cwd=ROOT, check=True)  # noqa: S603 (our own arguments)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {COMMAND}")
    write()
