"""What a benchmark world looks like: injected latencies, propagation delay, tenant shape.

The defaults are the latencies the targets assume: Graph 50 ms, Key Vault 30 ms, SMTP
handshake 150 ms, a new secret working 3 s after creation. They travel between processes
as command-line flags (`as_args` / `add_arguments` / `from_args`), so a case runner and its
sandbox host agree.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class WorldConfig:
    graph_ms: float = 50.0
    vault_ms: float = 30.0
    smtp_ms: float = 150.0  # added once per SMTP connection, before the greeting
    arm_ms: float = 0.0
    propagation_s: float = 3.0
    apps_per_resource: int = 250  # senders are spread over ceil(N / this) ACS resources

    @property
    def floor_seconds(self) -> float:
        """The least one rotation can take on this world: one addPassword, the propagation
        delay, one SMTP handshake that succeeds, one Key Vault write. No retry pacing."""
        return (self.graph_ms + self.smtp_ms + self.vault_ms) / 1000 + self.propagation_s

    @property
    def latency_label(self) -> str:
        """The request latencies a plan sees, e.g. "Graph 50 ms, Key Vault 30 ms"."""
        parts = [
            f"{name} {ms:g} ms"
            for name, ms in (
                ("Graph", self.graph_ms),
                ("Key Vault", self.vault_ms),
                ("ARM", self.arm_ms),
            )
            if ms
        ]
        return ", ".join(parts) or "no latency"

    def without_latency(self) -> WorldConfig:
        """The same world with Graph, Key Vault and ARM answering at once."""
        return dataclasses.replace(self, graph_ms=0.0, vault_ms=0.0, arm_ms=0.0)

    def as_args(self) -> list[str]:
        return [
            f"--graph-ms={self.graph_ms}",
            f"--vault-ms={self.vault_ms}",
            f"--smtp-ms={self.smtp_ms}",
            f"--arm-ms={self.arm_ms}",
            f"--propagation={self.propagation_s}",
            f"--apps-per-resource={self.apps_per_resource}",
        ]

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        d = WorldConfig()
        group = parser.add_argument_group("sandbox world")
        group.add_argument("--graph-ms", type=float, default=d.graph_ms, help="Graph latency")
        group.add_argument("--vault-ms", type=float, default=d.vault_ms, help="Key Vault latency")
        group.add_argument(
            "--smtp-ms", type=float, default=d.smtp_ms, help="SMTP handshake latency"
        )
        group.add_argument("--arm-ms", type=float, default=d.arm_ms, help="ARM latency")
        group.add_argument(
            "--propagation",
            type=float,
            default=d.propagation_s,
            metavar="SECONDS",
            help="seconds before a new secret works",
        )
        group.add_argument(
            "--apps-per-resource",
            type=int,
            default=d.apps_per_resource,
            help="senders per ACS resource",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> WorldConfig:
        return cls(
            graph_ms=args.graph_ms,
            vault_ms=args.vault_ms,
            smtp_ms=args.smtp_ms,
            arm_ms=args.arm_ms,
            propagation_s=args.propagation,
            apps_per_resource=args.apps_per_resource,
        )
