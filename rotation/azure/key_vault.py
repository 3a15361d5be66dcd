"""Key Vault adapter: the current entry of an app's secret, promotion, and retirement.

Consumers read the SMTP password from Key Vault, so this is where a rotation becomes
visible. The adapter reads version *properties* only (never a value), writes a new version
with tags that tie it to the Entra credential (``key-id``) and the SMTP endpoint, and
disables versions whose credential is gone. Throttling and transient failures (429, 5xx
with Retry-After) are retried by azure-core's retry policy, configured here, not
re-implemented.

Errors come out as rotation.errors types. A write Key Vault *refused* (4xx) is a
VaultWriteFailed: it certainly did not land, so the engine may roll back at once. A write
whose fate is unknown (retries exhausted, connection lost) is a ServiceUnavailable: the
engine then reads Key Vault to find out whether it landed before it rolls anything back.
No message ever contains a secret value.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    map_error,
)
from azure.core.rest import HttpRequest
from azure.keyvault.secrets import SecretProperties
from azure.keyvault.secrets.aio import SecretClient
from pydantic import SecretStr

from rotation.azure import vault_items
from rotation.azure.errors import RETRY, error_code, is_refusal, reason
from rotation.azure.trust import connection_options
from rotation.azure.vault_items import SETTLED_TAG
from rotation.errors import (
    GRANT_DELAY,
    InvalidRequest,
    MalformedAnswer,
    PermissionDenied,
    RotationError,
    SecretNameDeleted,
    ServiceUnavailable,
    VaultWriteFailed,
)
from rotation.model import (
    MANAGED_BY,
    USERNAME_SUFFIX,
    DeletedName,
    ManagedApp,
    NewSecret,
    VaultEntry,
    VaultVersion,
)
from rotation.settings import Settings
from rotation.telemetry.redaction import register_secret

PASSWORD_CONTENT_TYPE = "smtp-password"  # noqa: S105 (a content type, not a password)
USERNAME_CONTENT_TYPE = "smtp-username"
#: Key Vault's inner error codes of a 409 on a name a soft-deleted secret holds (the .NET
#: SDK's Sample4, Azure.Security.KeyVault.Secrets, checks these two).
DELETED_BUT_RECOVERABLE = "ObjectIsDeletedButRecoverable"
BEING_DELETED = "ObjectIsBeingDeleted"
#: Key Vault's inner error code of a 403 on reading a disabled version: the secret's state,
#: not a missing permission (recorded: azure-sdk-assets, js/sdk/keyvault/keyvault-secrets
#: recording_cant_get_a_disabled_secret.json; tests/recorded/data/kv-get-disabled.json).
SECRET_DISABLED = "SecretDisabled"  # noqa: S105 (an error code, not a password)
#: Key Vault's largest page; one page holds every version of a normal app's secret.
PAGE_SIZE = 25
#: GetSecret's answer carries a value this process may not know yet (a version someone else
#: wrote): azure-core's network trace (ROTATION_HTTP_LOGGING) would log that body before the
#: value could be registered for redaction, so these calls are never traced.
UNTRACED = False
_EPOCH = datetime.fromtimestamp(0, UTC)
_ERRORS = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


class VaultAdapter:
    """The rotator's view of one Key Vault (satisfies rotation.core.ports.SecretStore)."""

    def __init__(self, client: SecretClient, vault_url: str) -> None:
        self._client = client
        self.vault_url = vault_url
        # The SDK learns the vault's tenant from a 401 challenge to an unauthenticated
        # request, then caches it; requests started before that all pay the extra round
        # trip (up to max_concurrency 401s per run, measured in bench/). The first read
        # therefore goes alone.
        self._challenge_known = False
        self._first_read = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credential: AsyncTokenCredential,
        *,
        retry: Mapping[str, float] = RETRY,
    ) -> VaultAdapter:
        """`retry` holds azure-core RetryPolicy options (tests and benches shorten them)."""
        client = SecretClient(
            settings.key_vault_url, credential, **retry, **connection_options(settings)
        )
        return cls(client, settings.key_vault_url)

    async def read_current(self) -> dict[str, VaultVersion]:
        """Every secret's current version, by lower-case name, from one paged listing of
        the vault (GetSecrets: 25 secrets a request, no values).

        GetSecrets gives each secret's current attributes, tags and content type under its
        base id, without the version id (azure-rest-api-specs, keyvault secrets.json), so
        the version is known only where the settled mark names it. The pages go through
        the client's own pipeline (challenge auth, retries) with `send_request`, the SDK's
        public way to make a raw call, and are read as JSON: building the SDK's models
        cost 0.2 ms per secret, half of a 10,000-app plan (profiled with py-spy).
        """
        current: dict[str, VaultVersion] = {}
        with self._mapped(None, "list"):
            async for item in self._items(f"/secrets?maxresults={PAGE_SIZE}", "list the secrets"):
                found = vault_items.listed(item, "the vault's secrets")
                if found is not None:
                    current[found[0].lower()] = found[1]
        self._challenge_known = True
        return current

    async def _items(self, url: str | None, what: str) -> AsyncIterator[object]:
        """The items of a Key Vault listing, page by page (nextLink), as JSON; a page that
        cannot be read as a whole raises MalformedAnswer naming what was being read."""
        while url:
            response = await self._client.send_request(HttpRequest("GET", url))
            if response.status_code != 200:
                map_error(response.status_code, response, _ERRORS)
                raise HttpResponseError(response=response)  # parses Key Vault's error
            try:
                page = response.json()
            except ValueError:
                raise MalformedAnswer(
                    f"Key Vault answered with something other than JSON to {what}"
                ) from None
            value = page.get("value") if isinstance(page, dict) else None
            link = page.get("nextLink") if isinstance(page, dict) else None
            if not isinstance(value, list) or not isinstance(link, str | None):
                raise MalformedAnswer(
                    f"Key Vault answered a page that cannot be read to {what} in "
                    f"{self.vault_url}: its 'value' is not a list, or its 'nextLink' not a link"
                )
            for item in value:
                yield item
            url = link

    async def read(self, name: str) -> VaultEntry:
        """Every version's properties, newest first (one list call); none if the secret is new."""
        if not self._challenge_known:
            async with self._first_read:
                if not self._challenge_known:
                    entry = await self._read(name)
                    self._challenge_known = True
                    return entry
        return await self._read(name)

    async def _read(self, name: str) -> VaultEntry:
        versions: list[VaultVersion] = []
        url = f"/secrets/{quote(name, safe='')}/versions?maxresults={PAGE_SIZE}"
        with self._mapped(name, "read"):
            try:
                async for item in self._items(url, f"list the versions of secret '{name}'"):
                    versions.append(vault_items.version(item, name))
            except ResourceNotFoundError:
                return VaultEntry(name, ())
        # Key Vault lists versions by id, not age, so sort by created. Its times are whole
        # seconds: when the newest two tie (two promotions within a second, as two racing
        # runs can make), only Key Vault itself can say which one "latest" serves, and the
        # retire step must know it exactly (I1). Then, and only then, ask it.
        versions.sort(key=lambda v: v.created, reverse=True)
        if len(versions) > 1 and versions[0].created == versions[1].created:
            latest = await self._latest_version(name)
            versions.sort(key=lambda v: (v.created, v.version == latest), reverse=True)
        return VaultEntry(name, tuple(versions))

    async def _latest_version(self, name: str) -> str:
        """The version id Key Vault serves as latest. Reading it returns the value too,
        which is registered for redaction and dropped at once."""
        with self._mapped(name, "read"):
            secret = await self._client.get_secret(name, logging_enable=UNTRACED)
        register_secret(secret.value)
        return secret.properties.version or ""

    async def promote(
        self,
        app: ManagedApp,
        secret: NewSecret,
        *,
        smtp_host: str,
        smtp_port: int,
        write_username: bool,
    ) -> VaultVersion:
        """Writes the verified password as the new current version of the app's secret.

        The companion ``<name>-username`` secret is written first, when asked: if that
        fails nothing has been promoted and the engine can roll back safely (I1).
        """
        common = {"app-id": app.app_id, "managed-by": MANAGED_BY}
        if write_username:
            await self._set(
                app.secret_name + USERNAME_SUFFIX,
                app.smtp_username,
                content_type=USERNAME_CONTENT_TYPE,
                tags={**common, "smtp-username": app.smtp_username},
            )
        properties = await self._set(
            app.secret_name,
            secret.value.get_secret_value(),
            content_type=PASSWORD_CONTENT_TYPE,
            expires_on=secret.credential.end,
            tags={
                **common,
                "key-id": secret.credential.key_id,
                "smtp-username": app.smtp_username,
                "smtp-host": smtp_host,
                "smtp-port": str(smtp_port),
            },
        )
        return _version(properties)

    async def disable(self, name: str, versions: Collection[str]) -> None:
        """Disables versions whose credential was removed, so nobody is served a dead password."""
        for version in versions:
            with self._mapped(name, "disable", write=True):
                try:
                    await self._client.update_secret_properties(name, version, enabled=False)
                except ResourceNotFoundError:
                    continue  # gone already: nothing left to serve

    async def deleted(self, name: str) -> DeletedName | None:
        """The soft-deleted secret holding `name` (GetDeletedSecret), or None if none does.

        While a deletion is still running Key Vault answers 404 here too; the write then
        gets 409 ObjectIsBeingDeleted, which `_mapped` turns into SecretNameDeleted as well.
        """
        with self._mapped(name, "read the deleted state of"):
            try:
                found = await self._client.get_deleted_secret(name)
            except ResourceNotFoundError:
                return None
        return DeletedName(name, found.deleted_date, found.scheduled_purge_date)

    async def deleted_names(self) -> dict[str, DeletedName]:
        """Every soft-deleted secret of the vault by lower-case name (GetDeletedSecrets, paged:
        one request per 25). A run asks once instead of twice per first-time app."""
        found: dict[str, DeletedName] = {}
        with self._mapped("*", "list the deleted secrets"):
            async for item in self._client.list_deleted_secrets(max_page_size=PAGE_SIZE):
                if item.name:
                    found[item.name.lower()] = DeletedName(
                        item.name, item.deleted_date, item.scheduled_purge_date
                    )
        return found

    async def read_value(self, name: str, version: str) -> SecretStr:
        """One version's value (GetSecret by version), for a read-only SMTP AUTH check of a
        hand-written version (drift). Registered for redaction at once; held as a SecretStr."""
        with self._mapped(name, "read"):
            secret = await self._client.get_secret(name, version, logging_enable=UNTRACED)
        value = secret.value or ""
        register_secret(value)
        return SecretStr(value)

    async def tag(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        """Replaces one version's tags (UpdateSecret: no new version, so no new event)."""
        with self._mapped(name, "tag", write=True):
            await self._client.update_secret_properties(name, version, tags=dict(tags))

    async def mark_settled(self, name: str, current: VaultVersion) -> None:
        """Tags the current version as settled (its tags are rewritten whole, so the others
        are sent again). A write, made once per rotation, after its last retirement."""
        tags = {**current.tags, SETTLED_TAG: current.version}
        with self._mapped(name, "tag", write=True):
            await self._client.update_secret_properties(name, current.version, tags=tags)

    async def close(self) -> None:
        await self._client.close()

    # ----- helpers -----------------------------------------------------------------------

    async def _set(self, name: str, value: str, **kwargs: Any) -> SecretProperties:
        with self._mapped(name, "write", write=True):
            secret = await self._client.set_secret(name, value, **kwargs)
        return secret.properties

    @contextmanager
    def _mapped(self, name: str | None, verb: str, *, write: bool = False) -> Iterator[None]:
        """Translates a failed Key Vault call into a rotation error an operator can act on
        (`name` None: the vault-wide listing). Our own errors pass through untouched."""
        try:
            yield
        except RotationError:
            raise
        except Exception as exc:  # translated, never swallowed
            self._translate(exc, name, verb, write)
            raise

    def _translate(self, exc: Exception, name: str | None, verb: str, write: bool) -> None:
        where = (
            f"secret '{name}' in {self.vault_url}" if name else f"the secrets of {self.vault_url}"
        )
        status = exc.status_code if isinstance(exc, HttpResponseError) else None
        if isinstance(exc, ClientAuthenticationError) and status in (None, 401):
            raise PermissionDenied(
                f"could not {verb} {where}: the rotator's identity failed to authenticate to "
                f"Key Vault ({_reason(exc)}); check its managed identity and tenant"
            ) from None
        disabled = isinstance(exc, HttpResponseError) and _inner_code(exc) == SECRET_DISABLED
        if disabled and status == 403 and name:
            error = VaultWriteFailed if write else InvalidRequest
            raise error(self._disabled(name, verb, where)) from None
        if isinstance(exc, HttpResponseError) and status == 403:
            message = (
                f"Key Vault refused to {verb} {where} (403 {_code(exc)}): grant the rotator's "
                f"identity the 'Key Vault Secrets Officer' role on {self.vault_url} (or the "
                f"custom secret writer role of infra/); {GRANT_DELAY}"
            )
            raise (VaultWriteFailed if write else PermissionDenied)(message) from None
        if isinstance(exc, HttpResponseError) and status == 409 and name:
            inner = _inner_code(exc)
            if inner in (DELETED_BUT_RECOVERABLE, BEING_DELETED):
                raise SecretNameDeleted(
                    self.vault_url, name, being_deleted=inner == BEING_DELETED
                ) from None
        if isinstance(exc, HttpResponseError) and status is not None:
            if is_refusal(status):
                message = (
                    f"Key Vault refused to {verb} {where} ({status} {_code(exc)}: {_reason(exc)})"
                )
                raise (VaultWriteFailed if write else InvalidRequest)(message) from None
            raise ServiceUnavailable(
                f"Key Vault kept failing to {verb} {where} after retries "
                f"({status} {_code(exc)}); the next run tries again"
            ) from None
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            raise ServiceUnavailable(
                f"could not reach Key Vault to {verb} {where} ({type(exc).__name__}: "
                f"{_reason(exc)}); check ROTATION_KEY_VAULT_URL, network access and CA trust"
            ) from None

    def _disabled(self, name: str, verb: str, where: str) -> str:
        """A read refused because the version is disabled: no permission is missing."""
        vault = (urlsplit(self.vault_url).hostname or self.vault_url).split(".", 1)[0]
        return (
            f"Key Vault refused to {verb} {where}: its current version is disabled (403 "
            f"SecretDisabled), so Key Vault serves no value for it and will not say which of "
            f"the versions made in the same second is current; enable it (`az keyvault secret "
            f"set-attributes --vault-name {vault} --name {name} --enabled true`) if it should "
            f"be served, or let the next rotation write a new version"
        )


def _version(properties: SecretProperties) -> VaultVersion:
    tags = dict(properties.tags or {})
    mark = tags.get(SETTLED_TAG)
    return VaultVersion(
        version=properties.version or "",
        key_id=tags.get("key-id"),
        created=properties.created_on or _EPOCH,
        enabled=bool(properties.enabled),
        expires=properties.expires_on,
        smtp_username=tags.get("smtp-username"),
        settled=mark is not None and mark == properties.version,
        tags=tags,
    )


def _code(exc: HttpResponseError) -> str:
    return error_code(exc) or str(exc.reason or "error")


def _inner_code(exc: HttpResponseError) -> str | None:
    error = getattr(exc, "error", None)
    inner = getattr(error, "innererror", None) or {}
    code = inner.get("code") if isinstance(inner, dict) else None
    return str(code) if code else None


def _reason(exc: Exception) -> str:
    """The service's own words, first line only (Key Vault never echoes a value)."""
    return reason(exc, code=False)
