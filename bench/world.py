"""The benchmark's side of `bench.host`: start a seeded sandbox process, ask it for counters.

async with SandboxProcess.start(apps=100, scenario="due", config=config) as world:
    os.environ.update(world.env)
    await world.reset()
    ...
    stats = await world.stats()
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import WorldConfig

ROOT = Path(__file__).resolve().parent.parent
#: Seeding 10,000 apps and starting six TLS listeners stays well inside this.
START_TIMEOUT = 120.0
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class HostStats:
    requests: Counter[str]
    peak_smtp_sessions: int
    rss_kib: int

    def count(self, service: str, method: str | None = None, route: str | None = None) -> int:
        """Requests to `service` ("graph", "vault", "smtp", "arm", "login"), optionally
        narrowed to one method (or SMTP verb) and route template."""
        total = 0
        for key, n in self.requests.items():
            parts = key.split(" ", 2)
            if parts[0] != service:
                continue
            if method is not None and (len(parts) < 2 or parts[1] != method):
                continue
            if route is not None and (len(parts) < 3 or parts[2] != route):
                continue
            total += n
        return total


class SandboxProcess:
    def __init__(self, process: asyncio.subprocess.Process, hello: dict[str, Any]) -> None:
        self._process = process
        self.env: dict[str, str] = hello["env"]
        self.seed_seconds: float = hello["seed_seconds"]

    @classmethod
    @asynccontextmanager
    async def start(
        cls, *, apps: int, scenario: str, config: WorldConfig
    ) -> AsyncIterator[SandboxProcess]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.host",
            f"--apps={apps}",
            f"--scenario={scenario}",
            *config.as_args(),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            hello = await cls._read(process, START_TIMEOUT)
            yield cls(process, hello)
        finally:
            await cls._stop(process)

    async def reset(self) -> None:
        await self._ask("reset")

    async def stats(self) -> HostStats:
        answer = await self._ask("stats")
        return HostStats(
            Counter(answer["requests"]), int(answer["peak_smtp_sessions"]), int(answer["rss_kib"])
        )

    async def _ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(command.encode() + b"\n")
        await self._process.stdin.drain()
        return await self._read(self._process, ANSWER_TIMEOUT)

    @staticmethod
    async def _read(process: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
        if not line:
            code = await process.wait()
            raise RuntimeError(f"the sandbox host exited ({code}) before answering")
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise RuntimeError(f"sandbox host: {message['error']}")
        return message

    @staticmethod
    async def _stop(process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
