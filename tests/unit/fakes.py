"""In-memory fakes of the engine's three ports (rotation/core/ports.py), with injectable faults.

They keep just enough state to check the invariants after a run: which credentials each app
has, which Key Vault versions exist and are enabled, which secrets were issued. A `Fault`
makes the n-th call of one method raise a chosen exception, before or after its effect
(a write that landed and then failed, as a dropped response does).
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import SecretStr

from rotation.errors import RotationError
from rotation.model import (
    CREDENTIAL_PREFIX,
    AppRecord,
    Credential,
    DeletedName,
    ManagedApp,
    NewSecret,
    PasswordPolicies,
    VaultEntry,
    VaultVersion,
)

MARKER = "TEXT-THAT-MUST-NOT-REACH-A-REPORT"
OUR_MESSAGE = "the service kept failing (an operator's message)"


@dataclass
class Fault:
    method: str  # e.g. "remove_password"
    call: int  # fails the call with this index (0 = the first call of `method`)
    error: type[Exception]
    after: bool = False  # raise after the call's effect took place
    hit_app: str | None = None  # set when it fires
    fired: bool = False

    def exception(self) -> Exception:
        if issubclass(self.error, RotationError):
            return self.error(OUR_MESSAGE)  # ours: written for operators, shown in reports
        if self.error is KeyError:
            return KeyError(MARKER)
        try:
            return self.error(MARKER)
        except TypeError:
            return self.error()


@dataclass
class Faults:
    planned: list[Fault] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def check(self, method: str, app_id: str | None, *, after: bool) -> None:
        index = self.calls.get(method, 0)
        if not after:
            self.calls[method] = index + 1
        else:
            index -= 1
        for fault in self.planned:
            if fault.method == method and fault.call == index and fault.after == after:
                fault.hit_app = app_id
                fault.fired = True
                raise fault.exception()


class FakeDirectory:
    """Entra ID: applications and their password credentials."""

    def __init__(self, faults: Faults, now: datetime) -> None:
        self.faults = faults
        self.now = now
        self.credentials: dict[str, list[Credential]] = {}  # app id -> credentials
        self.issued: dict[str, str] = {}  # key id -> secret text
        self.policies = PasswordPolicies()  # the tenant's app-management policies

    def add_app(self, app_id: str, *credentials: Credential) -> None:
        self.credentials[app_id] = list(credentials)

    def record(self, app_id: str) -> AppRecord:
        return AppRecord(f"obj-{app_id}", app_id, app_id, tuple(self.credentials[app_id]))

    async def read_apps(self, app_ids: Collection[str]) -> dict[str, AppRecord]:
        self.faults.check("read_apps", None, after=False)
        found = {a.lower(): self.record(a) for a in app_ids if a in self.credentials}
        self.faults.check("read_apps", None, after=True)
        return found

    async def add_password(self, record: AppRecord, display_name: str, end: datetime) -> NewSecret:
        self.faults.check("add_password", record.app_id, after=False)
        credential = Credential(str(uuid.uuid4()), display_name, self.now, end)
        value = secrets.token_urlsafe(30)
        self.credentials[record.app_id].append(credential)
        self.issued[credential.key_id] = value
        self.faults.check("add_password", record.app_id, after=True)
        return NewSecret(credential, SecretStr(value))

    async def password_policies(self) -> PasswordPolicies:
        self.faults.check("password_policies", None, after=False)
        return self.policies

    async def remove_password(self, record: AppRecord, key_id: str) -> bool:
        self.faults.check("remove_password", record.app_id, after=False)
        before = self.credentials[record.app_id]
        self.credentials[record.app_id] = [c for c in before if c.key_id != key_id]
        self.faults.check("remove_password", record.app_id, after=True)
        return True


class FakeStore:
    """Key Vault: one secret per app, versions newest first."""

    def __init__(self, faults: Faults, now: datetime) -> None:
        self.faults = faults
        self.now = now
        self.versions: dict[str, list[VaultVersion]] = {}
        self.app_of: dict[str, str] = {}  # secret name -> app id

    def put(self, app_id: str, name: str, key_id: str, age: timedelta) -> None:
        self.app_of[name] = app_id
        version = VaultVersion(uuid.uuid4().hex, key_id, self.now - age, True)
        self.versions.setdefault(name, []).insert(0, version)

    def current(self, name: str) -> VaultVersion | None:
        versions = self.versions.get(name, [])
        return versions[0] if versions else None

    async def read_current(self) -> dict[str, VaultVersion]:
        self.faults.check("read_current", None, after=False)
        return {name.lower(): versions[0] for name, versions in self.versions.items() if versions}

    async def mark_settled(self, name: str, current: VaultVersion) -> None:
        self.faults.check("mark_settled", self.app_of.get(name), after=False)
        self.versions[name] = [
            dataclasses.replace(v, settled=True) if v.version == current.version else v
            for v in self.versions.get(name, [])
        ]

    async def read(self, name: str) -> VaultEntry:
        self.faults.check("read", self.app_of.get(name), after=False)
        return VaultEntry(name, tuple(self.versions.get(name, [])))

    async def promote(
        self,
        app: ManagedApp,
        secret: NewSecret,
        *,
        smtp_host: str,
        smtp_port: int,
        write_username: bool,
    ) -> VaultVersion:
        self.faults.check("promote", app.app_id, after=False)
        self.app_of[app.secret_name] = app.app_id
        self.put(app.app_id, app.secret_name, secret.credential.key_id, timedelta(0))
        self.faults.check("promote", app.app_id, after=True)
        return self.versions[app.secret_name][0]

    async def disable(self, name: str, versions: Collection[str]) -> None:
        self.faults.check("disable", self.app_of.get(name), after=False)
        self.versions[name] = [
            VaultVersion(v.version, v.key_id, v.created, False) if v.version in versions else v
            for v in self.versions.get(name, [])
        ]

    async def deleted(self, name: str) -> DeletedName | None:
        owner = self.app_of.get(name) or self.app_of.get(name.removesuffix("-username"))
        self.faults.check("deleted", owner, after=False)
        return None  # no soft-deleted names here

    async def deleted_names(self) -> dict[str, DeletedName]:
        self.faults.check("deleted_names", None, after=False)
        return {}


class FakeVerifier:
    """SMTP AUTH: accepts exactly the secrets the directory issued and still holds."""

    def __init__(self, faults: Faults, directory: FakeDirectory) -> None:
        self.faults = faults
        self.directory = directory
        self.usernames: dict[str, str] = {}  # username -> app id

    async def verify(self, username: str, password: SecretStr, timeout: float) -> int:
        self.faults.check("verify", self.usernames.get(username), after=False)
        return 1


def our_credential(now: datetime, *, age: timedelta, left: timedelta) -> Credential:
    return Credential(str(uuid.uuid4()), f"{CREDENTIAL_PREFIX} old", now - age, now + left)
