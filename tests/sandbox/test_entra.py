"""The sandbox's Entra token endpoint, driven by azure-identity (async and sync/MSAL).

Only endpoints and CA trust differ from production: the credentials are azure-identity's
own classes, built the way rotation/azure/identity.py builds them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential

from rotation.azure.identity import build_credential, credential_options
from rotation.settings import Settings
from sandbox.seed import ROTATOR_GRAPH_ROLES
from sandbox.server import Sandbox
from tests.sandbox.conftest import client_secret_credential

TOKEN_ROUTE = "login POST /{tenant}/oauth2/v2.0/token"


async def _token_error(sandbox: Sandbox, client_id: str, secret: str) -> str:
    async with client_secret_credential(sandbox, client_id, secret) as credential:
        with pytest.raises(ClientAuthenticationError) as caught:
            await credential.get_token(f"{sandbox.graph_url}/.default")
    assert secret not in str(caught.value)
    return str(caught.value)


async def _post_token(
    sandbox: Sandbox, tenant: str, form: dict[str, str]
) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{sandbox.login_url}/{tenant}/oauth2/v2.0/token", data=form, ssl=sandbox.client_ssl()
        )
        await response.read()
        return response


async def _rotator_token(sandbox: Sandbox, scope: str) -> aiohttp.ClientResponse:
    """A client-credentials request as the rotator, for `scope`, straight to the endpoint."""
    form = {
        "grant_type": "client_credentials",
        "client_id": sandbox.rotator.client_id,
        "client_secret": sandbox.rotator.client_secret,
        "scope": scope,
    }
    return await _post_token(sandbox, sandbox.tenant_id, form)


async def test_client_secret_credential_gets_a_token_for_the_scope_audience(
    sandbox: Sandbox,
) -> None:
    rotator = sandbox.rotator
    async with client_secret_credential(
        sandbox, rotator.client_id, rotator.client_secret
    ) as credential:
        token = await credential.get_token(f"{sandbox.graph_url}/.default")
        again = await credential.get_token(f"{sandbox.graph_url}/.default")
    issued = sandbox.state.tokens[token.token]
    assert issued.audience == sandbox.graph_url
    assert issued.client_id == rotator.client_id
    assert issued.tenant_id == sandbox.tenant_id
    assert again.token == token.token  # cached by azure-identity: one request
    assert sandbox.state.requests[TOKEN_ROUTE] == 1


async def test_default_azure_credential_reads_the_environment(
    sandbox: Sandbox, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    credential = build_credential(settings)
    try:
        token = await credential.get_token(f"{sandbox.arm_url}/.default")
    finally:
        await credential.close()
    assert sandbox.state.tokens[token.token].client_id == sandbox.rotator.client_id


async def test_sync_msal_credential_works_with_instance_discovery_disabled(
    sandbox: Sandbox, settings: Settings
) -> None:
    """MSAL reads the tenant's openid-configuration from the sandbox, not from Microsoft.
    (The blocking credential runs in a thread: the sandbox serves on this test's loop.)"""
    options = credential_options(settings)
    assert options["disable_instance_discovery"] is True
    credential = SyncClientSecretCredential(
        sandbox.tenant_id, sandbox.rotator.client_id, sandbox.rotator.client_secret, **options
    )
    token = await asyncio.to_thread(credential.get_token, f"{sandbox.graph_url}/.default")
    assert sandbox.state.tokens[token.token].audience == sandbox.graph_url
    assert sandbox.state.requests["login GET /{tenant}/v2.0/.well-known/openid-configuration"] == 1


def test_azure_authorities_keep_instance_discovery(settings: Settings) -> None:
    public = settings.model_copy(update={"authority_host": None})
    assert "disable_instance_discovery" not in credential_options(public)


async def test_wrong_secret_is_refused_with_aadsts7000215(sandbox: Sandbox) -> None:
    message = await _token_error(sandbox, sandbox.rotator.client_id, "not-the-secret")
    assert "AADSTS7000215" in message


async def test_refusal_has_entras_json_shape(sandbox: Sandbox) -> None:
    response = await _post_token(
        sandbox,
        sandbox.tenant_id,
        {
            "grant_type": "client_credentials",
            "client_id": sandbox.rotator.client_id,
            "client_secret": "wrong",
            "scope": f"{sandbox.graph_url}/.default",
        },
    )
    body = await response.json()
    assert response.status == 401
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    }
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")


async def test_expired_secret_is_refused_with_aadsts7000222(sandbox: Sandbox) -> None:
    sender = sandbox.add_sender(lifetime=timedelta(days=30))
    sandbox.state.clock.advance(timedelta(days=31))
    message = await _token_error(sandbox, sender.client_id, sender.client_secret)
    assert "AADSTS7000222" in message


async def test_removed_secret_is_refused(sandbox: Sandbox) -> None:
    sender = sandbox.add_sender()
    sender.app.passwords.clear()
    message = await _token_error(sandbox, sender.client_id, sender.client_secret)
    assert "AADSTS7000215" in message


async def test_new_secret_works_only_after_the_propagation_delay(sandbox: Sandbox) -> None:
    sender = sandbox.add_sender()
    sandbox.state.propagation_delay = timedelta(seconds=20)
    fresh = sandbox.state.add_password(sender.app, propagated=False)
    message = await _token_error(sandbox, sender.client_id, fresh.secret_text)
    assert "AADSTS7000215" in message  # Entra answers exactly as for a wrong secret
    sandbox.state.clock.advance(timedelta(seconds=21))
    async with client_secret_credential(sandbox, sender.client_id, fresh.secret_text) as credential:
        token = await credential.get_token(f"{sandbox.graph_url}/.default")
    assert token.token in sandbox.state.tokens


async def test_unknown_app_is_refused_with_aadsts700016(sandbox: Sandbox) -> None:
    message = await _token_error(sandbox, "00000000-0000-0000-0000-000000000001", "whatever")
    assert "AADSTS700016" in message


async def test_unknown_tenant_is_refused_with_aadsts90002(sandbox: Sandbox) -> None:
    response = await _post_token(
        sandbox,
        "11111111-1111-1111-1111-111111111111",
        {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    body = await response.json()
    assert response.status == 400
    assert body["error_codes"] == [90002]


async def test_scope_without_default_suffix_is_refused(sandbox: Sandbox) -> None:
    response = await _rotator_token(sandbox, sandbox.graph_url)
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_scope"


async def test_unsupported_grant_type_is_refused(sandbox: Sandbox) -> None:
    response = await _post_token(sandbox, sandbox.tenant_id, {"grant_type": "password"})
    assert response.status == 400
    assert (await response.json())["error"] == "unsupported_grant_type"


async def test_app_without_service_principal_is_refused(sandbox: Sandbox) -> None:
    app = sandbox.state.add_application(sandbox.tenant_id, "no-sp")
    secret = sandbox.state.add_password(app)
    message = await _token_error(sandbox, app.app_id, secret.secret_text)
    assert "AADSTS7000229" in message


async def test_openid_configuration_points_at_the_sandbox(sandbox: Sandbox) -> None:
    url = f"{sandbox.login_url}/{sandbox.tenant_id}/v2.0/.well-known/openid-configuration"
    async with aiohttp.ClientSession() as http, http.get(url, ssl=sandbox.client_ssl()) as r:
        config = await r.json()
    assert config["token_endpoint"] == f"{sandbox.login_url}/{sandbox.tenant_id}/oauth2/v2.0/token"
    assert config["issuer"] == f"{sandbox.login_url}/{sandbox.tenant_id}/v2.0"


async def test_instance_discovery_answers_for_its_own_host(sandbox: Sandbox) -> None:
    authorize = f"{sandbox.login_url}/{sandbox.tenant_id}/oauth2/v2.0/authorize"
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sandbox.login_url}/common/discovery/instance",
            params={"authorization_endpoint": authorize, "api-version": "1.1"},
            ssl=sandbox.client_ssl(),
        ) as r,
    ):
        body = await r.json()
    assert body["tenant_discovery_endpoint"].startswith(f"{sandbox.login_url}/{sandbox.tenant_id}/")


async def test_injected_503_is_retried_by_azure_identity(sandbox: Sandbox) -> None:
    sandbox.state.faults.inject(TOKEN_ROUTE, status=503, retry_after=0, times=1)
    rotator = sandbox.rotator
    async with client_secret_credential(
        sandbox, rotator.client_id, rotator.client_secret
    ) as credential:
        token = await credential.get_token(f"{sandbox.graph_url}/.default")
    assert token.token in sandbox.state.tokens
    assert sandbox.state.requests[TOKEN_ROUTE] == 2


# ----- tokens as Entra issues them: signed JWTs with aud, roles, tid, oid ----------------------


async def _jwks(sandbox: Sandbox) -> dict[str, object]:
    url = f"{sandbox.login_url}/{sandbox.tenant_id}/discovery/v2.0/keys"
    async with aiohttp.ClientSession() as http, http.get(url, ssl=sandbox.client_ssl()) as r:
        keys: dict[str, object] = await r.json()
    return keys


async def test_graph_token_is_a_signed_jwt_with_the_service_principals_app_roles(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> None:
    token = await credential.get_token(f"{sandbox.graph_url}/.default")

    assert token.token.count(".") == 2
    keys = jwt.PyJWKSet.from_dict(await _jwks(sandbox))
    header = jwt.get_unverified_header(token.token)
    claims = jwt.decode(
        token.token,
        keys[header["kid"]].key,
        algorithms=["RS256"],
        audience=sandbox.graph_url,
        issuer=f"https://sts.windows.net/{sandbox.tenant_id}/",
    )
    assert claims["roles"] == sorted(ROTATOR_GRAPH_ROLES)
    assert claims["tid"] == sandbox.tenant_id
    assert claims["oid"] == sandbox.rotator.principal_id
    assert claims["appid"] == sandbox.rotator.client_id
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert abs(claims["exp"] - token.expires_on) <= 1  # what azure-identity read from expires_in


async def test_roles_follow_the_grants_and_other_resources_get_none(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> None:
    sender = sandbox.add_sender()
    sender.sp.graph_roles.update({"Application.Read.All", "Application.ReadWrite.All"})

    async with client_secret_credential(
        sandbox, sender.client_id, sender.client_secret
    ) as sender_credential:
        graph = await sender_credential.get_token(f"{sandbox.graph_url}/.default")
    arm = await credential.get_token(f"{sandbox.arm_url}/.default")

    graph_claims = jwt.decode(graph.token, options={"verify_signature": False})
    arm_claims = jwt.decode(arm.token, options={"verify_signature": False})
    assert graph_claims["roles"] == ["Application.Read.All", "Application.ReadWrite.All"]
    assert graph_claims["oid"] == sender.principal_id
    assert "roles" not in arm_claims  # Entra leaves the claim out when there are none
    assert arm_claims["aud"] == sandbox.arm_url


async def test_unknown_resource_is_refused_with_invalid_resource_aadsts500011(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> None:
    with pytest.raises(ClientAuthenticationError) as caught:
        await credential.get_token("https://graph.example.invalid/.default")
    assert "AADSTS500011" in str(caught.value)

    response = await _rotator_token(sandbox, "https://graph.example.invalid/.default")
    body = await response.json()
    assert response.status == 400
    assert body["error"] == "invalid_resource"
    assert body["error_codes"] == [500011]
    assert "https://graph.example.invalid" in body["error_description"]
    assert not [t for t in sandbox.state.tokens.values() if "example.invalid" in t.audience]


async def test_msal_accepts_the_jwt_and_caches_it(sandbox: Sandbox, settings: Settings) -> None:
    credential = SyncClientSecretCredential(
        sandbox.tenant_id,
        sandbox.rotator.client_id,
        sandbox.rotator.client_secret,
        **credential_options(settings),
    )
    first = await asyncio.to_thread(credential.get_token, f"{sandbox.arm_url}/.default")
    second = await asyncio.to_thread(credential.get_token, f"{sandbox.arm_url}/.default")

    assert second.token == first.token
    assert jwt.decode(first.token, options={"verify_signature": False})["aud"] == sandbox.arm_url
    assert sandbox.state.requests[TOKEN_ROUTE] == 1
