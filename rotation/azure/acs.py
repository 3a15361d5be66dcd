"""Azure Resource Manager reader: ACS resources, their SMTP usernames, who holds which role.

A thin layer over the async management clients (azure-mgmt-communication,
azure-mgmt-authorization) that hands discovery plain, frozen data and nothing from the
SDKs. It only reads. Role definitions are cached for the reader's life (one run): many
assignments share a handful of roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    DeserializationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import HttpRequest
from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.communication.aio import CommunicationServiceManagementClient
from azure.mgmt.core import tools as arm_id
from azure.mgmt.core.exceptions import ARMErrorFormat

from rotation.azure import arm_items
from rotation.azure.arm_items import ARM
from rotation.azure.errors import RETRY, map_arm_errors
from rotation.azure.trust import connection_options
from rotation.errors import MalformedAnswer
from rotation.model import (
    AcsResource,
    PermissionEntry,
    RoleAssignmentEntry,
    RoleDefinitionEntry,
    SmtpUsernameEntry,
)
from rotation.resource_ids import resource_parts
from rotation.settings import ACS_RESOURCE, Settings
from rotation.telemetry.skipped_items import skip

#: The role assignments API version azure-mgmt-authorization uses by default.
ROLE_ASSIGNMENTS_API = "2022-04-01"
#: The SMTP Usernames API version azure-mgmt-communication uses by default (its
#: _configuration.py; SmtpUsernames_List in azure-rest-api-specs communication).
SMTP_USERNAMES_API = "2025-09-01"
_ERRORS = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


def parse_resource_id(resource_id: str) -> AcsResource:
    """An ACS resource id split into its parts (the id's own casing is kept)."""
    rid = _slashed(resource_id)
    parts = resource_parts(rid, ACS_RESOURCE)
    if parts is None:
        raise ValueError(f"{resource_id!r} is not an ACS resource id")
    return AcsResource(rid, parts["name"], parts["resource_group"], parts["subscription"])


def _slashed(resource_id: str) -> str:
    """One leading slash and none trailing, as ARM ids are written."""
    return "/" + resource_id.strip("/")


class ArmReader:
    """Reads through one pair of management clients per subscription."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        endpoint: str,
        options: Mapping[str, Any],
        *,
        retry: Mapping[str, float] = RETRY,
    ) -> None:
        self._credential = credential
        self._endpoint = endpoint.rstrip("/")
        self._options = {
            **retry,
            **options,
            "base_url": self._endpoint,
            "credential_scopes": [self._endpoint + "/.default"],
        }
        self._communication: dict[str, CommunicationServiceManagementClient] = {}
        self._authorization: dict[str, AuthorizationManagementClient] = {}
        self._definitions: dict[str, RoleDefinitionEntry] = {}
        self._clients = AsyncExitStack()  # closes every client made, even if one close fails

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credential: AsyncTokenCredential,
        *,
        retry: Mapping[str, float] = RETRY,
    ) -> ArmReader:
        """`retry` holds azure-core RetryPolicy options (tests and benches shorten them)."""
        return cls(credential, settings.arm_endpoint, connection_options(settings), retry=retry)

    async def acs_resources(
        self, subscription_ids: Iterable[str], resource_ids: Iterable[str] = ()
    ) -> list[AcsResource]:
        """Every ACS resource in the subscriptions, plus the named ones, each once."""
        found: dict[str, AcsResource] = {}
        for subscription_id in subscription_ids:
            client = self._comm(subscription_id)
            what = f"the ACS resources of subscription {subscription_id}"
            with map_arm_errors(what), _sdk_parsing(what):
                async for item in client.communication_services.list_by_subscription():
                    try:
                        resource = parse_resource_id(str(item.id))
                    except ValueError:  # no readable id: it names no resource we can scan
                        skip(ARM, what, "an ACS resource: id: not an ACS resource id")
                        continue
                    found.setdefault(resource.id.lower(), resource)
        for resource_id in resource_ids:
            wanted = parse_resource_id(resource_id)
            if wanted.id.lower() in found:
                continue
            client = self._comm(wanted.subscription_id)
            what = f"ACS resource {resource_id} (ROTATION_ACS_RESOURCE_IDS)"
            with map_arm_errors(what), _sdk_parsing(what):
                item = await client.communication_services.get(wanted.resource_group, wanted.name)
                resource = parse_resource_id(str(item.id))
            found[resource.id.lower()] = resource
        return sorted(found.values(), key=lambda r: r.id.lower())

    async def smtp_usernames(self, resource: AcsResource) -> list[SmtpUsernameEntry]:
        """The SMTP Username resources of an ACS resource, read as JSON item by item (an
        item that cannot be read is skipped: arm_items)."""
        what = f"the SMTP usernames of {resource.id}"
        items = await self._json_items(
            resource.subscription_id, f"{resource.id}/smtpUsernames",
            {"api-version": SMTP_USERNAMES_API}, what,
        )  # fmt: skip
        return arm_items.smtp_usernames(resource.id, items, what)

    async def role_assignments(self, resource: AcsResource) -> list[RoleAssignmentEntry]:
        """Assignments that apply to the resource: at its scope and inherited from above.

        Read as JSON through the management client's own pipeline (`send_request`: ARM
        token, retries, Retry-After) rather than azure-mgmt-authorization's models, whose
        deserialization was over half of discovery at 10,000 senders (py-spy). The shape
        is RoleAssignmentListResult (azure-rest-api-specs, authorization 2022-04-01); an
        item that cannot be read is skipped (arm_items).
        """
        what = f"the role assignments on {resource.id}"
        items = await self._json_items(
            resource.subscription_id,
            f"{resource.id}/providers/Microsoft.Authorization/roleAssignments",
            {"api-version": ROLE_ASSIGNMENTS_API, "$filter": "atScope()"},
            what,
        )
        return arm_items.role_assignments(items, what)

    async def _json_items(
        self, subscription_id: str, url: str, params: dict[str, str], what: str
    ) -> list[object]:
        """Every item of an ARM listing (following nextLink), as JSON; a page that cannot be
        read as a whole raises MalformedAnswer naming what was read."""
        client = self._comm(subscription_id)
        items: list[object] = []
        next_url: str | None = url
        with map_arm_errors(what):
            while next_url:
                response = await client.send_request(HttpRequest("GET", next_url, params=params))
                if response.status_code != 200:
                    map_error(response.status_code, response, _ERRORS)
                    raise HttpResponseError(response=response, error_format=ARMErrorFormat)
                page = _page(response, what)
                items += page["value"]
                next_url, params = page.get("nextLink"), {}  # a next link carries its own query
        return items

    async def role_definition(self, definition_id: str) -> RoleDefinitionEntry:
        """A role's actions and notActions (cached by the definition's GUID)."""
        key = definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
        if key in self._definitions:
            return self._definitions[key]
        client = self._authz(_subscription_of(definition_id) or next(iter(self._authorization), ""))
        what = f"role definition {definition_id}"
        with map_arm_errors(what), _sdk_parsing(what):
            item = await client.role_definitions.get_by_id(definition_id)
            entry = _definition(item, what)
        self._definitions[key] = entry
        return entry

    async def my_permissions(self, resource_id: str) -> list[PermissionEntry]:
        """What the caller itself may do on a resource (``.../providers/Microsoft.Authorization
        /permissions``): how `doctor` checks a write permission without writing."""
        parts = resource_parts(_slashed(resource_id))
        if parts is None:
            raise ValueError(f"{resource_id!r} is not a top-level resource id")
        client = self._authz(parts["subscription"])
        entries = []
        with map_arm_errors(f"the rotator's own permissions on {resource_id}"):
            pages = client.permissions.list_for_resource(
                parts["resource_group"], parts["namespace"], "", parts["type"], parts["name"]
            )
            async for item in pages:
                entries.append(
                    PermissionEntry(
                        tuple(item.actions or ()),
                        tuple(item.not_actions or ()),
                        tuple(item.data_actions or ()),
                        tuple(item.not_data_actions or ()),
                    )
                )
        return entries

    async def get_json(
        self, path: str, api_version: str, what: str, **params: str
    ) -> dict[str, Any] | None:
        """One ARM GET of `path` as JSON through a management client's pipeline (ARM token,
        retries); None on 404. For the few reads no SDK of ours covers (Event Grid)."""
        client = self._comm(_subscription_of(path) or "")
        query = {"api-version": api_version, **params}
        with map_arm_errors(what):
            response = await client.send_request(HttpRequest("GET", path, params=query))
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                map_error(response.status_code, response, _ERRORS)
                raise HttpResponseError(response=response, error_format=ARMErrorFormat)
            body = _json(response, what)
        return body if isinstance(body, dict) else {}

    async def close(self) -> None:
        self._communication.clear()
        self._authorization.clear()
        await self._clients.aclose()

    # ----- helpers -----------------------------------------------------------------------

    def _comm(self, subscription_id: str) -> CommunicationServiceManagementClient:
        key = subscription_id.lower()
        if key not in self._communication:
            client = CommunicationServiceManagementClient(
                self._credential, subscription_id, **self._options
            )
            self._clients.push_async_callback(client.close)
            self._communication[key] = client
        return self._communication[key]

    def _authz(self, subscription_id: str) -> AuthorizationManagementClient:
        key = subscription_id.lower()
        if key not in self._authorization:
            client = AuthorizationManagementClient(
                self._credential,
                subscription_id or "00000000-0000-0000-0000-000000000000",
                **self._options,
            )
            self._clients.push_async_callback(client.close)
            self._authorization[key] = client
        return self._authorization[key]


@contextmanager
def _sdk_parsing(what: str) -> Iterator[None]:
    """An answer the management SDK's models cannot be built from (a page whose ``value``
    is not a list, a ``nextLink`` that is not a link, a field of the wrong type): the SDK
    raises DeserializationError, or a bare TypeError/AttributeError/ValueError from its
    deserializer; each is the service's unreadable answer, not a bug of ours."""
    try:
        yield
    except (DeserializationError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedAnswer(
            f"{ARM} answered {what} with something that cannot be read ({type(exc).__name__})"
        ) from None


def _page(response: Any, what: str) -> dict[str, Any]:
    """An ARM listing page: an object whose ``value`` is a list and ``nextLink`` a link."""
    page = _json(response, what)
    if (
        not isinstance(page, dict)
        or not isinstance(page.get("value"), list)
        or not isinstance(page.get("nextLink"), str | None)
    ):
        raise MalformedAnswer(
            f"{ARM} answered {what} with a page that cannot be read: its 'value' is not a "
            "list, or its 'nextLink' not a link"
        )
    return page


def _json(response: Any, what: str) -> object:
    """A 200's body as JSON; a body that is not (a gateway's HTML page) is ARM's unreadable
    answer, not a bug of ours."""
    try:
        return response.json()
    except ValueError:
        raise MalformedAnswer(f"{ARM} answered {what} with something other than JSON") from None


def _definition(item: Any, what: str) -> RoleDefinitionEntry:
    """A role definition SDK model as our entry; a permission list that is not text fails."""
    actions: list[str] = []
    not_actions: list[str] = []
    for permission in item.permissions or ():
        actions.extend(permission.actions or ())
        not_actions.extend(permission.not_actions or ())
    if not all(isinstance(a, str) for a in (*actions, *not_actions)) or not item.id:
        raise MalformedAnswer(f"{ARM} answered {what} unreadably (id, actions or notActions)")
    return RoleDefinitionEntry(
        str(item.id), str(item.role_name), tuple(actions), tuple(not_actions)
    )


def _subscription_of(resource_id: str) -> str | None:
    found = arm_id.parse_resource_id(_slashed(resource_id)).get("subscription")
    return str(found) if found else None
