"""The sandbox's Key Vault: the secrets data plane the rotator and its consumers use.

Routes (any ``api-version``, as the real service accepts every version the SDK sends):
``GET /secrets`` (every secret's current version, paged), ``PUT /secrets/{name}`` (new version), ``GET /secrets/{name}`` and ``/secrets/{name}/``
(latest), ``GET /secrets/{name}/{version}``, ``GET /secrets/{name}/versions`` (paged by
``maxresults`` and ``nextLink``) and ``PATCH /secrets/{name}/{version}``. Shapes, limits
and refusals follow the real service: the bearer challenge, name/value/tag limits, 403 on a
disabled version, 404 ``SecretNotFound``, and ``{"error": {"code", "message"}}`` bodies.

The bearer challenge, and why it passes the SDK's default checks
----------------------------------------------------------------
A request without a token gets 401 with ``WWW-Authenticate: Bearer
authorization="<authority>/<tenant>", resource="<resource>"``. azure-keyvault-secrets then
asks for a token for ``<resource>/.default`` and, unless ``verify_challenge_resource=False``,
refuses a resource whose domain the vault host does not end with (``"." + domain``). Real
Key Vault answers ``resource="https://vault.azure.net"`` for ``https://<name>.vault.azure.net``:
the resource is the vault's host minus its first label. The sandbox applies that same rule
to its own address: for ``https://127.0.0.1:8443`` the resource is ``https://0.0.1:8443``,
and ``"127.0.0.1:8443".endswith(".0.0.1:8443")`` holds, so the unmodified SDK accepts it
(see ``_validate_challenge_resource`` in ``azure/keyvault/secrets/_shared``). Tokens must
then carry that resource as their audience, as real tokens carry ``https://vault.azure.net``.

Every value ever set stays in ``state.vault`` so that tests can read what consumers would;
no response other than a GET of a secret ever contains one.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sandbox.event_grid import EVENTS
from sandbox.http_common import (
    BASE_URL,
    STATE,
    ApiError,
    counted_app,
    json_body,
    require_token,
)
from sandbox.state import IssuedToken, SandboxState, SecretVersion

NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
VERSION = re.compile(r"^[0-9a-fA-F]{32}$")
MAX_VALUE_BYTES = 25 * 1024
MAX_TAGS = 15
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
DEFAULT_PAGE = 25
MAX_PAGE = 25
RECOVERY = {"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}

#: Data-plane operation names, as Key Vault's RBAC and error messages call them.
GET, LIST, SET, UPDATE = "get", "list", "set", "update"
ALL_OPERATIONS = frozenset({GET, LIST, SET, UPDATE})  # what the rotator does
RECOVER = "recover"  # an operator's fix for a soft-deleted name (Key Vault Secrets Officer)
#: A client not listed in state.vault_permissions is a Key Vault Secrets Officer.
OFFICER_OPERATIONS = ALL_OPERATIONS | {RECOVER}


# ----- the challenge ------------------------------------------------------------------


def challenge_resource(vault_url: str) -> str:
    """The resource Key Vault names in its challenge: the vault host minus its first label.

    ``https://contoso.vault.azure.net`` -> ``https://vault.azure.net`` (the real rule);
    ``https://127.0.0.1:8443`` -> ``https://0.0.1:8443``. The port stays, because the SDK
    compares host and port together. A host with one label has nothing to drop and is
    returned whole (then the SDK's check fails, as it would for such a vault in Azure).
    """
    parts = urlsplit(vault_url)
    host = parts.hostname or ""
    _, dot, parent = host.partition(".")
    domain = parent if dot and parent else host
    port = f":{parts.port}" if parts.port and parts.port != 443 else ""
    return f"https://{domain}{port}"


def challenge_header(vault_url: str, authority_url: str, tenant_id: str) -> str:
    """The WWW-Authenticate value of a 401 from this vault (set as the app's CHALLENGE)."""
    authority = f"{authority_url.rstrip('/')}/{tenant_id}"
    return f'Bearer authorization="{authority}", resource="{challenge_resource(vault_url)}"'


# ----- the app --------------------------------------------------------------------------


def build_app(state: SandboxState) -> web.Application:
    """The Key Vault app. The server sets BASE_URL (and CHALLENGE, via `challenge_header`)."""
    app = counted_app("vault", state)
    app[_NAMES] = _NameOrder()
    app.router.add_get("/secrets", list_secrets)
    app.router.add_get("/secrets/{name}/versions", list_versions)
    app.router.add_put("/secrets/{name}", set_secret)
    app.router.add_get("/secrets/{name}", get_latest)
    app.router.add_get("/secrets/{name}/", get_latest)
    app.router.add_get("/secrets/{name}/{version}", get_version)
    app.router.add_patch("/secrets/{name}/{version}", update_secret)
    from sandbox import vault_deleted  # its routes reuse this module's helpers

    vault_deleted.add_routes(app)
    return app


async def set_secret(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _authorize(request, SET)
    name = _name(request)
    body = await json_body(request)
    value = body.get("value")
    if not isinstance(value, str):
        raise ApiError(
            400, "BadParameter", "The parameter 'value' is required and must be a string."
        )
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise ApiError(
            400,
            "BadParameter",
            f"The secret value is too large: the maximum size of a secret value is {MAX_VALUE_BYTES} bytes.",
        )
    content_type = _optional_str(body, "contentType")
    tags = _tags(body.get("tags"))
    attributes = _attributes(body.get("attributes"))
    now = state.clock.now()
    _refuse_deleted_name(state, name, now)
    versions = state.vault.setdefault(name.lower(), [])
    stored_name = versions[0].name if versions else name
    version = SecretVersion(
        name=stored_name,
        version=uuid.uuid4().hex,
        value=value,
        content_type=content_type,
        tags=tags,
        enabled=_bool(attributes, "enabled", default=True),
        expires=_timestamp(attributes, "exp"),
        not_before=_timestamp(attributes, "nbf"),
        created=now,
        updated=now,
    )
    versions.append(version)
    grid = request.app.get(EVENTS)
    if grid is not None:  # Key Vault raises SecretNewVersionCreated (sandbox/event_grid.py)
        grid.new_version(version)
    return web.json_response(_bundle(request, version, with_value=True))


async def get_latest(request: web.Request) -> web.Response:
    _authorize(request, GET)
    name = _name(request)
    versions = _versions(request, name)
    return _readable(request, versions[-1])


async def get_version(request: web.Request) -> web.Response:
    _authorize(request, GET)
    name = _name(request)
    wanted = request.match_info["version"]
    version = next((v for v in _versions(request, name) if v.version == wanted.lower()), None)
    if version is None:
        raise _not_found(f"{name}/{wanted}")
    return _readable(request, version)


async def list_secrets(request: web.Request) -> web.Response:
    """One page of the vault's secrets: each one's current version, as a SecretItem.

    Per the GetSecrets contract (azure-rest-api-specs, keyvault data-plane ``secrets.json``
    and its ``GetSecrets-example.json``): "only the base secret identifier and its
    attributes are provided", so an item's ``id`` carries no version, while its
    ``attributes``, ``tags`` and ``contentType`` are the current version's; ``maxresults``
    is 1..25 (25 when absent) and further pages follow ``nextLink``. Items come in name
    order here (the contract names none; callers must not rely on one).
    """
    _authorize(request, LIST)
    _api_version(request)
    vault = request.app[STATE].vault
    names = request.app[_NAMES].names(vault)
    window, query = _window(request, len(names))
    next_link = None if query is None else f"{_base_url(request)}/secrets?{query}"
    items = [_secret_item(request, vault[name][-1]) for name in names[window]]
    return web.json_response({"value": items, "nextLink": next_link})


async def list_versions(request: web.Request) -> web.Response:
    """One page of version items (no values).

    Like the real service, versions come ordered by their id, not by age (callers sort by
    ``created``), and an unknown secret lists as empty rather than 404.
    """
    _authorize(request, LIST)
    name = _name(request)
    versions = sorted(request.app[STATE].vault.get(name.lower(), []), key=lambda v: v.version)
    window, query = _window(request, len(versions))
    next_link = None if query is None else f"{_base_url(request)}/secrets/{name}/versions?{query}"
    page = [_item(request, v) for v in versions[window]]
    return web.json_response({"value": page, "nextLink": next_link})


async def update_secret(request: web.Request) -> web.Response:
    _authorize(request, UPDATE)
    name = _name(request)
    wanted = request.match_info["version"]
    version = next((v for v in _versions(request, name) if v.version == wanted.lower()), None)
    if version is None:
        raise _not_found(f"{name}/{wanted}")
    body = await json_body(request)
    if "contentType" in body:
        version.content_type = _optional_str(body, "contentType")
    if body.get("tags") is not None:
        version.tags = _tags(body["tags"])
    attributes = _attributes(body.get("attributes"))
    if "enabled" in attributes:
        version.enabled = _bool(attributes, "enabled", default=version.enabled)
    if "exp" in attributes:
        version.expires = _timestamp(attributes, "exp")
    if "nbf" in attributes:
        version.not_before = _timestamp(attributes, "nbf")
    version.updated = request.app[STATE].clock.now()
    # Key Vault answers an update with the bundle minus its value.
    return web.json_response(_bundle(request, version, with_value=False))


def _refuse_deleted_name(state: SandboxState, name: str, now: datetime) -> None:
    """Key Vault keeps a deleted secret's name until it is recovered or purged.

    Both 409 bodies are the service's own: the recoverable one as reported in
    ironmansoftware/powershell-universal#1990 and ansible-collections/azure#1145, the
    in-progress one as Azure/azure-sdk-for-python#19263 and the C++ SDK's key tests show
    it; the inner codes as the .NET SDK's Sample4 (Azure.Security.KeyVault.Secrets) reads
    them.
    """
    deleted = state.deleted_secrets.get(name.lower())
    if deleted is None:
        return
    if now < deleted.ready:
        raise ApiError(
            409,
            "Conflict",
            f"Secret {name} is currently being deleted and cannot be re-created; retry later.",
            extra={"innererror": {"code": "ObjectIsBeingDeleted"}},
        )
    raise ApiError(
        409,
        "Conflict",
        f"Secret {name} is currently in a deleted but recoverable state, and its name cannot "
        "be reused; in this state, the secret can only be recovered or purged.",
        extra={"innererror": {"code": "ObjectIsDeletedButRecoverable"}},
    )


# ----- authorization ----------------------------------------------------------------------


def _authorize(request: web.Request, operation: str) -> IssuedToken:
    """A live token for this vault's resource, whose client may do `operation` (RBAC)."""
    token = require_token(request, [challenge_resource(_base_url(request))])
    state = request.app[STATE]
    client = token.client_id.lower()
    allowed = state.vault_permissions.get(client, OFFICER_OPERATIONS)
    # A role assigned moments ago is listed by ARM but not yet enforced by Key Vault (Azure
    # RBAC troubleshooting: up to 10 minutes); its message says to observe propagation time.
    effective = state.vault_permissions_effective.get(client)
    if effective is not None and state.clock.now() < effective:
        allowed = frozenset()
    if operation not in allowed:
        raise ApiError(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, "
            "please observe propagation time.\r\n"
            f"Caller: appid={token.client_id};iss=https://sts.windows.net/{token.tenant_id}/\r\n"
            f"Action: 'Microsoft.KeyVault/vaults/secrets/{_action(operation)}'\r\n"
            "Assignment: (not found)\r\n"
            "DecisionReason: 'DeniedWithNoValidRBAC'\r\n",
            extra={"innererror": {"code": "ForbiddenByRbac"}},
        )
    return token


def _action(operation: str) -> str:
    return {
        GET: "getSecret/action",
        LIST: "readMetadata/action",
        SET: "setSecret/action",
        UPDATE: "update/action",
        RECOVER: "recover/action",
    }[operation]


def data_actions(state: SandboxState, client_id: str) -> list[str]:
    """The Key Vault data actions a client holds on the sandbox vault, as ARM's permissions
    API reports them: a client not restricted in ``vault_permissions`` holds what Key Vault
    Secrets Officer grants (``secrets/*``); a restricted one, exactly its operations."""
    allowed = state.vault_permissions.get(client_id.lower())
    if allowed is None:
        return ["Microsoft.KeyVault/vaults/secrets/*"]
    return sorted(f"Microsoft.KeyVault/vaults/secrets/{_action(op)}" for op in allowed)


# ----- shapes ------------------------------------------------------------------------------


def _base_url(request: web.Request) -> str:
    return request.app.get(BASE_URL) or f"{request.scheme}://{request.host}"


def _secret_id(request: web.Request, version: SecretVersion) -> str:
    return f"{_base_url(request)}/secrets/{version.name}/{version.version}"


def _attributes_json(version: SecretVersion) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "enabled": version.enabled,
        "created": _epoch(version.created),
        "updated": _epoch(version.updated),
        **RECOVERY,
    }
    if version.not_before is not None:
        attributes["nbf"] = _epoch(version.not_before)
    if version.expires is not None:
        attributes["exp"] = _epoch(version.expires)
    return attributes


def _item(request: web.Request, version: SecretVersion) -> dict[str, Any]:
    """A SecretItem: what a list returns (no value)."""
    item: dict[str, Any] = {
        "id": _secret_id(request, version),
        "attributes": _attributes_json(version),
    }
    # Key Vault leaves both out when there are none (SecretItem/SecretBundle in
    # azure-rest-api-specs .../secrets.json, 2025-07-01: neither is required).
    if version.tags:
        item["tags"] = dict(version.tags)
    if version.content_type is not None:
        item["contentType"] = version.content_type
    return item


class _NameOrder:
    """The vault's names in listing order, sorted again only when a secret was added
    (secrets are never deleted here), so paging 20,000 secrets does not sort 800 times."""

    def __init__(self) -> None:
        self._count = -1
        self._names: list[str] = []

    def names(self, vault: dict[str, list[SecretVersion]]) -> list[str]:
        if self._count != len(vault):
            self._names = sorted(name for name, versions in vault.items() if versions)
            self._count = len(vault)
        return self._names


_NAMES = web.AppKey("name_order", _NameOrder)


def _secret_item(request: web.Request, current: SecretVersion) -> dict[str, Any]:
    """A SecretItem of GetSecrets: the current version's metadata under the base id."""
    item = _item(request, current)
    item["id"] = f"{_base_url(request)}/secrets/{current.name}"
    return item


def _window(request: web.Request, total: int) -> tuple[slice, str | None]:
    """This page's share of a listing of `total` items, and the next link's query (None on
    the last page).

    A page holds ``maxresults`` items unless ``state.vault_page_sizes`` says otherwise for
    it: Key Vault does not fill its pages. Recorded listings show pages of 0, 0, 4 and 2
    deleted secrets each carrying a nextLink, then an empty last page with ``"nextLink":
    null`` (azure-sdk-assets, python/sdk/keyvault/azure-keyvault-secrets recording
    test_example_secret_list_operations[2025-07-01], @956559ff), so a caller must follow
    the next link, never stop at a short or empty page.
    """
    page_size = _page_size(request)
    offset, page_no = _skip(request)
    sizes = request.app[STATE].vault_page_sizes
    size = sizes[page_no] if page_no < len(sizes) else page_size
    end = min(offset + size, total)
    more = end < total or page_no + 1 < len(sizes)
    return slice(offset, end), _next_query(request, end, page_no + 1) if more else None


def _next_query(request: web.Request, offset: int, page_no: int) -> str:
    """A next link's query: ``maxresults`` only when the caller sent one. Recorded sessions
    show both forms: ``...:443/secrets?api-version=2025-07-01&$skiptoken=...`` for a listing
    without it (azure-sdk-assets, python/sdk/keyvault/azure-keyvault-secrets recording
    test_example_secret_list_operations[2025-07-01], @956559ff), ``...&maxresults=1`` with
    it (azure-rest-api-specs GetSecrets-example.json)."""
    query = {
        "api-version": request.query.get("api-version", ""),
        "$skiptoken": base64.urlsafe_b64encode(f"{offset}:{page_no}".encode()).decode(),
    }
    if "maxresults" in request.query:
        query["maxresults"] = request.query["maxresults"]
    return urlencode(query)


def _bundle(request: web.Request, version: SecretVersion, *, with_value: bool) -> dict[str, Any]:
    """A SecretBundle: what set and get return."""
    bundle = _item(request, version)
    if with_value:
        bundle = {"value": version.value, **bundle}
    return bundle


def _readable(request: web.Request, version: SecretVersion) -> web.Response:
    if not version.enabled:
        raise ApiError(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            extra={"innererror": {"code": "SecretDisabled"}},
        )
    return web.json_response(_bundle(request, version, with_value=True))


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# ----- request parsing --------------------------------------------------------------------


def _api_version(request: web.Request) -> None:
    if "api-version" not in request.query:
        raise ApiError(400, "BadParameter", "The 'api-version' query parameter is missing.")


def _name(request: web.Request) -> str:
    _api_version(request)
    name = request.match_info["name"]
    if not NAME.match(name):
        raise ApiError(400, "BadParameter", f"The request URI contains an invalid name: {name}")
    return name


def _versions(request: web.Request, name: str) -> list[SecretVersion]:
    versions = request.app[STATE].vault.get(name.lower())
    if not versions:
        raise _not_found(name)
    return versions


def _not_found(label: str) -> ApiError:
    return ApiError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {label} was not found in this key vault. If you recently "
        "deleted this secret you may be able to recover it using the correct recovery command. "
        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def _page_size(request: web.Request) -> int:
    raw = request.query.get("maxresults")
    if raw is None:
        return DEFAULT_PAGE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE:
        raise ApiError(
            400,
            "BadParameter",
            f"invalid maxresults: {raw}. The value must be between 1 and {MAX_PAGE}.",
        )
    return size


def _skip(request: web.Request) -> tuple[int, int]:
    """Where a page starts: the item offset and the page's number (``$skiptoken``)."""
    token = request.query.get("$skiptoken")
    if token is None:
        return 0, 0
    try:
        offset, _, page_no = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return max(0, int(offset)), max(0, int(page_no or 0))
    except ValueError:
        raise ApiError(400, "BadParameter", "The $skiptoken is invalid.") from None


def _optional_str(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ApiError(400, "BadParameter", f"The parameter '{key}' must be a string.")


def _tags(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ApiError(400, "BadParameter", "Tags must be an object of string names and values.")
    if len(raw) > MAX_TAGS:
        raise ApiError(
            400, "BadParameter", f"Too many tags: a secret can have at most {MAX_TAGS} tags."
        )
    for tag, value in raw.items():
        if len(tag) > MAX_TAG_NAME:
            raise ApiError(
                400,
                "BadParameter",
                f"Tag name is too long: a tag name can have at most {MAX_TAG_NAME} characters.",
            )
        if len(value) > MAX_TAG_VALUE:
            raise ApiError(
                400,
                "BadParameter",
                f"The value of tag '{tag}' is too long: a tag value can have at most "
                f"{MAX_TAG_VALUE} characters.",
            )
    return dict(raw)


def _attributes(raw: object) -> dict[str, object]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "BadParameter", "The parameter 'attributes' must be an object.")
    return raw


def _bool(attributes: dict[str, object], key: str, *, default: bool) -> bool:
    value = attributes.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, "BadParameter", f"The attribute '{key}' must be a boolean.")
    return value


def _timestamp(attributes: dict[str, object], key: str) -> datetime | None:
    value = attributes.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(
            400, "BadParameter", f"The attribute '{key}' must be a Unix time in seconds."
        )
    return datetime.fromtimestamp(value, UTC)
