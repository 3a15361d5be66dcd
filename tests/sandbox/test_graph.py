"""The sandbox's Microsoft Graph, driven by msgraph-sdk's GraphServiceClient.

The client is built exactly as the product builds it (rotation.azure.entra.graph_client); only
the endpoints and the extra CA come from the sandbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.applications.applications_request_builder import (
    ApplicationsRequestBuilder,
)
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody,
)
from msgraph.generated.models.application import Application
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.service_principals.service_principals_request_builder import (
    ServicePrincipalsRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from rotation.azure.entra import graph_client
from rotation.settings import Settings
from sandbox.seed import Principal
from sandbox.server import Sandbox
from sandbox.state import GRAPH_READ_WRITE_ALL
from tests.sandbox.conftest import client_secret_credential

LIST_APPS = "graph GET /applications"
ADD_PASSWORD = "graph POST /applications/{id}/addPassword"

Connect = Callable[..., Awaitable[GraphServiceClient]]
AppQuery = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters
SpQuery = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters


@pytest.fixture
async def connect(sandbox: Sandbox, settings: Settings) -> AsyncIterator[Connect]:
    """Opens a Graph client as some principal (default: the rotator); closes them all."""
    closers: list[Callable[[], Awaitable[None]]] = []

    async def open_client(
        principal: Principal | None = None, *, max_retries: int = 3
    ) -> GraphServiceClient:
        who = principal or sandbox.rotator
        credential = client_secret_credential(sandbox, who.client_id, who.client_secret)
        client, http = graph_client(settings, credential, max_retries=max_retries)
        closers.extend([http.aclose, credential.close])
        return client

    yield open_client
    for close in closers:
        await close()


def _principal(sandbox: Sandbox, roles: set[str]) -> Principal:
    app = sandbox.state.add_application(sandbox.tenant_id, "other-tool")
    sp = sandbox.state.add_service_principal(app, roles)
    return Principal(app, sp, sandbox.state.add_password(app))


async def _apps(client: GraphServiceClient, **query: object) -> list[Application]:
    page = await client.applications.get(RequestConfiguration(query_parameters=AppQuery(**query)))  # type: ignore[arg-type]
    assert page is not None
    return list(page.value or [])


def _add_body(display_name: str, end: datetime | None = None) -> AddPasswordPostRequestBody:
    return AddPasswordPostRequestBody(
        password_credential=PasswordCredential(display_name=display_name, end_date_time=end)
    )


# ----- reading ----------------------------------------------------------------------------


async def test_filter_by_app_id_eq_and_in(sandbox: Sandbox, connect: Connect) -> None:
    senders = [sandbox.add_sender() for _ in range(3)]
    client = await connect()
    one = await _apps(client, filter=f"appId eq '{senders[0].app_id}'")
    two = await _apps(client, filter=f"appId in ('{senders[1].app_id}', '{senders[2].app_id}')")
    assert [a.app_id for a in one] == [senders[0].app_id]
    assert {a.app_id for a in two} == {senders[1].app_id, senders[2].app_id}


async def test_more_than_15_values_in_a_filter_is_refused(connect: Connect) -> None:
    client = await connect()
    ids = ", ".join(f"'{uuid.uuid4()}'" for _ in range(16))
    with pytest.raises(ODataError) as caught:
        await _apps(client, filter=f"appId in ({ids})")
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "Request_UnsupportedQuery"


async def test_filter_on_an_unsupported_property_is_refused(connect: Connect) -> None:
    client = await connect()
    with pytest.raises(ODataError) as caught:
        await _apps(client, filter="notes eq 'x'")
    assert caught.value.response_status_code == 400


async def test_select_returns_only_the_selected_properties(
    sandbox: Sandbox, connect: Connect
) -> None:
    sender = sandbox.add_sender()
    client = await connect()
    (app,) = await _apps(client, filter=f"appId eq '{sender.app_id}'", select=["id", "appId"])
    assert app.id == sender.app.object_id
    assert app.display_name is None
    assert app.password_credentials is None


async def test_select_of_an_unknown_property_is_refused(connect: Connect) -> None:
    client = await connect()
    with pytest.raises(ODataError) as caught:
        await _apps(client, select=["id", "secretSauce"])
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert "secretSauce" in str(caught.value.error.message)


async def test_paging_follows_next_links_to_every_application(
    sandbox: Sandbox, connect: Connect
) -> None:
    for _ in range(4):
        sandbox.add_sender()
    client = await connect()
    query = RequestConfiguration(query_parameters=AppQuery(top=2))
    page = await client.applications.get(query)
    seen: list[str] = []
    pages = 0
    while page is not None:
        pages += 1
        seen += [str(a.app_id) for a in page.value or []]
        if not page.odata_next_link:
            break
        page = await client.applications.with_url(page.odata_next_link).get()
    assert pages == 3  # rotator + 4 senders, two per page
    assert sorted(seen) == sorted(a.app_id for a in sandbox.state.applications.values())
    assert sandbox.state.requests[LIST_APPS] == 3


async def test_top_above_999_is_refused(connect: Connect) -> None:
    client = await connect()
    with pytest.raises(ODataError) as caught:
        await _apps(client, top=1000)
    assert caught.value.response_status_code == 400


async def test_get_application_by_object_id_and_by_app_id(
    sandbox: Sandbox, connect: Connect
) -> None:
    sender = sandbox.add_sender()
    client = await connect()
    by_id = await client.applications.by_application_id(sender.app.object_id).get()
    by_app_id = await client.applications_with_app_id(sender.app_id).get()
    assert by_id is not None
    assert by_app_id is not None
    assert by_id.app_id == by_app_id.app_id == sender.app_id
    assert by_id.password_credentials is not None
    (cred,) = by_id.password_credentials
    assert str(cred.key_id) == sender.password.key_id
    assert cred.secret_text is None  # Graph never returns a secret after addPassword
    assert cred.hint == sender.client_secret[:3]


async def test_unknown_application_is_404(connect: Connect) -> None:
    client = await connect()
    with pytest.raises(ODataError) as caught:
        await client.applications.by_application_id(str(uuid.uuid4())).get()
    assert caught.value.response_status_code == 404
    assert caught.value.error is not None
    assert caught.value.error.code == "Request_ResourceNotFound"


async def test_owned_by_reads_every_application_of_the_tenant(
    sandbox: Sandbox, connect: Connect
) -> None:
    """Graph limits OwnedBy's *writes* to owned apps; reads see the whole tenant."""
    mine, theirs = sandbox.add_sender(), sandbox.add_sender(owned=False)
    client = await connect()
    found = await _apps(client, filter=f"appId in ('{mine.app_id}', '{theirs.app_id}')")
    assert {a.app_id for a in found} == {mine.app_id, theirs.app_id}


async def test_reading_without_an_application_permission_is_403(
    sandbox: Sandbox, connect: Connect
) -> None:
    client = await connect(_principal(sandbox, set()))
    with pytest.raises(ODataError) as caught:
        await _apps(client)
    assert caught.value.response_status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "Authorization_RequestDenied"


async def test_service_principals_by_id_and_filters(sandbox: Sandbox, connect: Connect) -> None:
    a, b = sandbox.add_sender(), sandbox.add_sender()
    client = await connect()
    one = await client.service_principals.by_service_principal_id(a.principal_id).get()
    assert one is not None
    assert one.app_id == a.app_id
    query = SpQuery(
        filter=f"id in ('{a.principal_id}', '{b.principal_id}')", select=["id", "appId"]
    )
    page = await client.service_principals.get(RequestConfiguration(query_parameters=query))
    assert page is not None
    assert page.value is not None
    assert {(s.id, s.app_id) for s in page.value} == {
        (a.principal_id, a.app_id),
        (b.principal_id, b.app_id),
    }
    by_app = SpQuery(filter=f"appId eq '{b.app_id}'")
    page = await client.service_principals.get(RequestConfiguration(query_parameters=by_app))
    assert page is not None
    assert [s.id for s in page.value or []] == [b.principal_id]


async def test_service_principals_carry_their_type_and_owner_tenant_as_graph_does(
    sandbox: Sandbox, connect: Connect
) -> None:
    """The SDK's own model reads servicePrincipalType and appOwnerOrganizationId (a GUID)."""
    sender = sandbox.add_sender()
    identity = sandbox.add_managed_identity_holder()
    partner = sandbox.add_other_tenant_holder()
    client = await connect()
    fields = ["id", "appId", "servicePrincipalType", "appOwnerOrganizationId"]

    seen = {}
    for object_id in (sender.principal_id, identity.object_id, partner.principal_id):
        query = SpQuery(filter=f"id eq '{object_id}'", select=fields)
        page = await client.service_principals.get(RequestConfiguration(query_parameters=query))
        assert page is not None
        (sp,) = page.value or []
        seen[object_id] = (sp.service_principal_type, sp.app_owner_organization_id)

    assert seen[sender.principal_id] == ("Application", uuid.UUID(sandbox.tenant_id))
    assert seen[identity.object_id] == ("ManagedIdentity", None)
    assert seen[partner.principal_id] == ("Application", uuid.UUID(partner.app.tenant_id))
    assert partner.app.tenant_id != sandbox.tenant_id


# ----- addPassword / removePassword -----------------------------------------------------------


async def test_add_password_returns_the_secret_once(sandbox: Sandbox, connect: Connect) -> None:
    sender = sandbox.add_sender()
    end = sandbox.state.clock.now() + timedelta(days=180)
    client = await connect()
    item = client.applications.by_application_id(sender.app.object_id)
    created = await item.add_password.post(_add_body("acs-smtp-rotation test", end))
    assert created is not None
    assert created.secret_text
    assert created.key_id
    stored = sender.app.passwords[-1]
    assert str(created.key_id) == stored.key_id
    assert created.secret_text == stored.secret_text
    assert created.hint == created.secret_text[:3]
    assert created.display_name == "acs-smtp-rotation test"
    assert created.end_date_time is not None
    assert abs((created.end_date_time - end).total_seconds()) < 1
    assert created.secret_text in sandbox.state.issued_secrets


async def test_add_password_defaults_to_two_years(sandbox: Sandbox, connect: Connect) -> None:
    sender = sandbox.add_sender()
    client = await connect()
    created = await client.applications.by_application_id(sender.app.object_id).add_password.post(
        _add_body("no end")
    )
    assert created is not None
    assert created.start_date_time
    assert created.end_date_time
    assert created.end_date_time - created.start_date_time == timedelta(days=730)


async def test_add_password_beyond_the_tenant_lifetime_policy_is_400() -> None:
    async with Sandbox(max_secret_lifetime=timedelta(days=90)) as sandbox:
        sender = sandbox.add_sender()
        url = f"{sandbox.graph_url}/v1.0/applications/{sender.app.object_id}/addPassword"
        token = await _token(sandbox, sandbox.rotator)
        now = datetime.now(UTC)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            too_long = {
                "passwordCredential": {"endDateTime": (now + timedelta(days=180)).isoformat()}
            }
            async with http.post(url, json=too_long, ssl=sandbox.client_ssl()) as refused:
                body = await refused.json()
            within = {"passwordCredential": {"endDateTime": (now + timedelta(days=60)).isoformat()}}
            async with http.post(url, json=within, ssl=sandbox.client_ssl()) as accepted:
                assert accepted.status == 200
    assert refused.status == 400
    assert body["error"]["code"] == "CredentialInvalidLifetimeAsPerAppPolicy"
    assert body["error"]["message"].startswith("Credential lifetime exceeds the max value")
    assert body["error"]["details"][0]["target"] == "EndDate"


async def test_remove_password_removes_it_and_unknown_key_is_400(
    sandbox: Sandbox, connect: Connect
) -> None:
    sender = sandbox.add_sender()
    key_id = uuid.UUID(sender.password.key_id)
    client = await connect()
    item = client.applications.by_application_id(sender.app.object_id)
    await item.remove_password.post(RemovePasswordPostRequestBody(key_id=key_id))
    assert sender.app.passwords == []
    with pytest.raises(ODataError) as caught:
        await item.remove_password.post(RemovePasswordPostRequestBody(key_id=key_id))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "Request_BadRequest"
    assert caught.value.error.inner_error is not None  # Graph's documented error shape


async def test_writes_to_an_app_the_rotator_does_not_own_are_403(
    sandbox: Sandbox, connect: Connect
) -> None:
    sender = sandbox.add_sender(owned=False)
    client = await connect()
    item = client.applications.by_application_id(sender.app.object_id)
    with pytest.raises(ODataError) as adding:
        await item.add_password.post(_add_body("nope"))
    key_id = uuid.UUID(sender.password.key_id)
    with pytest.raises(ODataError) as removing:
        await item.remove_password.post(RemovePasswordPostRequestBody(key_id=key_id))
    for caught in (adding, removing):
        assert caught.value.response_status_code == 403
        assert caught.value.error is not None
        assert caught.value.error.code == "Authorization_RequestDenied"
    assert len(sender.app.passwords) == 1


async def test_read_write_all_may_write_any_app(sandbox: Sandbox, connect: Connect) -> None:
    sender = sandbox.add_sender(owned=False)
    client = await connect(_principal(sandbox, {GRAPH_READ_WRITE_ALL}))
    created = await client.applications.by_application_id(sender.app.object_id).add_password.post(
        _add_body("admin")
    )
    assert created is not None
    assert len(sender.app.passwords) == 2


# ----- tokens and error bodies -----------------------------------------------------------


async def _token(sandbox: Sandbox, who: Principal, resource: str | None = None) -> str:
    async with ClientSecretCredential(
        sandbox.tenant_id,
        who.client_id,
        who.client_secret,
        authority=sandbox.login_url,
        connection_verify=str(sandbox.ca_path),
    ) as credential:
        return (await credential.get_token(f"{resource or sandbox.graph_url}/.default")).token


async def _get(sandbox: Sandbox, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(f"{sandbox.graph_url}/v1.0/applications", ssl=sandbox.client_ssl()) as r,
    ):
        return r.status, await r.json()


async def test_a_token_for_another_audience_is_401(sandbox: Sandbox) -> None:
    token = await _token(sandbox, sandbox.rotator, sandbox.arm_url)
    status, body = await _get(sandbox, token)
    assert status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"  # type: ignore[index]


async def test_a_missing_token_is_401(sandbox: Sandbox) -> None:
    status, _ = await _get(sandbox, None)
    assert status == 401


async def test_errors_have_graphs_shape(sandbox: Sandbox) -> None:
    token = await _token(sandbox, _principal(sandbox, set()))
    status, body = await _get(sandbox, token)
    assert status == 403
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "Authorization_RequestDenied"
    assert error["message"] == "Insufficient privileges to complete the operation."
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


# ----- faults and counters --------------------------------------------------------------------


async def test_429_with_retry_after_is_retried_by_the_sdk(
    sandbox: Sandbox, connect: Connect
) -> None:
    sender = sandbox.add_sender()
    fault = sandbox.state.faults.inject(ADD_PASSWORD, status=429, retry_after=1, times=1)
    client = await connect()
    created = await client.applications.by_application_id(sender.app.object_id).add_password.post(
        _add_body("after throttling")
    )
    assert created is not None
    assert created.secret_text
    assert fault.hits == 1
    assert sandbox.state.requests[ADD_PASSWORD] == 2
    assert len(sender.app.passwords) == 2  # the throttled attempt created nothing


async def test_persistent_503_reaches_the_caller_after_the_sdk_retries(
    sandbox: Sandbox, connect: Connect
) -> None:
    sandbox.state.faults.inject(LIST_APPS, status=503, retry_after=1)
    client = await connect(max_retries=1)
    with pytest.raises(ODataError) as caught:
        await _apps(client)
    assert caught.value.response_status_code == 503
    assert sandbox.state.requests[LIST_APPS] == 2


async def test_a_dropped_connection_reaches_the_client_as_a_transport_error(
    sandbox: Sandbox, connect: Connect
) -> None:
    sandbox.state.faults.inject(LIST_APPS, drop=True, times=1)
    client = await connect()
    with pytest.raises(httpx.TransportError):
        await _apps(client)
    # the next call goes through (the rotator's app and its API's)
    assert len(await _apps(client)) == len(sandbox.state.applications)


async def test_latency_faults_delay_but_do_not_fail(sandbox: Sandbox, connect: Connect) -> None:
    fault = sandbox.state.faults.inject("graph *", latency=0.05, times=1)
    client = await connect()
    assert len(await _apps(client)) == len(sandbox.state.applications)
    assert fault.hits == 1


async def test_a_response_time_holds_every_answer_of_its_service(
    sandbox: Sandbox, connect: Connect
) -> None:
    """bench/ sets a service's response time: no answer leaves sooner after its request
    arrived (the sandbox's own work counts towards it); other services are not held."""
    sandbox.state.response_times["graph"] = 0.25
    client = await connect()
    started = time.monotonic()
    assert len(await _apps(client)) == len(sandbox.state.applications)
    assert time.monotonic() - started >= 0.25
    assert sandbox.state.requests[LIST_APPS] == 1


async def test_every_request_is_counted_by_route_template(
    sandbox: Sandbox, connect: Connect
) -> None:
    sender = sandbox.add_sender()
    client = await connect()
    await client.applications.by_application_id(sender.app.object_id).get()
    await client.applications_with_app_id(sender.app_id).get()
    await _apps(client)
    requests = sandbox.state.requests
    assert requests["graph GET /applications/{id}"] == 1
    assert requests["graph GET /applications(appId='{appId}')"] == 1
    assert requests[LIST_APPS] == 1


# ----- owners ----------------------------------------------------------------------------------


async def test_owners_list_as_service_principals_for_owned_by_and_are_denied_without_roles(
    sandbox: Sandbox, connect: Connect
) -> None:
    """ "List owners" allows Application.ReadWrite.OwnedBy (Graph's permissions table); the
    SDK's own model reads each owner as a servicePrincipal from its @odata.type."""
    owned = sandbox.add_sender()
    stranger = sandbox.add_sender(owned=False)
    client = await connect()

    owners = await client.applications.by_application_id(owned.app.object_id).owners.get()
    none = await client.applications.by_application_id(stranger.app.object_id).owners.get()
    nobody = await connect(_principal(sandbox, set()))

    assert owners is not None
    assert [(type(o).__name__, o.id) for o in owners.value or []] == [
        ("ServicePrincipal", sandbox.rotator.principal_id)
    ]
    assert none is not None
    assert none.value == []
    with pytest.raises(ODataError) as caught:
        await nobody.applications.by_application_id(owned.app.object_id).owners.get()
    assert caught.value.response_status_code == 403


async def test_the_apis_service_principal_by_app_id_and_who_holds_its_roles(
    sandbox: Sandbox, connect: Connect
) -> None:
    """GET /servicePrincipals(appId='{appId}') with the msgraph-sdk's own request builder and
    model, and its appRoleAssignedTo: each holder with its display name and type."""
    client = await connect()
    user = sandbox.add_api_user(roles=["Rotation.Read"], name="ops@sandbox.example")
    group = sandbox.state.add_group("operators")
    sandbox.api.assign(group.object_id, "Rotation.Emergency")
    sp = await client.service_principals_with_app_id(sandbox.api.client_id).get()
    assert sp is not None
    assert sp.app_role_assignment_required is True
    assert {r.value for r in sp.app_roles or []} == {
        "Rotation.Read",
        "Rotation.Rotate",
        "Rotation.Emergency",
    }
    page = await client.service_principals.by_service_principal_id(
        sandbox.api.sp.object_id
    ).app_role_assigned_to.get()
    assert page is not None
    held = {
        (str(a.principal_id), a.principal_display_name, a.principal_type, str(a.app_role_id))
        for a in page.value or []
    }
    assert held == {
        (user.object_id, "ops", "User", sandbox.api.role_ids["Rotation.Read"]),
        (group.object_id, "operators", "Group", sandbox.api.role_ids["Rotation.Emergency"]),
    }
    with pytest.raises(ODataError) as caught:
        await client.service_principals_with_app_id("5e2b0c1d-0000-4000-8000-0000000000ee").get()
    assert caught.value.response_status_code == 404
