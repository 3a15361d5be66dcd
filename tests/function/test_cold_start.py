"""A cold start imports no service client: the worker imports `function_app` before any
trigger runs, on every start from zero, and the SDK clients (aiohttp, the ARM, Key Vault,
Graph, identity and blob packages) are imported where the clients are built
(rotation/azure/clients.py). bench/coldstart.py measures the time; this says what is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.coldstart import APP_ENV

ROOT = Path(__file__).resolve().parents[2]
#: Packages only the clients need: none may be loaded by importing function_app.
CLIENT_PACKAGES = (
    "aiohttp",
    "aiosmtplib",
    "httpx",
    "msgraph",
    "kiota_http",
    "azure.identity",
    "azure.keyvault",
    "azure.storage",
    "azure.mgmt.communication",
    "azure.mgmt.authorization",
    "azure.mgmt.web",
)
PROBE = "import json, sys, function_app; print(json.dumps(sorted(m for m in sys.modules)))"


def test_importing_function_app_loads_no_service_client() -> None:
    env = {**os.environ, **APP_ENV}
    done = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "function_app" in loaded
    eager = sorted(
        name
        for name in loaded
        if any(name == p or name.startswith(f"{p}.") for p in CLIENT_PACKAGES)
    )
    assert eager == []
