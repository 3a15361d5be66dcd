"""Azure Resource Manager calls on App Service / Functions sites (Microsoft.Web).

Five calls, through azure-mgmt-core's ARM pipeline (bearer token with ARM's challenge
handling, azure-core retries honouring Retry-After) rather than azure-mgmt-web, a large
package (one client for the whole Web RP) that a cold start would load for four GETs; the
refresh call is not in the Web RP's REST spec, only in the App Service docs, so it would be
a raw request anyway.

- ``GET /subscriptions/{id}/providers/Microsoft.Web/sites`` (WebApps_List: production
  sites only) and ``GET {site}/slots`` (WebApps_ListSlots): the sites and slots to look at;
- ``GET {site}/config/configreferences/appsettings``
  (WebApps_GetAppSettingsKeyVaultReferences[Slot]): every app setting that is a Key Vault
  reference, with ApiKVReference's ``reference``, ``status``, ``vaultName``,
  ``secretName``, ``secretVersion``, ``activeVersion`` and ``details``. Unlike listing the
  app settings (``config/appsettings/list``), it returns no setting values, so the rotator
  never holds another application's secrets;
- ``GET {site}/config/configreferences/connectionstrings``
  (WebApps_GetSiteConnectionStringKeyVaultReferences[Slot], azure-rest-api-specs
  Microsoft.Web/AppService/ApiKVReference.tsp): the same ApiKVReferenceCollection for the
  connection strings, which App Service resolves as Key Vault references too (same docs
  page, first paragraph). A site may read the password through one of those only;
- ``POST {site}/config/configreferences/appsettings/refresh``: resolve every reference
  again now ("Use Key Vault references as app settings", section "Understand rotation").
  It is the only refresh Microsoft documents: none names connection strings, so whether
  it re-resolves them is not known and nothing here counts on it (a connection string
  reference is confirmed only when it is read resolving the new version).

Microsoft's published example of the appsettings answer (azure-rest-api-specs,
Microsoft.Web/AppService/examples/2025-03-01/GetKeyVaultReferencesForAppSettings.json)
has only ``secretName``, ``secretVersion`` and ``vaultName``; the spec's ApiKVReference
schema lists ``status`` and ``activeVersion`` but does not say when they are filled in. A
missing status is recorded as not reported (`UNREPORTED`), a missing activeVersion as
None: neither confirms anything, and the report says why the grace period is kept.

Which RBAC action ARM checks for the connection strings' list and for the refresh, no
published operation says (tests/operations/microsoft.web.txt has neither): doctor tries
both calls rather than inferring a name.

Everything it hands out is our own `ConsumerReference`; every SDK error becomes one of
`rotation.errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import AsyncRetryPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.core import AsyncARMPipelineClient
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.policies import AsyncARMChallengeAuthenticationPolicy

from rotation.azure.arm_items import ARM
from rotation.azure.errors import RETRY, map_arm_errors
from rotation.azure.trust import connection_options
from rotation.azure.wire import Problem, Wire, parse
from rotation.errors import MalformedAnswer, ServiceUnavailable
from rotation.model import UNREPORTED, ConsumerReference, SettingType
from rotation.settings import Settings

#: The Web RP API version of these calls (stable; ApiKVReference has every field we read).
API_VERSION = "2024-04-01"


class WebSiteReader:
    """Sites, slots and their Key Vault references, through one ARM pipeline."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        endpoint: str,
        options: Mapping[str, Any],
        *,
        retry: Mapping[str, float] = RETRY,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        policies = [
            UserAgentPolicy(sdk_moniker="acs-smtp-rotation"),
            AsyncRetryPolicy(**retry),
            AsyncARMChallengeAuthenticationPolicy(credential, self._endpoint + "/.default"),
        ]
        self._client: AsyncARMPipelineClient[Any, Any] = AsyncARMPipelineClient(
            base_url=self._endpoint, policies=policies, **options
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credential: AsyncTokenCredential,
        *,
        retry: Mapping[str, float] = RETRY,
    ) -> WebSiteReader:
        return cls(credential, settings.arm_endpoint, connection_options(settings), retry=retry)

    async def list_sites(self, subscription_id: str) -> list[str]:
        """The production sites of a subscription (apps and function apps), as ids."""
        what = f"the App Service sites of subscription {subscription_id}"
        sites = await self._pages(
            f"/subscriptions/{subscription_id}/providers/Microsoft.Web/sites", what
        )
        return _ids(sites, what)

    async def list_slots(self, site_id: str) -> list[str]:
        """The deployment slots of a site, as ids."""
        what = f"the deployment slots of {site_id}"
        return _ids(await self._pages(f"{site_id}/slots", what), what)

    async def references(self, site_id: str) -> list[ConsumerReference]:
        """The site's app settings and connection strings that are Key Vault references, as
        App Service resolved them. Either read failing fails the whole: a site whose
        connection strings cannot be read may hold the password there."""
        settings, connection_strings = await asyncio.gather(  # both on every confirm poll
            self._pages(
                f"{site_id}/config/configreferences/appsettings",
                f"the Key Vault references of {site_id}",
            ),
            self._pages(
                f"{site_id}/config/configreferences/connectionstrings",
                f"the connection string Key Vault references of {site_id}",
            ),
        )
        return [_reference(site_id, item, "appSetting") for item in settings] + [
            _reference(site_id, item, "connectionString") for item in connection_strings
        ]

    async def refresh(self, site_id: str) -> None:
        """Makes the site resolve its Key Vault references again, now."""
        await self._send(
            "POST",
            f"{site_id}/config/configreferences/appsettings/refresh",
            f"a refresh of the Key Vault references of {site_id}",
        )

    async def close(self) -> None:
        await self._client.close()

    # ----- helpers -----------------------------------------------------------------------

    async def _pages(self, path: str, what: str) -> list[object]:
        items: list[object] = []
        url: str | None = path
        while url:
            body = await self._send("GET", url, what)
            value, url = body.get("value", []), body.get("nextLink")
            if not isinstance(value, list) or not isinstance(url, str | None):
                raise MalformedAnswer(
                    f"{ARM} answered {what} with a page that cannot be read: its 'value' is "
                    "not a list, or its 'nextLink' not a link"
                )
            items += value
        return items

    async def _send(self, method: str, path_or_link: str, what: str) -> dict[str, Any]:
        url = path_or_link
        if not url.startswith("https://"):
            url = f"{self._endpoint}{path_or_link}"
        request = HttpRequest(
            method, url, params={} if "api-version=" in url else {"api-version": API_VERSION}
        )
        with _map_errors(what):
            response = await self._client.send_request(request)
            if response.status_code >= 400:
                raise HttpResponseError(response=response, error_format=ARMErrorFormat)
            body = response.json() if response.content else {}
        if not isinstance(body, dict):
            raise ServiceUnavailable(f"Azure Resource Manager answered {what} with no object")
        return body


@contextmanager
def _map_errors(what: str) -> Iterator[None]:
    """ARM's mapping, with the fix for a 403 on a consumer site, and a body that is not JSON."""
    with map_arm_errors(what, _site_forbidden):
        try:
            yield
        except ValueError:
            raise ServiceUnavailable(
                f"Azure Resource Manager answered {what} with something other than JSON"
            ) from None


def _site_forbidden(what: str, why: str) -> str:
    # ARM's own message (`why`) names the exact action it refused; keep it.
    return (
        f"could not read or refresh {what}: the rotator's identity needs, at that "
        "scope, the consumer checker role of infra/modules/custom-roles.bicep for "
        "listing sites and reading app-setting references, and Website Contributor "
        "for the connection-string references and the refresh, which no published "
        f"operation names (docs/deploy.md) ({why})"
    )


def _ids(items: list[object], what: str) -> list[str]:
    """The ids of listed sites or slots; one without a readable id could be a consumer we
    cannot see, so the whole listing is unusable (the subscription or site unreachable)."""
    ids = [i.get("id") for i in items if isinstance(i, dict)]
    if len(ids) != len(items) or not all(isinstance(i, str) and i for i in ids):
        raise MalformedAnswer(f"{ARM} answered {what} with an item whose id cannot be read")
    return [str(i) for i in ids]


class _ReferenceProperties(Wire):
    """ApiKVReference's properties as read (Microsoft.Web ApiKVReference.tsp); each optional,
    since Microsoft's own example leaves most of them out."""

    secretName: str | None = None
    status: str | None = None
    secretVersion: str | None = None
    activeVersion: str | None = None
    details: str | None = None
    vaultName: str | None = None


class _Reference(Wire):
    name: str | None = None
    id: str | None = None
    properties: _ReferenceProperties | None = None


def _reference(site_id: str, item: object, setting_type: SettingType) -> ConsumerReference:
    """One reference of the site; one that cannot be read makes the site's whole answer
    unusable (MalformedAnswer, naming the field): it may be the password's, so the site is
    shown unreachable and no app retires early on its word."""
    found = parse(_Reference, item)
    if isinstance(found, Problem):
        raise MalformedAnswer(
            f"{ARM} answered a Key Vault reference of {site_id} that cannot be read ({found})"
        )
    props = found.properties or _ReferenceProperties()
    setting = found.name or (found.id or "").rsplit("/", 1)[-1]
    return ConsumerReference(
        site_id=site_id,
        setting=setting,
        secret_name=props.secretName or "",
        status=props.status or UNREPORTED,
        pinned_version=props.secretVersion or None,
        active_version=props.activeVersion or None,
        details=props.details or None,
        vault_name=props.vaultName or "",
        setting_type=setting_type,
    )
