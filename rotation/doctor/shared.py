"""What doctor's checks share: the `Check` each reports, the `Site` its fixes name, the
`Clients` it reads through (rotation/azure/clients.py), and the `Facts` gathered once before any check runs.

Facts and clients are frozen: a check reads them and returns its findings, it never leaves
anything behind for another check, so checks run at once and in any order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from rotation.azure.clients import Clients
from rotation.errors import RotationError
from rotation.model import AppRecord
from rotation.run.discovery import Survey
from rotation.settings import Settings

__all__ = ["Check", "Clients", "Facts", "Site", "Token"]
Status = Literal["ok", "warn", "fail"]
GRAPH, ARM, KEYVAULT = "graph", "arm", "keyvault"
OWNED_BY = "Application.ReadWrite.OwnedBy"
READ_WRITE_ALL = "Application.ReadWrite.All"
#: How long Azure takes to apply a role assignment (Azure RBAC troubleshooting, "Role
#: assignment changes are not being detected": up to 10 minutes).
RBAC_DELAY = "Azure applies a new role assignment within about 10 minutes"


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
        """The command that sets these settings where the rotator reads them: in Azure, the
        lasting way first (an app setting set by hand is put back at the next `azd provision`),
        then the one that works at once."""
        pairs = " ".join(f"{n}=<value>" for n in names) or "ROTATION_<NAME>=<value>"
        if not self.in_azure:
            return f"export {pairs}"
        by_hand = (
            f"az functionapp config appsettings set -g {self.resource_group} "
            f"-n {self.function_app} --settings {pairs}"
        )
        if any(n in NOT_FROM_AZD for n in names):
            return by_hand
        deployed = [n for n in names if n in SET_BY_AZD and n not in AZD_VARIABLE]
        variables = [AZD_VARIABLE.get(n, n) for n in names if n not in deployed]
        if not names:
            variables = ["ROTATION_<NAME>"]
        steps = [*(f"azd env set {v} <value>" for v in variables), "azd provision"]
        why = f" (the deployment sets {', '.join(deployed)} itself)" if deployed else ""
        return f"{' && '.join(steps)}{why}; or at once, until the next provision: {by_hand}"


#: Settings the azd deployment writes itself, again at each `azd provision` (docs/deploy.md,
#: "The deployment sets these settings itself"); two of them from an azd variable of another
#: name (`AZD_VARIABLE`). Every other setting the deployment passes comes from the azd variable
#: of its own name. tests/infra/test_deploy_doc.py holds all three to infra/.
SET_BY_AZD = frozenset(
    {
        "ROTATION_KEY_VAULT_URL",
        "ROTATION_KEY_VAULT_RESOURCE_ID",
        "ROTATION_TENANT_ID",
        "ROTATION_API_CLIENT_ID",
        "ROTATION_CLOUD",
        "ROTATION_LOG_FORMAT",
        "ROTATION_KEY_VAULT_EVENTS",
        "ROTATION_LEASE_BLOB_URL",
        "ROTATION_LEASE_CONTAINER",
    }
)
AZD_VARIABLE = {
    "ROTATION_API_CLIENT_ID": "EXISTING_API_CLIENT_ID",
    "ROTATION_KEY_VAULT_EVENTS": "KEY_VAULT_EVENTS",
}
#: Settings the deployment neither passes nor sets: only the app setting changes them.
NOT_FROM_AZD = frozenset({"ROTATION_LEASE_SECONDS", "ROTATION_CA_BUNDLE"})


@dataclass(frozen=True, slots=True)
class Token:
    """What the credential gave for one service: the token's claims, or why not."""

    service: str
    resource: str
    setting: str  # the settings that choose the resource, for the fix
    claims: Mapping[str, Any] | None = None
    error: str | None = None

    def moment(self, claim: str) -> datetime | None:
        """A time claim (``iat``, ``exp``) as a UTC datetime."""
        value = (self.claims or {}).get(claim)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Facts:
    """What doctor learned before any check ran, read once, then only read from."""

    settings: Settings
    site: Site
    tokens: tuple[Token, ...]
    survey: Survey
    #: The Key Vault data actions ARM says the identity holds at the vault, or why it would
    #: not say (None: ROTATION_KEY_VAULT_RESOURCE_ID is not set).
    vault_actions: frozenset[str] | RotationError | None = None
    #: The managed apps' Entra records by app id, or why Graph would not give them.
    records: Mapping[str, AppRecord] | RotationError = field(default_factory=dict)

    def token(self, service: str) -> Token:
        return next(t for t in self.tokens if t.service == service)

    @property
    def graph_roles(self) -> list[str]:
        roles = (self.token(GRAPH).claims or {}).get("roles")
        return sorted(str(r) for r in roles) if isinstance(roles, list) else []

    @property
    def me(self) -> str:
        """The rotator's object id (the ``oid`` of its tokens), named in every fix."""
        for token in self.tokens:
            oid = (token.claims or {}).get("oid")
            if isinstance(oid, str) and oid:
                return oid
        return "<object id of the rotator's identity>"

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

    def vault_fix(self) -> str:
        return (
            f'az role assignment create --assignee {self.me} --role "Key Vault Secrets Officer" '
            f"--scope {self.vault_scope}"
        )

    def reader_fix(self, scope: str) -> str:
        return f'az role assignment create --assignee {self.me} --role "Reader" --scope {scope}'

    def grant_graph_fix(self) -> str:
        return f"infra/scripts/grant-graph-permission.sh --principal-id {self.me}"
