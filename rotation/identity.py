"""Who the rotator is, and whom it trusts.

The credential is azure-identity's DefaultAzureCredential (async): the Function App's
managed identity in Azure, EnvironmentCredential (AZURE_CLIENT_ID/SECRET/TENANT_ID)
on a laptop or against the sandbox. Nothing here reads the environment itself; the
credential classes do, as documented by azure-identity.

Trust: ``ROTATION_CA_BUNDLE`` adds a CA *on top of* the public roots, never instead of
them, and no check is ever switched off. `trusted_ssl_context` (system and certifi roots
plus the extra CA) serves httpx, aiohttp and aiosmtplib, and the Key Vault and ARM clients
through `TrustedTransport`. azure-identity's credentials take a ``connection_verify``
path instead, which replaces their default bundle, so a combined bundle (certifi's roots
plus the extra CA) is written once, under a name derived from its content.

Authority validation: MSAL validates an authority host it does not know by asking
``login.microsoftonline.com`` (instance discovery). When ``ROTATION_AUTHORITY_HOST`` names
a host that is not one of Azure's clouds (the sandbox, a proxy), that host is one the
operator configured on purpose, so discovery is disabled for it
(``disable_instance_discovery=True``); Azure's own authorities keep full validation.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import certifi
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import DefaultAzureCredential

from rotation.settings import CLOUDS, Settings

#: The azure-identity default authority hosts of each cloud (no path, no trailing slash).
_AZURE_AUTHORITIES = frozenset(c[0].lower() for c in CLOUDS.values())


def is_azure_authority(settings: Settings) -> bool:
    """True when the authority is one of Azure's clouds (full instance discovery applies)."""
    return settings.authority.rstrip("/").lower() in _AZURE_AUTHORITIES


def credential_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any azure-identity credential built from settings."""
    options: dict[str, Any] = {"authority": settings.authority}
    bundle = combined_ca_bundle(settings)
    if bundle is not None:
        # A CA path: azure-core parses it per request, but token requests are rare (cached).
        options["connection_verify"] = str(bundle)
    if not is_azure_authority(settings):
        options["disable_instance_discovery"] = True
    if settings.http_logging:
        options["logging_enable"] = True  # azure-core's network trace, scrubbed (logs.py)
    return options


def build_credential(settings: Settings) -> AsyncTokenCredential:
    """DefaultAzureCredential for the settings' cloud (async, for the async SDK clients).

    Interactive and developer-tool credentials are left out: a rotator runs unattended,
    and a stray `az login` on a build agent must not become its identity by accident.
    """
    return DefaultAzureCredential(
        exclude_interactive_browser_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_developer_cli_credential=True,
        **credential_options(settings),
    )


def connection_options(settings: Settings) -> dict[str, Any]:
    """A ``transport`` for azure-core data-plane clients (Key Vault, ARM) when an extra CA
    is configured; none otherwise (azure-core's default trust is then the right one)."""
    options: dict[str, Any] = {"logging_enable": True} if settings.http_logging else {}
    if settings.ca_bundle is not None:
        options["transport"] = TrustedTransport(trusted_ssl_context(settings))
    return options


class TrustedTransport(AioHttpTransport):  # type: ignore[misc]  # lazily exported: Any to mypy
    """azure-core's aiohttp transport, its connector holding one ready SSL context.

    Why not ``connection_verify=<CA path>``: azure-core then builds a new SSLContext for
    every request, parsing the whole CA bundle each time (tens of milliseconds of CPU that
    block the event loop, per Key Vault call). The session is made on first use, inside
    the running loop, as aiohttp requires; made again if a shared transport was closed.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(session_owner=True)
        self.session: aiohttp.ClientSession | None
        self._context = context

    async def open(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # as azure-core's own session: it decompresses itself
                trust_env=True,
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


#: Entra's code for a token requested for a resource it does not know: a mistyped or
#: wrong-cloud endpoint setting (AADSTS500011, 400 invalid_resource).
UNKNOWN_RESOURCE = "AADSTS500011"


def unknown_resource(exc: BaseException, endpoint: str, setting: str) -> str | None:
    """The operator's message when `exc` is Entra refusing a token for `endpoint` because
    no such resource exists in the tenant; None for any other failure."""
    if UNKNOWN_RESOURCE not in str(exc):
        return None
    return (
        f"Entra knows no resource {endpoint} ({UNKNOWN_RESOURCE}: invalid_resource): check "
        f"{setting} and ROTATION_CLOUD"
    )
