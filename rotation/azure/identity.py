"""Who the rotator is: the credential every Azure client signs in with.

The credential is azure-identity's DefaultAzureCredential (async): the Function App's
managed identity in Azure, EnvironmentCredential (AZURE_CLIENT_ID/SECRET/TENANT_ID)
on a laptop or against the sandbox. Nothing here reads the environment itself; the
credential classes do, as documented by azure-identity.

Trust (rotation/azure/trust.py): azure-identity's credentials take a ``connection_verify`` path,
which replaces their default bundle, so with ``ROTATION_CA_BUNDLE`` they get the combined
bundle (certifi's roots plus the extra CA) written there.

Authority validation: MSAL validates an authority host it does not know by asking
``login.microsoftonline.com`` (instance discovery). When ``ROTATION_AUTHORITY_HOST`` names
a host that is not one of Azure's clouds (the sandbox, a proxy), that host is one the
operator configured on purpose, so discovery is disabled for it
(``disable_instance_discovery=True``); Azure's own authorities keep full validation.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import DefaultAzureCredential

from rotation.azure.trust import combined_ca_bundle
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
        options["logging_enable"] = True  # azure-core's network trace, scrubbed (redaction.py)
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
