"""`python -m demo`: exit 0 when every step of the walkthrough did what it shows."""

import asyncio
import sys

from rich.console import Console

from demo.walkthrough import run_demo

# Piped or captured output gets room for full ids instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
raise SystemExit(asyncio.run(run_demo(console)))
