"""The sandbox's Microsoft.Web routes on its Resource Manager: sites, slots and their Key
Vault references (see sandbox/web_sites.py for how references resolve).

Routes (any ``api-version``; shapes from azure-rest-api-specs, Microsoft.Web WebApps.json):

- ``GET /subscriptions/{sub}/providers/Microsoft.Web/sites`` (WebApps_List: production
  sites only, no slots) and ``GET .../sites/{name}/slots`` (WebApps_ListSlots);
- ``GET .../sites/{name}[/slots/{slot}]/config/configreferences/appsettings``
  (WebApps_GetAppSettingsKeyVaultReferences[Slot]): an ApiKVReferenceCollection, one
  ApiKVReference per app setting that is a reference (plain settings are not listed);
- ``GET .../config/configreferences/connectionstrings``
  (WebApps_GetSiteConnectionStringKeyVaultReferences[Slot], ApiKVReference.tsp): the same
  collection for the connection strings that are references;
- ``POST .../config/configreferences/appsettings/refresh``: resolves every app setting
  reference now and answers 200 with the same collection (the docs' "Understand rotation"
  section; the answer's shape is that of a real refresh response, with ``id`` and
  ``nextLink`` null). Connection strings are left to their 24 h cache (web_sites.py says
  why: no documented refresh names them).

RBAC (403 ``AuthorizationFailed`` naming the action, as ARM does): listing needs
``Microsoft.Web/sites/read`` and ``.../sites/slots/read``, and reading a site's app-setting
references ``Microsoft.Web/sites/config/appsettings/read`` (slots add ``slots/`` after
``sites/``), the operations Microsoft publishes for them (tests/operations/microsoft.web.txt).
For the other two calls no published operation exists, and no document says which action
ARM checks. The sandbox asks for the name ARM's rule would give (the request path read as
type/name pairs, a POST's trailing pair making an action, as ``hostruntime/admin/host/
synctriggers`` is ``Microsoft.Web/sites/hostruntime/host/action``): a read of
``sites/config/connectionstrings`` for ``config/configreferences/connectionstrings`` (also
the ARM type azure-rest-api-specs gives those references), and
``Microsoft.Web/sites/config/appsettings/action`` for the refresh. Those names are
registered nowhere, so the sandbox's Resource Manager refuses a custom role naming them
(sandbox/operations.py), and only a wildcard grants them (Website Contributor's
``Microsoft.Web/sites/*``): the stricter reading, under which the least-privilege custom
role cannot make these calls and `doctor` says so. Built-in Reader's ``*/read`` allows the
reads but not the refresh, as in Azure.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.arm_api import _authorized, _page, _require, _subscription
from sandbox.http_common import STATE, ApiError
from sandbox.web_sites import Resolution, WebSite

WEB = "/providers/Microsoft.Web/sites"
READ_SITES = "Microsoft.Web/sites/read"
READ_SLOTS = "Microsoft.Web/sites/slots/read"
READ_REFERENCES = "Microsoft.Web/sites/config/appsettings/read"
REFRESH_REFERENCES = "Microsoft.Web/sites/config/appsettings/action"
SLOT_READ_REFERENCES = "Microsoft.Web/sites/slots/config/appsettings/read"
SLOT_REFRESH_REFERENCES = "Microsoft.Web/sites/slots/config/appsettings/action"
READ_CS_REFERENCES = "Microsoft.Web/sites/config/connectionstrings/read"
SLOT_READ_CS_REFERENCES = "Microsoft.Web/sites/slots/config/connectionstrings/read"
REFS = "/config/configreferences/appsettings"
CS_REFS = "/config/configreferences/connectionstrings"


def add_routes(app: web.Application) -> None:
    site = "/subscriptions/{sub}/resourceGroups/{rg}" + WEB + "/{name}"
    slot = site + "/slots/{slot}"
    app.router.add_get("/subscriptions/{sub}" + WEB, list_sites)
    app.router.add_get(site + "/slots", list_slots)
    for path in (site, slot):
        app.router.add_get(path + REFS, get_references)
        app.router.add_post(path + REFS + "/refresh", refresh_references)
        app.router.add_get(path + CS_REFS, get_connection_string_references)


async def list_sites(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    sub = _subscription(request)
    _require(state, token, READ_SITES, f"/subscriptions/{sub}")
    sites = [
        s for s in state.web_sites.values() if s.slot is None and s.subscription_id.lower() == sub
    ]
    return _page([_site_json(s) for s in sorted(sites, key=lambda s: s.id.lower())])


async def list_slots(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    production = _site(request)
    _require(state, token, READ_SLOTS, production.id + "/slots")
    slots = [
        s
        for s in state.web_sites.values()
        if s.slot is not None and s.site_id.lower() == production.id.lower()
    ]
    return _page([_site_json(s) for s in sorted(slots, key=lambda s: s.id.lower())])


async def get_references(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    site = _site(request)
    _require(state, token, SLOT_READ_REFERENCES if site.slot else READ_REFERENCES, site.id)
    found = site.resolutions(state.vault, state.vault_name, state.clock.now())
    return _page([_reference_json(site, k, r) for k, r in sorted(found.items())])


async def get_connection_string_references(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    site = _site(request)
    _require(state, token, SLOT_READ_CS_REFERENCES if site.slot else READ_CS_REFERENCES, site.id)
    found = site.resolutions(
        state.vault, state.vault_name, state.clock.now(), connection_strings=True
    )
    return _page([_reference_json(site, k, r, CS_REFS) for k, r in sorted(found.items())])


async def refresh_references(request: web.Request) -> web.Response:
    state, token = _authorized(request)
    site = _site(request)
    _require(state, token, SLOT_REFRESH_REFERENCES if site.slot else REFRESH_REFERENCES, site.id)
    found = site.resolutions(state.vault, state.vault_name, state.clock.now(), refresh=True)
    items = [_reference_json(site, k, r) for k, r in sorted(found.items())]
    return web.json_response({"id": None, "nextLink": None, "value": items})


def _site(request: web.Request) -> WebSite:
    """The site or slot the path names, or ARM's 404."""
    state = request.app[STATE]
    sub = _subscription(request)
    info = request.match_info
    site_id = f"/subscriptions/{sub}/resourceGroups/{info['rg']}{WEB}/{info['name']}"
    if "slot" in info:
        site_id += f"/slots/{info['slot']}"
    site = state.web_sites.get(site_id.lower())
    if site is None:
        kind, name = (
            ("Microsoft.Web/sites/slots", f"{info['name']}/{info['slot']}")
            if "slot" in info
            else ("Microsoft.Web/sites", info["name"])
        )
        raise ApiError(
            404,
            "ResourceNotFound",
            f"The Resource '{kind}/{name}' under resource group '{info['rg']}' was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )
    return site


def _site_json(site: WebSite) -> dict[str, Any]:
    name = f"{site.name}/{site.slot}" if site.slot else site.name
    host = f"{site.name}-{site.slot}" if site.slot else site.name
    return {
        "id": site.id,
        "name": name,
        "type": "Microsoft.Web/sites/slots" if site.slot else "Microsoft.Web/sites",
        "kind": site.kind,
        "location": site.location,
        "properties": {
            "state": "Running",
            "defaultHostName": f"{host}.azurewebsites.net",
            "enabled": True,
        },
    }


def _reference_json(site: WebSite, setting: str, r: Resolution, path: str = REFS) -> dict[str, Any]:
    """An ApiKVReference (Web RP): no value, ever. A site answering as Microsoft's
    published example does gives only the id and three properties (sandbox/web_sites.py)."""
    if site.reference_fields == "published-example":
        props = {"secretName": r.secret_name, "vaultName": r.vault_name}
        if r.secret_version:
            props["secretVersion"] = r.secret_version
        return {"id": f"{site.id}{path}/{setting}", "properties": props}
    return {
        "id": f"{site.id}{path}/{setting}",
        "name": setting,
        "type": "Microsoft.Web/sites/config/configreferences",
        "location": site.location,
        "properties": {
            "reference": r.reference,
            "status": r.status,
            "vaultName": r.vault_name,
            "secretName": r.secret_name,
            "secretVersion": r.secret_version,
            "identityType": {"type": "SystemAssigned"},
            "details": r.details,
            "source": "KeyVault",
            "activeVersion": r.active_version,
        },
    }
