"""What the engine and discovery need from the outside world, as protocols.

The adapters (entra.py, vault.py, smtp_check.py, arm.py, web.py, lease.py) satisfy these
structurally; the engine and discovery depend on nothing else, which keeps them free of SDK
types (tests/unit/test_layering.py checks discovery's imports).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from pydantic import SecretStr

from rotation.model import (
    AcsResource,
    AppRecord,
    ConsumerReference,
    DeletedName,
    ManagedApp,
    NewSecret,
    PasswordPolicies,
    PrincipalEntry,
    RoleAssignmentEntry,
    RoleDefinitionEntry,
    SmtpUsernameEntry,
    VaultEntry,
    VaultVersion,
)


class Directory(Protocol):
    """Entra ID applications and their password credentials (Microsoft Graph)."""

    async def read_apps(self, app_ids: Collection[str]) -> dict[str, AppRecord]: ...

    async def add_password(
        self, record: AppRecord, display_name: str, end: datetime
    ) -> NewSecret: ...

    async def remove_password(self, record: AppRecord, key_id: str) -> bool: ...

    async def password_policies(self) -> PasswordPolicies:
        """The tenant's app-management policies; what cannot be read is named in `unread`."""
        ...


class SecretStore(Protocol):
    """Where consumers read the SMTP password (Key Vault)."""

    async def read_current(self) -> dict[str, VaultVersion]: ...

    async def read(self, name: str) -> VaultEntry: ...

    async def promote(
        self,
        app: ManagedApp,
        secret: NewSecret,
        *,
        smtp_host: str,
        smtp_port: int,
        write_username: bool,
    ) -> VaultVersion: ...

    async def disable(self, name: str, versions: Collection[str]) -> None: ...

    async def deleted(self, name: str) -> DeletedName | None:
        """The soft-deleted secret holding `name`, or None when the name is free."""
        ...

    async def deleted_names(self) -> dict[str, DeletedName]:
        """Every soft-deleted secret of the vault, by lower-case name (one listing)."""
        ...

    async def mark_settled(self, name: str, current: VaultVersion) -> None: ...


class Verifier(Protocol):
    """A live SMTP AUTH handshake with a username and password."""

    async def verify(self, username: str, password: SecretStr, timeout: float) -> int: ...


class AcsReader(Protocol):
    """ACS resources, their SMTP Usernames and who holds which role on them (ARM, read only)."""

    async def acs_resources(
        self, subscription_ids: Iterable[str], resource_ids: Iterable[str] = ()
    ) -> list[AcsResource]: ...

    async def smtp_usernames(self, resource: AcsResource) -> list[SmtpUsernameEntry]: ...

    async def role_assignments(self, resource: AcsResource) -> list[RoleAssignmentEntry]: ...

    async def role_definition(self, definition_id: str) -> RoleDefinitionEntry: ...


class ServicePrincipalDirectory(Protocol):
    """What discovery needs from Entra: who each role-holding service principal is."""

    async def service_principals(
        self, object_ids: Collection[str]
    ) -> dict[str, PrincipalEntry]: ...


class WebSites(Protocol):
    """App Service / Functions sites (and slots) and their Key Vault references (ARM)."""

    async def list_sites(self, subscription_id: str) -> list[str]: ...

    async def list_slots(self, site_id: str) -> list[str]: ...

    async def references(self, site_id: str) -> list[ConsumerReference]: ...

    async def refresh(self, site_id: str) -> None: ...


class Leases(Protocol):
    """One holder per app across every instance and process (a blob lease in Azure)."""

    async def ready(self) -> None:
        """Raises LeaseStoreUnavailable (naming the store) when no lease can be taken."""
        ...

    def hold(self, app_id: str, run_id: str | None = None) -> AbstractAsyncContextManager[None]:
        """Holds the app's lease for the block (renewed meanwhile, released after), noting
        `run_id` as its holder; raises LeaseTaken at once when another holder has it (with
        that holder's run id, when known)."""
        ...
