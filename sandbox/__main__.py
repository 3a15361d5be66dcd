"""`python -m sandbox`: run the local Azure stand-in until Ctrl-C.

Prints the endpoints, the CA to trust and ready-to-paste ``export`` lines, so that
``python -m rotation plan`` (or any SDK) in another terminal talks to it. The printed
AZURE_CLIENT_SECRET belongs to the sandbox's throw-away rotator identity and dies with it.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
from datetime import timedelta

from sandbox.demo import seed_demo
from sandbox.server import Sandbox


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument(
        "--propagation-delay",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long a new client secret takes to start working (default 5)",
    )
    parser.add_argument("--empty", action="store_true", help="do not seed the demo senders")
    return parser.parse_args()


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    delay = timedelta(seconds=args.propagation_delay)
    async with Sandbox(propagation_delay=delay) as sandbox:
        senders = [] if args.empty else seed_demo(sandbox)
        print(f"Entra (login)  {sandbox.login_url}/{sandbox.tenant_id}")
        print(f"Graph          {sandbox.graph_url}/v1.0")
        print(f"Key Vault      {sandbox.vault_url}")
        print(f"ARM            {sandbox.arm_url}")
        print(f"SMTP relay     {sandbox.smtp_host}:{sandbox.smtp_port} (STARTTLS)")
        print(f"Blob (Azurite) {sandbox.lease_blob_url}  (leases: {sandbox.lease_container})")
        print(f"Admin          {sandbox.admin_url}  (GET /snapshot, POST /faults, ...)")
        print(f"CA certificate {sandbox.ca_path}")
        for sender in senders:
            print(f"sender         {sender.app.display_name}  {sender.username}")
        for site in sandbox.state.web_sites.values():
            print(f"consumer site  {site.id}  (ROTATION_CONSUMERS_ENABLED=true checks it)")
        print("\n# paste into another shell:")
        for name, value in sandbox.env().items():
            print(f"export {name}={shlex.quote(value)}")
        print("\nSandbox ready; Ctrl-C stops it.", flush=True)
        await stop.wait()
    print("Sandbox stopped.", flush=True)


def main() -> None:
    asyncio.run(_serve(_arguments()))


if __name__ == "__main__":
    main()
