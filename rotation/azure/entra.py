"""Microsoft Graph adapter: read applications, add and remove their passwords.

Built on msgraph-sdk's GraphServiceClient (async). Retries of 429/503/504 are the SDK's
own RetryHandler (it honours Retry-After), configured here, not re-implemented; only
transport failures (a dropped connection) of idempotent calls are retried here, because
the SDK does not. `addPassword` is the exception: kiota's RetryHandler retries POST too
(``DEFAULT_ALLOWED_METHODS`` in kiota_http/middleware/retry_handler.py), and a 504 can
come after Entra created the secret, so a retry would add a second secret whose text
nobody heard. That one call goes out with a per-request ``RetryHandlerOption`` of zero
retries. Only a 429 is retried for it, here, after its Retry-After: Graph refuses a
throttled request without doing it (learn.microsoft.com/graph/throttling). A 503 or 504
goes to the engine, which fails the app; a secret created unheard is an orphan (I5). Listings are read as JSON pages through the SDK's own request
builders and adapter (see `_pages`: the SDK's model parsing is too slow for big tenants).
The adapter returns rotation.model types and raises rotation.errors types whose
messages say what to do; a secret's text never appears in either.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import stamina
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.applications.applications_request_builder import (
    ApplicationsRequestBuilder,
)
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.applications.item.owners.owners_request_builder import OwnersRequestBuilder
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.policies.app_management_policies.app_management_policies_request_builder import (
    AppManagementPoliciesRequestBuilder,
)
from msgraph.generated.policies.app_management_policies.item.applies_to.applies_to_request_builder import (
    AppliesToRequestBuilder,
)
from msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder import (
    AppRoleAssignedToRequestBuilder,
)
from msgraph.generated.service_principals.service_principals_request_builder import (
    ServicePrincipalsRequestBuilder,
)
from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
    ServicePrincipalsWithAppIdRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.authentication import AzureIdentityAuthenticationProvider
from pydantic import SecretStr, TypeAdapter, ValidationError

from rotation.azure import graph_items
from rotation.azure.errors import (
    error_code,
    first_line,
    is_refusal,
    request_ids_suffix,
    unknown_resource,
)
from rotation.azure.trust import trusted_ssl_context
from rotation.core.concurrency import bounded
from rotation.errors import (
    GRANT_DELAY,
    InvalidRequest,
    MalformedAnswer,
    NotFound,
    PasswordAdditionBlocked,
    PermissionDenied,
    RotationError,
    ServiceUnavailable,
)
from rotation.model import (
    ApiRoles,
    AppManagementPolicy,
    AppRecord,
    Credential,
    NewSecret,
    PasswordPolicies,
    PasswordRestriction,
    PrincipalEntry,
)
from rotation.settings import Settings
from rotation.telemetry import logs

#: Graph accepts at most 15 values in one `in (...)` filter.
IN_BATCH = 15
#: Above this many app ids, one paged listing of all applications is cheaper than batches.
LIST_ALL_ABOVE = 150
PAGE_SIZE = 999
APP_FIELDS = ["id", "appId", "displayName", "passwordCredentials", "createdDateTime"]
SP_FIELDS = ["id", "appId", "servicePrincipalType", "appOwnerOrganizationId"]
API_SP_FIELDS = ["id", "displayName", "appRoleAssignmentRequired", "appRoles"]
CONCURRENT_QUERIES = 4
LIFETIME_POLICY = "CredentialInvalidLifetimeAsPerAppPolicy"
#: Graph's 400 on addPassword when an app-management policy forbids new passwords (handled
#: as this code by Microsoft's own Teams Toolkit, OfficeDev/teams-toolkit aadAppClient).
TYPE_POLICY = "CredentialTypeNotAllowedAsPerAppPolicy"
#: Reading app-management policies: the tenant default and the list need Policy.Read.All;
#: which apps a policy applies to (appliesTo) needs Application.Read.All too (Graph's
#: permissions tables for tenantAppManagementPolicy get, appManagementPolicy list and
#: list appliesTo).
POLICY_HINT = (
    "grant the rotator's identity the Microsoft Graph application permissions Policy.Read.All "
    "and Application.Read.All (infra/scripts/grant-graph-permission.sh grants them)"
)
#: Per-request middleware option for non-idempotent writes: the SDK sends them once.
NO_RETRY = RetryHandlerOption(max_retries=0, should_retry=False)
OWNER_HINT = (
    "make the rotator's identity an owner: `az ad app owner add --id {app_id} "
    "--owner-object-id <object id of the rotator's identity>` or grant it the Microsoft "
    "Graph application permission Application.ReadWrite.All"
)

T = TypeVar("T")
log = logs.get_logger("rotation.entra")
SpQuery = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters
SpByAppIdQuery = ServicePrincipalsWithAppIdRequestBuilder.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters
AssignedToQuery = AppRoleAssignedToRequestBuilder.AppRoleAssignedToRequestBuilderGetQueryParameters
OwnersQuery = OwnersRequestBuilder.OwnersRequestBuilderGetQueryParameters
PoliciesQuery = (
    AppManagementPoliciesRequestBuilder.AppManagementPoliciesRequestBuilderGetQueryParameters
)
AppliesToQuery = AppliesToRequestBuilder.AppliesToRequestBuilderGetQueryParameters
#: ISO 8601 durations (maxLifetime, "P90D", "P4DT12H30M5S"), read as pydantic reads them.
_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


class EntraAdapter:
    """Applications and service principals through Microsoft Graph v1.0."""

    def __init__(
        self,
        client: GraphServiceClient,
        http: httpx.AsyncClient,
        endpoint: str,
        *,
        max_retries: int = RetryHandlerOption.DEFAULT_MAX_RETRIES,
    ) -> None:
        self._client = client
        self._http = http
        self._endpoint = endpoint
        self._max_retries = max_retries

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credential: AsyncTokenCredential,
        *,
        max_retries: int = RetryHandlerOption.DEFAULT_MAX_RETRIES,
        retry_delay: float = RetryHandlerOption.DEFAULT_DELAY,
    ) -> EntraAdapter:
        """A client for ``settings.graph_endpoint`` that trusts ``settings.ca_bundle`` too.

        `max_retries`/`retry_delay` configure the SDK's RetryHandler (a Retry-After header
        wins over the delay).
        """
        client, http = graph_client(
            settings, credential, max_retries=max_retries, retry_delay=retry_delay
        )
        return cls(client, http, settings.graph_endpoint, max_retries=max_retries)

    async def close(self) -> None:
        await self._http.aclose()

    # ----- applications ------------------------------------------------------------------

    async def read_apps(self, app_ids: Collection[str]) -> dict[str, AppRecord]:
        """The applications with these app ids, keyed by lower-case app id; missing apps
        (deleted, or in another tenant) are simply absent."""
        wanted = {a.lower() for a in app_ids}
        if not wanted:
            return {}
        found = await _batched(wanted, "appId", self._list_applications)
        records = graph_items.applications(found, "applications")
        return {r.app_id: r for r in records if r.app_id in wanted}

    async def _list_applications(self, filter_: str | None) -> list[dict[str, Any]]:
        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
            filter=filter_, select=APP_FIELDS, top=PAGE_SIZE
        )
        return await self._pages(self._client.applications, query, "read applications")

    async def add_password(self, record: AppRecord, display_name: str, end: datetime) -> NewSecret:
        """Step 1 of a rotation: a new client secret, sent exactly once (neither the SDK nor
        we retry it, not even a dropped connection: a secret created without our hearing of
        it is an orphan the next run removes)."""
        body = AddPasswordPostRequestBody(
            password_credential=PasswordCredential(display_name=display_name, end_date_time=end)
        )
        item = self._client.applications.by_application_id(record.object_id)
        once: RequestConfiguration[Any] = RequestConfiguration(options=[NO_RETRY])
        with self._mapped(f"add a password to app {record.app_id}", record.app_id):
            created = await _retry_throttled(
                lambda: item.add_password.post(body, request_configuration=once),
                self._max_retries,
            )
        if created is None or not created.secret_text or created.key_id is None:
            raise ServiceUnavailable(
                f"Microsoft Graph returned no secret for the new password of app {record.app_id}"
            )
        credential = _credential(created)
        return NewSecret(credential, SecretStr(created.secret_text))

    async def remove_password(self, record: AppRecord, key_id: str) -> bool:
        """Removes one password; False when it was already gone (removal is idempotent).

        Graph documents only the 204 of removePassword, not what an unknown keyId gets
        (learn.microsoft.com/graph/api/application-removepassword), so a 400 or 404 is
        judged by re-reading the app's credentials, never by the error's wording.
        """
        body = RemovePasswordPostRequestBody(key_id=UUID(key_id))
        item = self._client.applications.by_application_id(record.object_id)
        what = f"remove password {key_id} of app {record.app_id}"
        with self._mapped(what, record.app_id):
            try:
                await _retry_transport(lambda: item.remove_password.post(body))
            except APIError as exc:
                if exc.response_status_code in (400, 404) and await self._gone(record, key_id):
                    log.info("credential.already_gone", app_id=record.app_id, key_id=key_id)
                    return False
                raise
        return True

    async def _gone(self, record: AppRecord, key_id: str) -> bool:
        """The app still exists and no longer holds `key_id` (a read failure: not known)."""
        try:
            fresh = (await self.read_apps([record.app_id])).get(record.app_id.lower())
        except RotationError:
            return False
        readable = fresh is not None and fresh.problem is None  # a flagged record says nothing
        return readable and fresh is not None and fresh.credential(key_id.lower()) is None

    async def password_policies(self) -> PasswordPolicies:
        """The tenant default app-management policy, every app-specific one, and which apps
        each applies to (``GET /policies/defaultAppManagementPolicy``, ``/policies/
        appManagementPolicies`` and ``.../{id}/appliesTo``). What Graph refuses is named in
        `unread` and left out; nothing here raises for a missing permission."""
        policies = self._client.policies
        try:
            info = policies.default_app_management_policy.to_get_request_information()
            default = await self._read(
                functools.partial(self._send_json, info), "read app-management policies",
                hint=POLICY_HINT,
            )  # fmt: skip
            listed = await self._pages(
                policies.app_management_policies,
                PoliciesQuery(top=PAGE_SIZE),
                "read app-management policies",
                hint=POLICY_HINT,
            )
        except PermissionDenied as exc:
            return PasswordPolicies(assignments_known=False, unread=str(exc))
        found = [_policy(item, assigned=True) for item in listed]
        assigned, unread = await self._assignments([p for p in found if _restrictive(p)])
        return PasswordPolicies(
            _policy(default, assigned=False), assigned, assignments_known=unread is None,
            unread=unread,
        )  # fmt: skip

    async def _assignments(
        self, found: Sequence[AppManagementPolicy]
    ) -> tuple[dict[str, AppManagementPolicy], str | None]:
        """Application object id -> the (restrictive) policy assigned to it."""
        assigned: dict[str, AppManagementPolicy] = {}
        for policy in found:
            builder = self._client.policies.app_management_policies.by_app_management_policy_id(
                policy.id
            ).applies_to
            query = AppliesToQuery(select=["id"], top=PAGE_SIZE)
            try:
                objects = await self._pages(
                    builder, query, f"read which apps policy {policy.id} applies to",
                    hint=POLICY_HINT,
                )  # fmt: skip
            except PermissionDenied as exc:
                return {}, str(exc)
            for item in objects:
                if str(item.get("@odata.type", "")).endswith(".application"):
                    assigned[str(item.get("id", "")).lower()] = policy
        return assigned, None

    async def owner_ids(self, record: AppRecord) -> set[str]:
        """Object ids of the app's owners (``GET /applications/{id}/owners``, which
        Application.ReadWrite.OwnedBy may call, per Graph's "List owners" permissions)."""
        builder = self._client.applications.by_application_id(record.object_id).owners
        query = OwnersQuery(select=["id"], top=PAGE_SIZE)
        owners = await self._pages(builder, query, f"read the owners of app {record.app_id}")
        return {str(o.get("id", "")).lower() for o in owners}

    # ----- service principals ------------------------------------------------------------

    async def api_roles(self, client_id: str) -> ApiRoles | None:
        """The rotator's own API (its client id): its service principal's app roles and who
        holds each (Graph: GET /servicePrincipals(appId=...), then its appRoleAssignedTo);
        None when the tenant has no such service principal."""
        what = f"read the API's service principal ({client_id})"
        builder = self._client.service_principals_with_app_id(client_id)
        info = builder.to_get_request_information(
            RequestConfiguration(query_parameters=SpByAppIdQuery(select=API_SP_FIELDS))
        )
        try:
            sp = await self._read(functools.partial(self._send_json, info), what)
        except NotFound:
            return None
        assigned = self._client.service_principals.by_service_principal_id(str(sp["id"]))
        query = AssignedToQuery(select=["appRoleId", "principalId", "principalDisplayName"])
        assignments = await self._pages(
            assigned.app_role_assigned_to,
            query,
            f"read who holds the API's app roles ({client_id})",
        )
        return _api_roles(client_id, sp, assignments)

    async def service_principals(self, object_ids: Collection[str]) -> dict[str, PrincipalEntry]:
        """Service principal object id (lower-case) -> who it is; unknown ids absent.

        Batched as `read_apps` is, for the same reason: one request per 15 ids, one after
        another, cost 667 requests and half a minute for 10,000 senders (bench/); past
        LIST_ALL_ABOVE ids one paged listing of the few fields needed is far cheaper.
        """
        wanted = {o.lower() for o in object_ids}
        if not wanted:
            return {}
        sps = await _batched(wanted, "id", self._list_service_principals)
        entries = graph_items.principals(sps, "service principals")
        return {e.object_id: e for e in entries if e.object_id in wanted}

    async def _list_service_principals(self, filter_: str | None) -> list[dict[str, Any]]:
        query = SpQuery(filter=filter_, select=SP_FIELDS, top=PAGE_SIZE)
        return await self._pages(self._client.service_principals, query, "read service principals")

    async def _pages(
        self, builder: Any, query: object, what: str, *, hint: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a Graph listing, following @odata.nextLink, as Graph's JSON.

        Requests go through the SDK's request builders and adapter (auth, RetryHandler,
        ODataError mapping unchanged), but the pages are read as JSON: msgraph-sdk's model
        deserialization costs ~15 ms of CPU per directory object, which would stall the
        event loop for seconds when a large tenant is listed.
        """
        info = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        items: list[dict[str, Any]] = []
        while True:
            page = await self._read(functools.partial(self._send_json, info), what, hint=hint)
            value = page.get("value")
            if not isinstance(value, list):
                raise MalformedAnswer(
                    f"Microsoft Graph answered a page that cannot be read to {what}: its "
                    f"'value' is {'missing' if value is None else 'not a list'}"
                )
            items.extend(value)
            link = page.get("@odata.nextLink")
            if not link:
                return items
            if not isinstance(link, str):
                raise MalformedAnswer(
                    f"Microsoft Graph answered a page that cannot be read to {what}: its "
                    "'@odata.nextLink' is not a link"
                )
            info = builder.with_url(link).to_get_request_information()

    async def _send_json(self, info: Any) -> dict[str, Any]:
        adapter = self._client.request_adapter
        raw: Any = await adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            raise MalformedAnswer(
                "Microsoft Graph answered with something other than JSON"
            ) from None
        if not isinstance(body, dict):
            raise MalformedAnswer("Microsoft Graph answered with JSON that is not an object")
        return body

    async def _read(
        self, call: Callable[[], Awaitable[T]], what: str, *, hint: str | None = None
    ) -> T:
        with self._mapped(what, None, hint=hint):
            return await _retry_transport(call)

    @contextmanager
    def _mapped(self, what: str, app_id: str | None, *, hint: str | None = None) -> Iterator[None]:
        """Translates a failed Graph call into a rotation error naming what failed and how
        to fix it (`app_id`: the app whose owner hint to give; `hint`: the grant a 403 asks
        for, when it is not the application permission). Our own errors pass."""
        try:
            yield
        except RotationError:
            raise
        except Exception as exc:  # translated, never swallowed
            _translate(exc, what, app_id, self._endpoint, hint)
            raise


def graph_client(
    settings: Settings,
    credential: AsyncTokenCredential,
    *,
    max_retries: int = RetryHandlerOption.DEFAULT_MAX_RETRIES,
    retry_delay: float = RetryHandlerOption.DEFAULT_DELAY,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[GraphServiceClient, httpx.AsyncClient]:
    """msgraph-sdk's client for ``settings.graph_endpoint`` (v1.0), with the SDK's default
    middleware (its RetryHandler configured here) and the trusted SSL context. Returns
    the httpx client too, which the caller closes. `transport` is httpx's own seam for
    where requests go, under the SDK's middleware (tests/recorded replays Graph's
    recorded answers through it), as ``transport=`` is for the azure-core clients."""
    endpoint = settings.graph_endpoint
    host = urlsplit(endpoint).hostname or ""
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[f"{endpoint}/.default"], allowed_hosts=[host]
    )
    options = dict(graph_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(
        delay=retry_delay, max_retries=max_retries
    )
    http = httpx.AsyncClient(
        base_url=f"{endpoint}/v1.0",
        verify=trusted_ssl_context(settings),
        timeout=httpx.Timeout(30.0, connect=10.0),
        transport=transport,
    )
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{endpoint}/v1.0"
    return GraphServiceClient(request_adapter=adapter), http


# ----- helpers -------------------------------------------------------------------------------


async def _batched(
    wanted: Collection[str],
    key: str,
    listing: Callable[[str | None], Awaitable[list[dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """The objects whose `key` is among `wanted` (and maybe others): `listing` filtered to
    IN_BATCH ids at a time, CONCURRENT_QUERIES at once; past LIST_ALL_ABOVE ids, one
    unfiltered listing, which is cheaper than that many batches."""
    if len(wanted) > LIST_ALL_ABOVE:
        return await listing(None)
    queries = (f"{key} in ({_quoted(ids)})" for ids in _chunks(sorted(wanted)))
    batches = await bounded(CONCURRENT_QUERIES, map(listing, queries))
    return [item for batch in batches for item in batch]


async def _retry_transport(call: Callable[[], Awaitable[T]]) -> T:
    """Retries an idempotent call whose connection failed before an answer arrived."""
    async for attempt in stamina.retry_context(
        on=httpx.TransportError,
        attempts=3,
        wait_initial=0.1,
        wait_max=1.0,
        wait_jitter=0.1,
        timeout=30.0,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


async def _retry_throttled(call: Callable[[], Awaitable[T]], retries: int) -> T:
    """Retries a non-idempotent call only when Graph answered 429 (it did nothing then),
    after the Retry-After it gave; every other failure goes to the caller at once."""

    def throttled(exc: Exception) -> bool | float:
        if not isinstance(exc, APIError) or exc.response_status_code != 429:
            return False
        headers = {k.lower(): v for k, v in (exc.response_headers or {}).items()}
        try:  # kiota's own handler gives up past 180 s (RetryHandlerOption.MAX_DELAY)
            return min(max(0.0, float(headers.get("retry-after", "1"))), 180.0)
        except ValueError:
            return 1.0

    async for attempt in stamina.retry_context(on=throttled, attempts=retries + 1, timeout=None):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


def _chunks(items: list[str]) -> Iterable[list[str]]:
    return (items[i : i + IN_BATCH] for i in range(0, len(items), IN_BATCH))


def _quoted(ids: Iterable[str]) -> str:
    return ", ".join("'" + i.replace("'", "''") + "'" for i in ids)


def _credential(c: PasswordCredential) -> Credential:
    return Credential(
        key_id=str(c.key_id).lower(),
        display_name=c.display_name,
        start=c.start_date_time,
        end=c.end_date_time,
        hint=c.hint,
    )


def _time(value: object) -> datetime | None:
    """A policy's date, or None when it is absent or unreadable (the restriction then
    applies to every app: the safe side)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _policy(item: Mapping[str, Any], *, assigned: bool) -> AppManagementPolicy:
    """An app-management policy as Graph's JSON: the tenant default's applicationRestrictions
    or an app-specific policy's restrictions (passwordCredentials only)."""
    key = "restrictions" if assigned else "applicationRestrictions"
    restrictions = item.get(key) if isinstance(item.get(key), dict) else {}
    passwords = restrictions.get("passwordCredentials") if restrictions else None
    return AppManagementPolicy(
        id=str(item.get("id") or ""),
        name=str(item.get("displayName") or ("tenant default" if not assigned else "")),
        enabled=item.get("isEnabled") is True,
        passwords=tuple(
            _restriction(r)
            for r in (passwords if isinstance(passwords, list) else ())
            if isinstance(r, dict)
        ),
    )


def _restriction(item: Mapping[str, Any]) -> PasswordRestriction:
    """A passwordCredentialConfiguration: restrictionType, maxLifetime (ISO 8601 duration),
    restrictForAppsCreatedAfterDateTime and, in newer policies, state."""
    return PasswordRestriction(
        kind=str(item.get("restrictionType") or ""),
        max_lifetime=_duration(item.get("maxLifetime")),
        applies_from=_time(item.get("restrictForAppsCreatedAfterDateTime")),
        enabled=str(item.get("state") or "enabled").lower() != "disabled",
    )


def _duration(value: object) -> timedelta | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _DURATION.validate_python(value)
    except ValidationError:
        return None


def _restrictive(policy: AppManagementPolicy) -> bool:
    """An enabled policy with a password restriction: the only ones whose reach matters."""
    return policy.enabled and bool(policy.passwords)


def _api_roles(client_id: str, sp: dict[str, Any], assignments: list[dict[str, Any]]) -> ApiRoles:
    roles = {
        str(r.get("id")): str(r.get("value"))
        for r in sp.get("appRoles") or []
        if isinstance(r, dict) and r.get("isEnabled", True)
    }
    holders: dict[str, list[str]] = {value: [] for value in roles.values()}
    for a in assignments:
        value = roles.get(str(a.get("appRoleId")))
        if value is not None:
            holders[value].append(str(a.get("principalDisplayName") or a.get("principalId")))
    return ApiRoles(
        client_id=client_id,
        object_id=str(sp["id"]),
        display_name=str(sp.get("displayName") or client_id),
        assignment_required=bool(sp.get("appRoleAssignmentRequired")),
        role_ids={value: role_id for role_id, value in roles.items()},
        holders={value: tuple(sorted(names)) for value, names in holders.items()},
    )


def _code(exc: APIError) -> str:
    return error_code(exc) or ""


def _reason(exc: APIError) -> str:
    first = first_line(exc, or_str=False)
    reason = f"{exc.response_status_code} {_code(exc)}: {first}".strip().rstrip(":")
    return reason + request_ids_suffix(exc)


def _translate(
    exc: Exception, what: str, app_id: str | None, endpoint: str, hint: str | None = None
) -> None:
    """Raises `exc` as a rotation error when it is one this adapter knows; else returns."""
    _raise_unanswered(exc, what, endpoint)
    if isinstance(exc, APIError) and exc.response_status_code is not None:
        raise _answered(exc, exc.response_status_code, what, app_id, hint) from None


def _raise_unanswered(exc: Exception, what: str, endpoint: str) -> None:
    """The failures before Graph answered: the wrong endpoint, no token, no connection."""
    wrong_endpoint = unknown_resource(exc, endpoint, "ROTATION_GRAPH_URL")
    if wrong_endpoint is not None:
        raise InvalidRequest(f"could not {what}: {wrong_endpoint}") from None
    if isinstance(exc, ClientAuthenticationError):
        raise PermissionDenied(
            f"could not {what}: the rotator's identity failed to get a token for Microsoft "
            f"Graph ({type(exc).__name__}); check its managed identity (or AZURE_CLIENT_ID, "
            "AZURE_TENANT_ID and AZURE_CLIENT_SECRET) and ROTATION_TENANT_ID"
        ) from None
    if isinstance(exc, httpx.TransportError):
        raise ServiceUnavailable(
            f"could not reach Microsoft Graph at {endpoint} to {what} ({type(exc).__name__}); "
            "check ROTATION_GRAPH_URL, network access and CA trust"
        ) from None


def _answered(
    exc: APIError, status: int, what: str, app_id: str | None, hint: str | None = None
) -> RotationError:
    """Graph's error answer as the rotation error an operator can act on."""
    if status == 401:
        return PermissionDenied(
            f"Microsoft Graph refused the rotator's token to {what} ({_reason(exc)}); "
            "check that the identity belongs to ROTATION_TENANT_ID"
        )
    if status == 403:
        hint = hint or (
            OWNER_HINT.format(app_id=app_id)
            if app_id
            else "grant the rotator's identity the Microsoft Graph application permission "
            "Application.ReadWrite.OwnedBy (and make it an owner of each sender app) or "
            "Application.Read.All"
        )
        return PermissionDenied(
            f"Microsoft Graph refused to {what} ({_reason(exc)}): {hint}; {GRANT_DELAY}"
        )
    if status == 404:
        return NotFound(
            f"could not {what}: Microsoft Graph says it does not exist ({_reason(exc)})"
        )
    if status == 400 and _code(exc) == TYPE_POLICY:
        return PasswordAdditionBlocked(
            f"could not {what}: an app-management policy of the tenant forbids new passwords "
            f"for this app ({_reason(exc)}); an administrator exempts it by assigning it a "
            "policy without the passwordAddition restriction"
        )
    if status == 400 and _code(exc) == LIFETIME_POLICY:
        return InvalidRequest(
            f"could not {what}: the tenant's app management policy caps secret lifetime "
            f"({_reason(exc)}); lower ROTATION_SECRET_LIFETIME_DAYS below the cap"
        )
    if is_refusal(status):
        return InvalidRequest(f"Microsoft Graph refused to {what} ({_reason(exc)})")
    return ServiceUnavailable(
        f"Microsoft Graph kept failing to {what} after the SDK's retries ({_reason(exc)}); "
        "the next run tries again"
    )
