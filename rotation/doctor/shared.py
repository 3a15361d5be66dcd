"""What doctor's checks share: the `Check` each reports, the `Site` its fixes name, and the
`Probe` the checks read through (and pass findings on in).

Its own module so that doctor.py (the entry), doctor_checks.py and doctor_apps.py import it
and not each other in a circle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from rotation.settings import Settings

if TYPE_CHECKING:  # the adapters are built by doctor.diagnose; here they are only types
    from azure.core.credentials_async import AsyncTokenCredential

    from rotation.azure.acs import ArmReader
    from rotation.azure.app_service import WebSiteReader
    from rotation.azure.blob_lease import BlobLeases
    from rotation.azure.entra import EntraAdapter
    from rotation.azure.key_vault import VaultAdapter
    from rotation.azure.smtp import SmtpVerifier

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it went, and the command that fixes it."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    """Where the rotator runs, so that fix commands name the real Function App."""

    function_app: str = "<function app>"
    resource_group: str = "<resource group>"
    in_azure: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Site:
        """App Service sets WEBSITE_SITE_NAME and WEBSITE_RESOURCE_GROUP in every app."""
        name = environ.get("WEBSITE_SITE_NAME")
        if not name:
            return cls()
        return cls(name, environ.get("WEBSITE_RESOURCE_GROUP") or "<resource group>", True)

    def set_setting(self, names: Sequence[str]) -> str:
        """The command that sets these settings where the rotator reads them."""
        pairs = " ".join(f"{n}=<value>" for n in names) or "ROTATION_<NAME>=<value>"
        if self.in_azure:
            return (
                f"az functionapp config appsettings set -g {self.resource_group} "
                f"-n {self.function_app} --settings {pairs}"
            )
        return f"export {pairs}"


@dataclass
class Probe:
    """The clients doctor reads through, and what earlier checks found out."""

    settings: Settings
    site: Site
    credential: AsyncTokenCredential
    entra: EntraAdapter
    arm: ArmReader
    vault: VaultAdapter
    verifier: SmtpVerifier
    web: WebSiteReader | None = None  # with ROTATION_CONSUMERS_ENABLED only
    leases: BlobLeases | None = None  # with ROTATION_LEASE_BLOB_URL only
    claims: dict[str, Any] = field(default_factory=dict)
    #: ACS resource id (lower) -> principal id -> names of its roles that allow SMTP
    holders: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    sp_app_ids: dict[str, str] = field(default_factory=dict)  # principal id -> app id

    @property
    def me(self) -> str:
        return str(self.claims.get("oid") or "<object id of the rotator's identity>")

    @property
    def vault_name(self) -> str:
        if self.settings.key_vault_resource_id:
            return self.settings.key_vault_resource_id.rsplit("/", 1)[-1]
        return (urlsplit(self.settings.key_vault_url).hostname or "<vault>").split(".")[0]

    @property
    def vault_scope(self) -> str:
        return self.settings.key_vault_resource_id or (
            f"$(az keyvault show -n {self.vault_name} --query id -o tsv)"
        )
