"""Azurite, Microsoft's Azure Storage emulator, as the sandbox's blob service (the leases).

The rotator takes a lease on one blob per app in the Function App's own storage account
(rotation/azure/blob_lease.py). Locally that account is Azurite, the npm package pinned in
``sandbox/npm/package.json`` and installed by the Makefile (``npm ci --prefix sandbox/npm``).

How it is run, and why:
- one Azurite per process, started on first use and stopped at exit: node takes about a
  second to start, and hundreds of tests start a sandbox. Each Sandbox gets a container of
  its own (``Sandbox.lease_container``), so sandboxes still share no state;
- blob service only, on a free loopback port (``--blobPort 0``; the port is read back from
  Azurite's start-up line), data in memory only;
- HTTPS with a certificate from a throw-away CA (trustme) and ``--oauth basic``: the rotator
  reaches it with a bearer token from the sandbox's Entra, as it reaches Azure Storage with
  its managed identity. Azurite accepts bearer tokens only over HTTPS, and its basic level
  checks the token's ``iss`` (https://sts.windows.net/...), ``aud`` (https://storage.azure.com)
  and lifetime, not its signature (Azurite's BlobTokenAuthenticator). No account key is used;
- ``--skipApiVersionCheck``: azure-storage-blob sends the newest service version it knows,
  which Azurite releases trail by a few months;
- ``--disableTelemetry``: Azurite would otherwise try to report usage.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

NPM_DIR = Path(__file__).resolve().parent / "npm"
BLOB_MAIN = NPM_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
#: Azurite's built-in account; on a loopback address the account is the URL's first segment.
ACCOUNT = "devstoreaccount1"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
_LISTENING = re.compile(rb"successfully listens on https://[^:\s]+:(\d+)")
INSTALL_HINT = "install it with: npm ci --prefix sandbox/npm --ignore-scripts (make test does)"


class AzuriteUnavailable(RuntimeError):
    """Azurite is not installed or did not start; the message says what to do."""


@dataclass
class Azurite:
    """A running Azurite blob service and the CA its certificate comes from."""

    process: subprocess.Popen[bytes]
    port: int
    ca_pem: bytes
    workdir: tempfile.TemporaryDirectory[str]

    @property
    def blob_url(self) -> str:
        """The blob service endpoint, as AzureWebJobsStorage's primaryEndpoints.blob is."""
        return f"https://{HOST}:{self.port}/{ACCOUNT}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.workdir.cleanup()


_shared: Azurite | None = None
_lock = threading.Lock()


def shared_azurite() -> Azurite:
    """The process's Azurite, started on first use (and again if it died)."""
    global _shared
    with _lock:
        if _shared is None or not _shared.running:
            _shared = start_azurite()
            atexit.register(_shared.stop)
        return _shared


def start_azurite() -> Azurite:
    """Starts a new Azurite blob service on a free loopback port; waits until it listens."""
    node = shutil.which("node")
    if node is None:
        raise AzuriteUnavailable("Azurite needs Node.js (node was not found on PATH)")
    if not BLOB_MAIN.is_file():
        raise AzuriteUnavailable(f"Azurite is not installed in {NPM_DIR}; {INSTALL_HINT}")
    workdir = tempfile.TemporaryDirectory(prefix="acs-sandbox-azurite-")
    folder = Path(workdir.name)
    ca = trustme.CA(organization_name="ACS rotation sandbox storage")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    log_path = folder / "azurite.log"
    command = [
        node, str(BLOB_MAIN),
        "--blobHost", HOST, "--blobPort", "0",
        "--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem"),
        "--oauth", "basic",
        "--inMemoryPersistence", "--extentMemoryLimit", "64",
        "--skipApiVersionCheck", "--disableTelemetry", "--silent",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (a fixed command line)
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    port = _wait_for_port(process, log_path)
    return Azurite(process, port, ca.cert_pem.bytes(), workdir)


def _wait_for_port(process: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_bytes())
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            tail = log_path.read_bytes()[-2000:].decode(errors="replace")
            raise AzuriteUnavailable(f"Azurite exited with {process.returncode}: {tail}")
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise AzuriteUnavailable(f"Azurite did not listen within {START_TIMEOUT:g} s")


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the parent dies, even by SIGKILL, so a
    killed test run leaves no Azurite behind (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
