"""Key Vault soft delete in the sandbox: reading a deleted secret, and recovering it.

- ``GET /deletedsecrets/{name}``: a DeletedSecretBundle (``recoveryId``, ``deletedDate``,
  ``scheduledPurgeDate`` and the latest version's id, attributes, tags and content type,
  never a value), as in azure-rest-api-specs
  ``specification/keyvault/Security.KeyVault.Secrets/examples/7.6/GetDeletedSecret-example.json``.
  A name that is not deleted, or whose deletion has not finished yet, answers 404
  ``SecretNotFound`` "Deleted Secret not found: <name>" (the service's words, as recorded in
  azure-sdk-for-js's Key Vault test recordings; still 404 while deleting, as scripts that
  wait for it observe). The spec says the operation needs the *secrets/get* permission,
  the SDKs' docs say *secrets/list*; the sandbox asks for both, the stricter reading.
- ``GET /deletedsecrets``: DeletedSecretItems, ``maxresults`` (1..25) per page and a
  ``nextLink`` with ``$skiptoken`` (GetDeletedSecrets-example.json, 2025-07-01: the item id
  is the secret's id without a version). Needs *secrets/list*. A deletion still running
  is not listed yet, as it is not readable yet.
- ``POST /deletedsecrets/{name}/recover``: `az keyvault secret recover`; answers the
  recovered latest version without its value (RecoverDeletedSecret-example.json). While
  the deletion is still running it answers 409 "Secret is currently being deleted."
  (Azure/azure-cli#12722, hashicorp/terraform-provider-azurerm#10454).

Deleting (``state.soft_delete_secret``) and purging are seeded, not served: the rotator's
role can do neither, and an operator's purge is out of scope here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.http_common import STATE, ApiError
from sandbox.state import DeletedSecret
from sandbox.vault_api import (
    GET,
    LIST,
    RECOVER,
    _attributes_json,
    _authorize,
    _base_url,
    _bundle,
    _epoch,
    _name,
    _window,
)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/deletedsecrets", list_deleted_secrets)
    app.router.add_get("/deletedsecrets/{name}", get_deleted_secret)
    app.router.add_post("/deletedsecrets/{name}/recover", recover_deleted_secret)


async def list_deleted_secrets(request: web.Request) -> web.Response:
    _authorize(request, LIST)
    if "api-version" not in request.query:
        raise ApiError(400, "BadParameter", "The 'api-version' query parameter is missing.")
    state = request.app[STATE]
    now = state.clock.now()
    ready = sorted(
        (d for d in state.deleted_secrets.values() if now >= d.ready), key=lambda d: d.name.lower()
    )
    window, query = _window(request, len(ready))
    next_link = None if query is None else f"{_base_url(request)}/deletedsecrets?{query}"
    page = [_item(request, d) for d in ready[window]]
    return web.json_response({"value": page, "nextLink": next_link})


def _item(request: web.Request, deleted: DeletedSecret) -> dict[str, Any]:
    latest = deleted.versions[-1]
    item: dict[str, Any] = {
        "recoveryId": f"{_base_url(request)}/deletedsecrets/{deleted.name}",
        "deletedDate": _epoch(deleted.deleted),
        "scheduledPurgeDate": _epoch(deleted.scheduled_purge),
        "id": f"{_base_url(request)}/secrets/{deleted.name}",
        "attributes": _attributes_json(latest),
    }
    if latest.tags:  # Key Vault leaves out what is not set
        item["tags"] = dict(latest.tags)
    if latest.content_type is not None:
        item["contentType"] = latest.content_type
    return item


async def get_deleted_secret(request: web.Request) -> web.Response:
    _authorize(request, GET)
    _authorize(request, LIST)
    name = _name(request)
    deleted = _finished(request, name)
    latest = deleted.versions[-1]
    body: dict[str, Any] = {
        "recoveryId": f"{_base_url(request)}/deletedsecrets/{deleted.name}",
        "deletedDate": _epoch(deleted.deleted),
        "scheduledPurgeDate": _epoch(deleted.scheduled_purge),
        **_bundle(request, latest, with_value=False),
    }
    return web.json_response(body)


async def recover_deleted_secret(request: web.Request) -> web.Response:
    _authorize(request, RECOVER)
    name = _name(request)
    state = request.app[STATE]
    deleted = state.deleted_secrets.get(name.lower())
    if deleted is not None and state.clock.now() < deleted.ready:
        raise ApiError(
            409,
            "Conflict",
            "Secret is currently being deleted.",
            extra={"innererror": {"code": "ObjectIsBeingDeleted"}},
        )
    _finished(request, name)
    versions = state.recover_secret(name)
    return web.json_response(_bundle(request, versions[-1], with_value=False))


def _finished(request: web.Request, name: str) -> DeletedSecret:
    """The deleted secret once its deletion has finished; 404 before and otherwise."""
    state = request.app[STATE]
    deleted = state.deleted_secrets.get(name.lower())
    if deleted is None or state.clock.now() < deleted.ready:
        raise ApiError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
    return deleted
