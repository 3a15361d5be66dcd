"""Whom the rotator trusts: the TLS side of every connection it opens.

``ROTATION_CA_BUNDLE`` adds a CA *on top of* the public roots, never instead of them, and
no check is ever switched off. `trusted_ssl_context` (system and certifi roots plus the
extra CA) serves httpx, aiohttp and aiosmtplib, and the Key Vault, ARM and blob clients
through `TrustedTransport`. azure-identity's credentials take a ``connection_verify`` path
instead, which replaces their default bundle, so a combined bundle (certifi's roots plus
the extra CA) is written once, under a name derived from its content.

Nothing here knows about credentials: rotation/azure/identity.py builds those and asks this
module only for `combined_ca_bundle`.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import certifi
from azure.core.pipeline.transport import AioHttpTransport

from rotation.settings import Settings


def connection_options(settings: Settings) -> dict[str, Any]:
    """A ``transport`` for azure-core data-plane clients (Key Vault, ARM) when an extra CA
    is configured; none otherwise (azure-core's default trust is then the right one).

    The proxy environment (``HTTPS_PROXY``, ``NO_PROXY``, ...) is honoured when it names a
    proxy, and only then: with it on, aiohttp looks the proxy and ``~/.netrc`` up again on
    a worker thread for every request (about 1 ms a request, a third of a Key Vault page's
    own cost, measured in bench/), and would send a netrc password for a matching host.
    """
    use_env = proxy_configured()
    options: dict[str, Any] = {"logging_enable": True} if settings.http_logging else {}
    if settings.ca_bundle is not None:
        options["transport"] = TrustedTransport(trusted_ssl_context(settings), use_env=use_env)
    else:
        options["use_env_settings"] = use_env  # azure-core's AioHttpTransport keyword
    return options


def proxy_configured() -> bool:
    """Whether the environment names a proxy (the variables aiohttp and httpx read)."""
    return bool(urllib.request.getproxies())


class TrustedTransport(AioHttpTransport):  # type: ignore[misc]  # lazily exported: Any to mypy
    """azure-core's aiohttp transport, its connector holding one ready SSL context.

    Why not ``connection_verify=<CA path>``: azure-core then builds a new SSLContext for
    every request, parsing the whole CA bundle each time (tens of milliseconds of CPU that
    block the event loop, per Key Vault call). The session is made on first use, inside
    the running loop, as aiohttp requires; made again if a shared transport was closed.
    """

    def __init__(self, context: ssl.SSLContext, *, use_env: bool = True) -> None:
        super().__init__(session_owner=True)
        self.session: aiohttp.ClientSession | None
        self._context = context
        self._use_env = use_env

    async def open(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # as azure-core's own session: it decompresses itself
                trust_env=self._use_env,
            )
        await super().open()


def combined_ca_bundle(settings: Settings) -> Path | None:
    """certifi's roots plus ``settings.ca_bundle`` in one PEM file, or None without one.

    The file name is a hash of its content, so concurrent callers (or processes) agree on
    it and a changed CA gets a new file; it is written atomically.
    """
    if settings.ca_bundle is None:
        return None
    extra = settings.ca_bundle.read_bytes()
    roots = Path(certifi.where()).read_bytes()
    content = roots.rstrip(b"\n") + b"\n" + extra
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"rotation-ca-{digest}.pem"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rotation-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, path)
    return path


def trusted_ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client context: system and certifi roots plus the extra CA; TLS 1.2 minimum;
    certificate and host name checks on (as ACS and every Azure endpoint require)."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    if settings.ca_bundle is not None:
        context.load_verify_locations(cafile=str(settings.ca_bundle))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
