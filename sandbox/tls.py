"""The sandbox's TLS: a throw-away CA made at start, a server certificate for loopback.

Clients trust the sandbox by adding the CA's PEM file (``SandboxTls.ca_path``) to their
trust store, exactly as an operator would add a corporate CA; nothing disables
certificate or hostname checks. TLS 1.2 is the minimum, as on every Azure endpoint.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

#: Names the server certificate is valid for: every loopback spelling a client might use.
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class SandboxTls:
    """The CA (its PEM on disk) and a ready server context for every sandbox port."""

    ca: trustme.CA
    ca_path: Path
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only the sandbox CA (for tests and the admin client)."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def create_tls(directory: Path) -> SandboxTls:
    """Makes a CA and a server certificate; writes the CA PEM to `directory`/sandbox-ca.pem."""
    ca = trustme.CA(organization_name="ACS rotation sandbox")
    cert = ca.issue_cert(*SERVER_NAMES)
    ca_path = directory / "sandbox-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert.configure_cert(context)
    return SandboxTls(ca, ca_path, context)
