"""Cold start: importing `function_app` against importing the six SDK and
logging packages it cannot do without, alone (`LIBRARY_IMPORTS`).

A Function App worker imports `function_app` before it can run any trigger, on every cold
start (Flex Consumption scales from zero). What the rotator adds on top of the libraries
it cannot avoid is the figure to watch. Each import runs in a fresh interpreter, the two
kinds interleaved, after one unmeasured warm-up of each (so .pyc files and the page cache
are warm for both); medians over the runs are reported. Memory is the resident set the
import added.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

LIBRARY_IMPORTS = (
    "import azure.functions",
    "import azure.identity.aio",
    "from msgraph import GraphServiceClient",
    "import azure.keyvault.secrets.aio",
    "import azure.mgmt.communication.aio",
    "import structlog",
)
APP_IMPORTS = ("import function_app",)
#: Settings function_app validates at import (placeholders: nothing is contacted).
APP_ENV = {
    "ROTATION_KEY_VAULT_URL": "https://kv-bench.vault.azure.net",
    "ROTATION_TENANT_ID": "00000000-0000-0000-0000-0000000000aa",
    "ROTATION_SUBSCRIPTION_IDS": "00000000-0000-0000-0000-0000000000bb",
}

_PROBE = """
import json, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = rss()
started = time.perf_counter()
{imports}
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "rss_kib": rss() - before}}))
"""


@dataclass
class ImportCost:
    label: str
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_mib(self) -> float:
        return statistics.median(self.rss_kib) / 1024


@dataclass
class ColdStartResult:
    runs: int
    app: ImportCost
    libraries: ImportCost
    heaviest: list[tuple[str, float]]  # top-level packages by cumulative import time (s)

    @property
    def time_ratio(self) -> float:
        return self.app.median_seconds / self.libraries.median_seconds

    @property
    def memory_ratio(self) -> float:
        return self.app.median_mib / self.libraries.median_mib

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time_ratio"] = self.time_ratio
        data["memory_ratio"] = self.memory_ratio
        return data


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATION_")}
    env.update(APP_ENV)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _probe(imports: tuple[str, ...]) -> tuple[float, int]:
    code = _PROBE.format(imports="\n".join(imports))
    out = subprocess.run(  # noqa: S603 (our own interpreter, code built from constants)
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), int(data["rss_kib"])


def heaviest_imports(top: int = 8) -> list[tuple[str, float]]:
    """`python -X importtime -c 'import function_app'`, summed per top-level package."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import function_app"],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    totals: dict[str, float] = defaultdict(float)
    for line in out.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        if self_us.strip().isdigit():  # not the header line
            totals[name.strip().split(".")[0]] += int(self_us) / 1e6
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top]


def measure(runs: int = 7) -> ColdStartResult:
    app, libraries = ImportCost("function_app"), ImportCost("six SDK packages alone")
    _probe(APP_IMPORTS)  # warm-up: compile .pyc, fill the page cache
    _probe(LIBRARY_IMPORTS)
    for _ in range(runs):
        for cost, imports in ((app, APP_IMPORTS), (libraries, LIBRARY_IMPORTS)):
            seconds, kib = _probe(imports)
            cost.seconds.append(seconds)
            cost.rss_kib.append(kib)
    return ColdStartResult(runs, app, libraries, heaviest_imports())


def from_dict(data: dict[str, Any]) -> ColdStartResult:
    return ColdStartResult(
        data["runs"],
        ImportCost(**data["app"]),
        ImportCost(**data["libraries"]),
        [(str(name), float(s)) for name, s in data["heaviest"]],
    )
