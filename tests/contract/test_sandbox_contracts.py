"""The sandbox's answers against the published contracts (schemas in tests/contract/schemas.py,
each naming its spec file and version): shapes, status codes, error bodies and headers.

Plain HTTP (httpx) with real tokens from the sandbox's Entra, so nothing an SDK tolerates
hides a divergence. A failure names the schema's source.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jsonschema
import pytest
from azure.identity.aio import ClientSecretCredential

from sandbox.builtin_roles import CONTRIBUTOR
from sandbox.server import Sandbox
from sandbox.vault_api import challenge_resource
from tests.contract import schemas
from tests.sandbox.conftest import client_secret_credential

KV_API = "api-version=2025-07-01"
COMM_API = "api-version=2025-09-01"
AUTHZ_API = "api-version=2022-04-01"

Token = Callable[[str], Awaitable[str]]


def conforms(body: Any, schema: schemas.Schema, source: str) -> None:
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path)
    )
    problems = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]
    assert not problems, f"diverges from {source}: {problems}"


@pytest.fixture
async def token(sandbox: Sandbox) -> AsyncIterator[Token]:
    cred: ClientSecretCredential = client_secret_credential(
        sandbox, sandbox.rotator.client_id, sandbox.rotator.client_secret
    )

    async def get(scope: str) -> str:
        return (await cred.get_token(scope)).token

    yield get
    await cred.close()


@pytest.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    trust = ssl.create_default_context(cafile=str(sandbox.ca_path))
    async with httpx.AsyncClient(verify=trust, timeout=10) as client:
        yield client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# ----- Key Vault secrets (2025-07-01) ----------------------------------------------------------


@pytest.fixture
async def kv(sandbox: Sandbox, token: Token) -> dict[str, str]:
    return bearer(await token(challenge_resource(sandbox.vault_url) + "/.default"))


async def test_vault_secret_without_tags_or_content_type_leaves_both_out(
    sandbox: Sandbox, http: httpx.AsyncClient, kv: dict[str, str]
) -> None:
    url = f"{sandbox.vault_url}/secrets/plain?{KV_API}"
    answer = await http.put(url, json={"value": "not-a-real-secret"}, headers=kv)
    assert answer.status_code == 200
    body = answer.json()
    conforms(body, schemas.KV_SECRET_BUNDLE, schemas.KV_SOURCE)
    assert "tags" not in body
    assert "contentType" not in body
    assert answer.headers.get("x-ms-request-id")
    listed = await http.get(f"{sandbox.vault_url}/secrets/plain/versions?{KV_API}", headers=kv)
    conforms(listed.json(), schemas.KV_SECRET_LIST, schemas.KV_SOURCE)
    assert all("tags" not in item for item in listed.json()["value"])


async def test_vault_secret_with_tags_and_content_type_round_trips_them(
    sandbox: Sandbox, http: httpx.AsyncClient, kv: dict[str, str]
) -> None:
    body = {"value": "v", "contentType": "smtp-password", "tags": {"app-id": "a"}}
    answer = await http.put(f"{sandbox.vault_url}/secrets/tagged?{KV_API}", json=body, headers=kv)
    conforms(answer.json(), schemas.KV_SECRET_BUNDLE, schemas.KV_SOURCE)
    assert answer.json()["tags"] == {"app-id": "a"}
    assert answer.json()["contentType"] == "smtp-password"


async def test_vault_missing_secret_is_404_key_vault_error_with_request_ids(
    sandbox: Sandbox, http: httpx.AsyncClient, kv: dict[str, str]
) -> None:
    mine = str(uuid.uuid4())
    answer = await http.get(
        f"{sandbox.vault_url}/secrets/nothing-here?{KV_API}",
        headers={**kv, "x-ms-client-request-id": mine},
    )
    assert answer.status_code == 404
    conforms(answer.json(), schemas.KV_ERROR, schemas.KV_SOURCE)
    assert answer.json()["error"]["code"] == "SecretNotFound"
    assert answer.headers.get("x-ms-request-id")
    assert answer.headers["x-ms-client-request-id"] == mine


async def test_vault_401_carries_the_key_vault_challenge(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    answer = await http.get(f"{sandbox.vault_url}/secrets/x?{KV_API}")
    assert answer.status_code == 401
    conforms(answer.json(), schemas.KV_ERROR, schemas.KV_SOURCE)
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'resource="' in challenge


# ----- ARM: Communication (2025-09-01) and Authorization (2022-04-01) ----------------------


@pytest.fixture
async def arm(sandbox: Sandbox, token: Token) -> dict[str, str]:
    return bearer(await token(sandbox.arm_url + "/.default"))


async def test_acs_resources_and_smtp_usernames_match_communication_2025_09_01(
    sandbox: Sandbox, http: httpx.AsyncClient, arm: dict[str, str]
) -> None:
    sandbox.add_sender(via="both")
    resources = await http.get(
        f"{sandbox.arm_url}/subscriptions/{sandbox.subscription_id}"
        f"/providers/Microsoft.Communication/communicationServices?{COMM_API}",
        headers=arm,
    )
    assert resources.status_code == 200
    conforms(resources.json(), schemas.ACS_RESOURCE_LIST, schemas.COMM_SOURCE)
    assert resources.headers.get("x-ms-request-id")
    assert resources.headers.get("x-ms-correlation-request-id")
    resource_id = sandbox.default_resource.id
    usernames = await http.get(
        f"{sandbox.arm_url}{resource_id}/smtpUsernames?{COMM_API}", headers=arm
    )
    assert usernames.status_code == 200
    conforms(usernames.json(), schemas.SMTP_USERNAME_LIST, schemas.COMM_SOURCE)
    assert usernames.json()["value"]


async def test_missing_acs_resource_is_404_in_arms_error_shape(
    sandbox: Sandbox, http: httpx.AsyncClient, arm: dict[str, str]
) -> None:
    missing = sandbox.default_resource.id.rsplit("/", 1)[0] + "/no-such-acs"
    answer = await http.get(f"{sandbox.arm_url}{missing}?{COMM_API}", headers=arm)
    assert answer.status_code == 404
    conforms(answer.json(), schemas.ARM_ERROR, schemas.COMM_SOURCE)
    assert answer.json()["error"]["code"] == "ResourceNotFound"
    assert answer.headers.get("x-ms-request-id")


async def test_arm_401_carries_www_authenticate(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    url = f"{sandbox.arm_url}/subscriptions/{sandbox.subscription_id}"
    url += f"/providers/Microsoft.Communication/communicationServices?{COMM_API}"
    for headers in ({}, bearer("not-a-token")):
        answer = await http.get(url, headers=headers)
        assert answer.status_code == 401
        conforms(answer.json(), schemas.ARM_ERROR, schemas.AUTHZ_SOURCE)
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'authorization_uri="{sandbox.login_url}' in challenge


async def test_role_assignments_page_with_next_link_as_authorization_2022_04_01(
    sandbox: Sandbox, http: httpx.AsyncClient, arm: dict[str, str]
) -> None:
    sandbox.state.arm_page_size = 2
    for _ in range(4):
        sandbox.add_sender()
    url: str | None = (
        f"{sandbox.arm_url}{sandbox.default_resource.id}/providers/Microsoft.Authorization"
        f"/roleAssignments?$filter=atScope()&{AUTHZ_API}"
    )
    pages, seen = 0, []
    while url:
        answer = await http.get(url, headers=arm)
        assert answer.status_code == 200
        conforms(answer.json(), schemas.ROLE_ASSIGNMENT_LIST, schemas.AUTHZ_SOURCE)
        assert len(answer.json()["value"]) <= 2
        seen += [a["id"] for a in answer.json()["value"]]
        url = answer.json().get("nextLink")
        pages += 1
    assert pages == 3  # four senders' roles on the resource, the rotator's Reader above it
    assert len(seen) == len(set(seen)) == 5


async def test_built_in_role_definitions_are_microsofts(
    sandbox: Sandbox, http: httpx.AsyncClient, arm: dict[str, str]
) -> None:
    answer = await http.get(
        f"{sandbox.arm_url}/subscriptions/{sandbox.subscription_id}/providers"
        f"/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR.name}?{AUTHZ_API}",
        headers=arm,
    )
    assert answer.status_code == 200
    body = answer.json()
    conforms(body, schemas.ROLE_DEFINITION, schemas.AUTHZ_SOURCE)
    (permission,) = body["properties"]["permissions"]
    assert body["properties"]["roleName"] == "Contributor"
    assert permission["notActions"] == list(CONTRIBUTOR.not_actions)
    assert "Microsoft.Subscription/cancel/action" in permission["notActions"]
    assert permission["dataActions"] == []


# ----- Microsoft Graph v1.0 ------------------------------------------------------------------


@pytest.fixture
async def graph(sandbox: Sandbox, token: Token) -> dict[str, str]:
    return bearer(await token(sandbox.graph_url + "/.default"))


async def test_graph_applications_match_the_v1_metadata_and_carry_request_ids(
    sandbox: Sandbox, http: httpx.AsyncClient, graph: dict[str, str]
) -> None:
    sender = sandbox.add_sender()
    mine = str(uuid.uuid4())
    answer = await http.get(
        f"{sandbox.graph_url}/v1.0/applications",
        params={"$select": "id,appId,displayName,passwordCredentials"},
        headers={**graph, "client-request-id": mine},
    )
    assert answer.status_code == 200
    conforms(answer.json(), schemas.GRAPH_COLLECTION_APPS, schemas.GRAPH_SOURCE)
    assert sender.app_id in {a["appId"] for a in answer.json()["value"]}
    assert all(
        c["secretText"] is None for a in answer.json()["value"] for c in a["passwordCredentials"]
    )
    uuid.UUID(answer.headers["request-id"])
    assert answer.headers["client-request-id"] == mine
    principals = await http.get(f"{sandbox.graph_url}/v1.0/servicePrincipals", headers=graph)
    assert principals.status_code == 200
    conforms(principals.json(), schemas.GRAPH_COLLECTION_SPS, schemas.GRAPH_SOURCE)


async def test_graph_add_and_remove_password_and_the_error_of_an_unknown_key(
    sandbox: Sandbox, http: httpx.AsyncClient, graph: dict[str, str]
) -> None:
    sender = sandbox.add_sender()
    base = f"{sandbox.graph_url}/v1.0/applications/{sender.app.object_id}"
    added = await http.post(
        f"{base}/addPassword", json={"passwordCredential": {"displayName": "c"}}, headers=graph
    )
    assert added.status_code == 200
    conforms(added.json(), schemas.PASSWORD_CREDENTIAL, schemas.GRAPH_SOURCE)
    assert isinstance(added.json()["secretText"], str)
    unknown = str(uuid.uuid4())
    refused = await http.post(f"{base}/removePassword", json={"keyId": unknown}, headers=graph)
    assert refused.status_code == 400
    conforms(refused.json(), schemas.GRAPH_ERROR, schemas.GRAPH_SOURCE)
    inner = refused.json()["error"]["innerError"]
    assert inner["request-id"] == refused.headers["request-id"]
    removed = await http.post(
        f"{base}/removePassword", json={"keyId": added.json()["keyId"]}, headers=graph
    )
    assert removed.status_code == 204


async def test_graph_401_carries_www_authenticate_and_graphs_error_shape(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    answer = await http.get(f"{sandbox.graph_url}/v1.0/applications")
    assert answer.status_code == 401
    conforms(answer.json(), schemas.GRAPH_ERROR, schemas.GRAPH_SOURCE)
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert "authorization_uri=" in challenge


# ----- Key Vault soft delete (2025-07-01) and the service principals discovery reads ----------


async def test_vault_deleted_secrets_and_the_409_of_a_deleted_name_match_the_spec(
    sandbox: Sandbox, http: httpx.AsyncClient, kv: dict[str, str]
) -> None:
    await http.put(f"{sandbox.vault_url}/secrets/gone?{KV_API}", json={"value": "v"}, headers=kv)
    sandbox.state.soft_delete_secret("gone")

    one = await http.get(f"{sandbox.vault_url}/deletedsecrets/gone?{KV_API}", headers=kv)
    listed = await http.get(f"{sandbox.vault_url}/deletedsecrets?{KV_API}", headers=kv)
    refused = await http.put(
        f"{sandbox.vault_url}/secrets/gone?{KV_API}", json={"value": "v2"}, headers=kv
    )

    assert one.status_code == 200
    conforms(one.json(), schemas.KV_DELETED_SECRET_BUNDLE, schemas.KV_SOURCE)
    assert "value" not in one.json()
    assert listed.status_code == 200
    conforms(listed.json(), schemas.KV_DELETED_SECRET_LIST, schemas.KV_SOURCE)
    assert refused.status_code == 409
    conforms(refused.json(), schemas.KV_ERROR, schemas.KV_SOURCE)
    assert refused.json()["error"]["code"] == "Conflict"
    assert refused.json()["error"]["innererror"] == {"code": "ObjectIsDeletedButRecoverable"}


async def test_graph_service_principals_of_every_kind_match_the_v1_metadata(
    sandbox: Sandbox, http: httpx.AsyncClient, graph: dict[str, str]
) -> None:
    sandbox.add_sender()
    sandbox.add_managed_identity_holder()
    sandbox.add_other_tenant_holder()
    answer = await http.get(
        f"{sandbox.graph_url}/v1.0/servicePrincipals",
        params={"$select": "id,appId,servicePrincipalType,appOwnerOrganizationId"},
        headers=graph,
    )
    assert answer.status_code == 200
    conforms(answer.json(), schemas.GRAPH_COLLECTION_SPS, schemas.GRAPH_SOURCE)
    kinds = {sp["servicePrincipalType"] for sp in answer.json()["value"]}
    assert kinds == {"Application", "ManagedIdentity"}
