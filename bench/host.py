"""`python -m bench.host`: a sandbox in its own process, seeded for one benchmark case.

Why a separate process: the rotator under test should own its process, so that its peak
memory is its own (not the sandbox's 10,000 apps) and the sandbox's CPU work (TLS, JSON)
does not steal time from the rotator's event loop; in Azure those services are remote.

Seeding writes the sandbox state directly (no HTTP), so 10,000 senders take a second or two.
Scenarios:

- ``due``: each app's one secret expires in 10 days and Key Vault already serves it (the
  recurring rotation a daily timer does);
- ``new``: each app has a 180-day secret and no Key Vault entry yet (first rotation);
- ``steady``: each app has a 180-day secret that Key Vault serves (nothing is due).

In ``due`` and ``steady`` the vault is as the rotator leaves a finished rotation: the
password secret's current version carries the ``settled-version`` tag (rotation/azure/key_vault.py),
and the ``-username`` companion secret exists (so the vault-wide listing pages over two
secrets per app).

Protocol: the first stdout line is JSON ``{"env": {...}, "apps": N, "seed_seconds": s}``.
Then each stdin line is a command answered by one JSON line: ``stats`` (request counters,
peak concurrent SMTP sessions, RSS) or ``reset`` (zero them). End of stdin stops the host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from bench.config import WorldConfig
from bench.memory import rss_kib
from rotation.azure.key_vault import SETTLED_TAG
from rotation.model import USERNAME_SUFFIX
from rotation.settings import load_settings
from sandbox.server import Sandbox
from sandbox.state import SecretVersion

SCENARIOS = ("due", "new", "steady")
DUE_IN = timedelta(days=10)
HEALTHY_FOR = timedelta(days=180)
PROMOTED_AGO = timedelta(days=30)


def seed(sandbox: Sandbox, apps: int, scenario: str, config: WorldConfig) -> None:
    """`apps` ACS senders (role-based usernames) over ceil(apps / apps_per_resource)
    ACS resources, in the given scenario's state."""
    settings = load_settings(sandbox.env())
    state = sandbox.state
    now = state.clock.now()
    resource = None
    for index in range(apps):
        if index % config.apps_per_resource == 0:
            resource = sandbox.add_acs_resource(f"acs-bench-{index // config.apps_per_resource}")
        lifetime = DUE_IN if scenario == "due" else HEALTHY_FOR
        sender = sandbox.add_sender(resource, lifetime=lifetime, name=f"bench-{index}")
        if scenario == "new":
            continue
        name = settings.secret_name(sender.app_id)
        password = sender.password
        version = uuid.uuid4().hex
        common = {"app-id": sender.app_id, "managed-by": "acs-smtp-rotation"}
        state.vault[name.lower()] = [
            SecretVersion(
                name=name,
                version=version,
                value=password.secret_text,
                content_type="smtp-password",
                tags={
                    **common,
                    "key-id": password.key_id,
                    "smtp-username": sender.username,
                    "smtp-host": settings.smtp_host,
                    "smtp-port": str(settings.smtp_port),
                    SETTLED_TAG: version,
                },
                enabled=True,
                expires=password.end,
                not_before=None,
                created=now - PROMOTED_AGO,
                updated=now - PROMOTED_AGO,
            )
        ]
        companion = name + USERNAME_SUFFIX
        state.vault[companion.lower()] = [
            SecretVersion(
                name=companion,
                version=uuid.uuid4().hex,
                value=sender.username,
                content_type="smtp-username",
                tags={**common, "smtp-username": sender.username},
                enabled=True,
                expires=None,
                not_before=None,
                created=now - PROMOTED_AGO,
                updated=now - PROMOTED_AGO,
            )
        ]


def inject_latency(sandbox: Sandbox, config: WorldConfig) -> None:
    """Each HTTP service answers `ms` after a request arrives, its own work included (the
    sandbox's Python is not the service being modelled); SMTP's delay comes before the
    greeting."""
    for service, ms in (
        ("graph", config.graph_ms),
        ("vault", config.vault_ms),
        ("arm", config.arm_ms),
    ):
        sandbox.state.response_times[service] = ms / 1000
    if config.smtp_ms > 0:
        sandbox.state.faults.inject("smtp CONNECT", latency=config.smtp_ms / 1000)


class _SessionWatch:
    """Samples the relay's open SMTP sessions to find the peak (no public counter exists)."""

    INTERVAL = 0.005

    def __init__(self, sandbox: Sandbox) -> None:
        self._sessions: Any = getattr(getattr(sandbox, "_relay", None), "_sessions", None)
        self.peak = 0

    async def run(self) -> None:
        while self._sessions is not None:
            self.peak = max(self.peak, len(self._sessions))
            await asyncio.sleep(self.INTERVAL)


async def serve(apps: int, scenario: str, config: WorldConfig) -> None:
    delay = timedelta(seconds=config.propagation_s)
    async with Sandbox(propagation_delay=delay) as sandbox:
        started = time.perf_counter()
        seed(sandbox, apps, scenario, config)
        seeded = time.perf_counter() - started
        inject_latency(sandbox, config)
        watch = _SessionWatch(sandbox)
        watcher = asyncio.create_task(watch.run())
        _say({"env": sandbox.env(), "apps": apps, "seed_seconds": round(seeded, 3)})
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "reset":
                sandbox.state.requests.clear()
                watch.peak = 0
                _say({"ok": True})
            elif line == "stats":
                _say(
                    {
                        "requests": dict(sandbox.state.requests),
                        "peak_smtp_sessions": watch.peak,
                        "rss_kib": rss_kib(),
                    }
                )
            else:
                _say({"error": f"unknown command {line!r}"})
        watcher.cancel()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.host", description=__doc__)
    parser.add_argument("--apps", type=int, required=True)
    parser.add_argument("--scenario", choices=SCENARIOS, default="due")
    WorldConfig.add_arguments(parser)
    args = parser.parse_args()
    asyncio.run(serve(args.apps, args.scenario, WorldConfig.from_args(args)))


if __name__ == "__main__":
    main()
