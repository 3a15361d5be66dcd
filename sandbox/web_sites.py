"""App Service / Functions sites (and slots) whose app settings and connection strings hold
Key Vault references.

How App Service treats a reference, as documented in "Use Key Vault references as app
settings in Azure App Service and Azure Functions" (learn.microsoft.com, 2025-03):

- two forms: ``@Microsoft.KeyVault(SecretUri=https://<vault>/secrets/<name>[/<version>])``
  and ``@Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>[;SecretVersion=<v>])``;
- without a version the app uses the latest version; App Service caches resolved values
  and refetches them every 24 hours ("Understand rotation"); any configuration change
  restarts the app and refetches at once; ``POST .../config/configreferences/appsettings/
  refresh`` forces resolution now;
- the app reads the vault with its own managed identity; without access the reference
  does not resolve;
- a connection string's value may be a reference too, resolved the same way (the same
  page's first paragraph; the Web RP lists them apart, ApiKVReference.tsp). The refresh
  endpoint the docs give is ``appsettings/refresh`` and no page says it covers connection
  strings, so here it does not: a connection string refetches only on its 24 hours or
  when it changes (the stricter reading; the product must not count on more).

The statuses are the Web RP's ResolveStatus values (azure-rest-api-specs, Microsoft.Web,
ApiKVReference.status). ``details`` for a resolved reference is the text App Service
returns ("Reference has been successfully resolved.", seen in a real refresh response);
the texts for failures are the sandbox's own: the product shows ``details`` verbatim and
never parses it. The 24 hours run on the sandbox clock, so tests can move past them.

What an answer holds: the schema (ApiKVReference) lists ``reference``, ``status``,
``vaultName``, ``secretName``, ``secretVersion``, ``identityType``, ``details``, ``source``
and ``activeVersion``, and a site answers with all of them by default. Microsoft's
published example of the answer (azure-rest-api-specs, Microsoft.Web/AppService/examples/
2025-03-01/GetKeyVaultReferencesForAppSettings.json, read 2026-12) has only ``secretName``,
``secretVersion`` and ``vaultName``; a site with ``reference_fields = "published-example"``
answers that way (``secretVersion`` only when the reference names one), so tests see what
the product does when App Service says nothing about status or the version it serves.

The cached value is kept here because that is what the site's code reads (the
reliability suite's App Service-style consumers); it never leaves the sandbox in a
response.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from sandbox.state import SecretVersion

#: App Service refetches Key Vault references every 24 hours.
CACHE_LIFETIME = timedelta(hours=24)
RESOLVED_DETAILS = "Reference has been successfully resolved."
#: Which fields a site's configreferences answers hold (see the module's docstring).
ReferenceFields = Literal["complete", "published-example"]
_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\((?P<body>.*)\)$", re.IGNORECASE | re.DOTALL)


@dataclass
class Resolution:
    """What one reference resolved to, and when (the 24 h cache entry)."""

    reference: str
    status: str
    vault_name: str | None
    secret_name: str | None
    secret_version: str | None  # the version the reference names (pinned), if any
    active_version: str | None
    details: str
    at: datetime
    value: str | None = None  # what the site's code reads; never in a response


@dataclass
class WebSite:
    subscription_id: str
    resource_group: str
    name: str
    slot: str | None = None
    kind: str = "app"  # "functionapp" for Functions
    location: str = "West Europe"
    app_settings: dict[str, str] = field(default_factory=dict)
    connection_strings: dict[str, str] = field(default_factory=dict)  # name -> value (no type)
    vault_access: bool = True  # its managed identity may read secrets (Key Vault Secrets User)
    cache: dict[str, Resolution] = field(default_factory=dict)  # setting -> resolution
    connection_string_cache: dict[str, Resolution] = field(default_factory=dict)
    reference_fields: ReferenceFields = "complete"  # what its configreferences answers hold

    @property
    def site_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Web/sites/{self.name}"
        )

    @property
    def id(self) -> str:
        return f"{self.site_id}/slots/{self.slot}" if self.slot else self.site_id

    def references(self, *, connection_strings: bool = False) -> dict[str, str]:
        """The app settings (or connection strings) that are Key Vault references."""
        values = self.connection_strings if connection_strings else self.app_settings
        return {k: v for k, v in values.items() if _REFERENCE.match(v.strip())}

    def resolutions(
        self,
        vault: Mapping[str, Sequence[SecretVersion]],
        vault_name: str,
        now: datetime,
        *,
        refresh: bool = False,
        connection_strings: bool = False,
    ) -> dict[str, Resolution]:
        """Every app setting (or connection string) reference as the site holds it: from its
        cache, refetched when the entry is 24 hours old, when the value changed, or on
        `refresh`."""
        references = self.references(connection_strings=connection_strings)
        cache = self.connection_string_cache if connection_strings else self.cache
        for setting in list(cache):
            if setting not in references:
                del cache[setting]
        for setting, reference in references.items():
            cached = cache.get(setting)
            if (
                refresh
                or cached is None
                or cached.reference != reference
                or now - cached.at >= CACHE_LIFETIME
            ):
                cache[setting] = resolve(
                    reference, vault, vault_name, now, vault_access=self.vault_access
                )
        return dict(cache)

    def value(
        self,
        setting: str,
        vault: Mapping[str, Sequence[SecretVersion]],
        vault_name: str,
        now: datetime,
    ) -> str | None:
        """What the site's code reads for `setting` now (the cached value)."""
        resolution = self.resolutions(vault, vault_name, now).get(setting)
        if resolution is None:
            return self.app_settings.get(setting)
        return resolution.value


@dataclass(frozen=True)
class ParsedReference:
    vault_name: str | None
    secret_name: str | None
    secret_version: str | None


def parse_reference(reference: str) -> ParsedReference | None:
    """The vault, secret and version a reference names, or None when it is malformed."""
    match = _REFERENCE.match(reference.strip())
    if match is None:
        return None
    body = match["body"].strip()
    if body.lower().startswith("secreturi="):
        url = urlsplit(body.split("=", 1)[1].strip())
        parts = [p for p in url.path.split("/") if p]
        if url.scheme != "https" or not url.hostname or len(parts) not in (2, 3):
            return None
        if parts[0].lower() != "secrets":
            return None
        vault = url.hostname.split(".", 1)[0].lower()
        return ParsedReference(vault, parts[1], parts[2] if len(parts) == 3 else None)
    pairs: dict[str, str] = {}
    for item in body.split(";"):
        key, sep, value = item.partition("=")
        if not sep:
            return None
        pairs[key.strip().lower()] = value.strip()
    if not pairs.get("vaultname") or not pairs.get("secretname"):
        return None
    return ParsedReference(
        pairs["vaultname"].lower(), pairs["secretname"], pairs.get("secretversion") or None
    )


def resolve(
    reference: str,
    vault: Mapping[str, Sequence[SecretVersion]],
    vault_name: str,
    now: datetime,
    *,
    vault_access: bool = True,
) -> Resolution:
    """Resolves a reference through the sandbox's Key Vault, as App Service does."""
    parsed = parse_reference(reference)
    if parsed is None:
        return Resolution(
            reference, "InvalidSyntax", None, None, None, None,
            "The reference is not in a supported format.", now,
        )  # fmt: skip

    def failed(status: str, details: str) -> Resolution:
        return Resolution(
            reference, status, parsed.vault_name, parsed.secret_name,
            parsed.secret_version, None, details, now,
        )  # fmt: skip

    if parsed.vault_name != vault_name.lower():
        return failed("VaultNotFound", f"Key Vault '{parsed.vault_name}' was not found.")
    if not vault_access:
        return failed(
            "AccessToKeyVaultDenied",
            "The site's identity was denied access to the secret: grant it Key Vault "
            "Secrets User on the vault.",
        )
    versions = list(vault.get((parsed.secret_name or "").lower(), ()))
    if not versions:
        return failed("SecretNotFound", f"Secret '{parsed.secret_name}' was not found.")
    if parsed.secret_version is not None:
        wanted = parsed.secret_version.lower()
        chosen = next((v for v in versions if v.version.lower() == wanted), None)
        if chosen is None:
            return failed(
                "SecretVersionNotFound",
                f"Version '{parsed.secret_version}' of secret '{parsed.secret_name}' was not found.",
            )
    else:
        chosen = versions[-1]  # Key Vault serves the newest version as "latest"
    if not chosen.enabled:
        # Key Vault refuses to read a disabled version (403 "Operation get is not allowed
        # on a disabled secret"), and App Service does not fall back to an older one.
        return failed("OtherReasons", f"Version '{chosen.version}' of the secret is disabled.")
    return Resolution(
        reference, "Resolved", parsed.vault_name, parsed.secret_name, parsed.secret_version,
        chosen.version, RESOLVED_DETAILS, now, chosen.value,
    )  # fmt: skip
