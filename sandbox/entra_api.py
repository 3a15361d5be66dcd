"""The sandbox's Entra ID token endpoint (client credentials) and the metadata MSAL reads.

Routes:
- ``POST /{tenant}/oauth2/v2.0/token``: ``grant_type=client_credentials`` with
  ``client_id``, ``client_secret`` and ``scope=<resource>/.default`` in the form body.
  The secret is checked by ``SandboxState.check_client_secret``: wrong, removed, expired
  or not yet propagated secrets get Entra's own refusals (401 ``invalid_client`` with
  AADSTS7000215 / AADSTS7000222; an unknown app 400 ``unauthorized_client`` AADSTS700016).
- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (MSAL's tenant discovery).
- ``GET /common/discovery/instance`` (MSAL's instance discovery, when pointed here).

Tokens for the rotator's own API (its application ID URI or client id as the scope's
resource) come from sandbox/api_app.py: v2.0 tokens, refused (AADSTS50105) to a client that
holds none of its app roles. ``/{tenant}/discovery/v2.0/keys`` lists the published signing
keys as Entra's key set does (kid, x5t, n, e, x5c, issuer).

Other tokens are signed JWTs shaped like Entra's app-only access tokens (see sandbox/tokens.py:
``aud``, ``roles``, ``tid``, ``oid``, ...), each also kept in ``state.tokens``, which is what
the other services check (Azurite, the sandbox's blob service, reads the claims of Storage
tokens instead: it checks ``iss``, ``aud``, ``nbf``, ``iat`` and ``exp``). The resource of the scope (minus ``/.default``) must be one the
tenant knows (``state.resources``: the sandbox's Graph, ARM and Key Vault, Storage, and
their public cloud names); any other gets Entra's 400 ``invalid_resource`` (AADSTS500011), the answer an
operator sees for a mistyped endpoint setting. ``roles`` lists the app roles granted to the
client's service principal on that resource (the sandbox models them on Graph only). Tokens
live one *real* hour: the sandbox clock moves the lives of client secrets (so tests can jump
months ahead) but never invalidates a token an SDK has cached, just as a token issued by
Entra stays valid when a secret expires.

Why MSAL needs no instance discovery here: MSAL (used by azure-identity's *sync*
credentials) validates an authority host it does not know by calling
``https://login.microsoftonline.com/common/discovery/instance``, which is unreachable
offline; the product therefore passes ``disable_instance_discovery=True`` whenever the
authority is not one of Azure's own (see rotation/azure/identity.py). The async credentials
the product uses post to ``{authority}/{tenant}/oauth2/v2.0/token`` directly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aiohttp import web

from sandbox import api_app, tokens
from sandbox.http_common import BASE_URL, STATE, ApiError, counted_app
from sandbox.state import IssuedToken, SandboxState, ServicePrincipal

TOKEN_LIFETIME = timedelta(hours=1)
#: Azure Storage's resource: its application id URI and its application id.
STORAGE_AUDIENCES = ("https://storage.azure.com", "e406a681-f3d4-42a8-90b6-c2b029497af1")
_AADSTS = re.compile(r"AADSTS(\d+)")


def build_app(state: SandboxState) -> web.Application:
    """The login service (the server sets BASE_URL once its port is known)."""
    app = counted_app("login", state)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_get("/common/discovery/instance", instance_discovery)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", signing_keys)
    return app


def _refusal(status: int, error: str, description: str) -> ApiError:
    codes = [int(c) for c in _AADSTS.findall(description)[:1]]
    return ApiError(status, error, description, extra={"error_codes": codes})


def _known_tenant(state: SandboxState, tenant: str) -> str:
    for known in state.tenants:
        if known.lower() == tenant.lower():
            return known
    raise _refusal(
        400,
        "invalid_request",
        f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct "
        "tenant ID and are signing into the correct cloud.",
    )


async def token(request: web.Request) -> web.Response:
    """Issues an app-only access token for a client secret, or refuses as Entra does."""
    state = request.app[STATE]
    tenant = _known_tenant(state, request.match_info["tenant"])
    form = await request.post()
    grant_type = str(form.get("grant_type", ""))
    client_id = str(form.get("client_id", ""))
    secret = str(form.get("client_secret", ""))
    scope = str(form.get("scope", ""))
    if grant_type != "client_credentials":
        raise _refusal(
            400,
            "unsupported_grant_type",
            f"AADSTS70003: The app requested an unsupported grant type '{grant_type}'.",
        )
    if not client_id:
        raise _refusal(
            400,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        )
    if not secret:
        raise _refusal(
            401,
            "invalid_client",
            "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for "
            "the 'client_credentials' grant type.",
        )
    audience = _audience(scope)
    app, reason = state.check_client_secret(tenant, client_id, secret)
    if app is None:
        unknown_app = reason.startswith("AADSTS700016")
        raise _refusal(
            400 if unknown_app else 401,
            "unauthorized_client" if unknown_app else "invalid_client",
            reason,
        )
    principal = state.service_principal_by_app_id(client_id)
    if principal is None:
        raise _refusal(
            401,
            "invalid_client",
            f"AADSTS7000229: The client application {client_id} is missing service principal "
            f"in the tenant {tenant}.",
        )
    service = state.resource_service(audience)
    if service is None:
        raise _refusal(
            400,
            "invalid_resource",
            f"AADSTS500011: The resource principal named {audience} was not found in the "
            f"tenant named {tenant}. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in the "
            "tenant. You might have sent your authentication request to the wrong tenant.",
        )
    if service == "api":  # the rotator's own API: v2.0 tokens, roles from its assignments
        return _token_response(_api_token(request, audience, principal))
    # App roles as held at issue: a grant or revocation shows only in later tokens.
    roles = sorted(principal.graph_roles) if service == "graph" else []
    issued = datetime.now(UTC)
    if service == "storage":
        # Storage takes v1.0 tokens whose aud is its URI, whichever name was asked for; one
        # without a blob data role gets an audience Azurite refuses (state.storage_refused).
        refused = principal.object_id in state.storage_refused
        audience = STORAGE_AUDIENCES[0] + ("/no-data-role" if refused else "")
    value = tokens.encode(
        tokens.claims(
            audience=audience,
            tenant_id=tenant,
            client_id=app.app_id,
            object_id=principal.object_id,
            roles=roles,
            issued=issued,
            lifetime=TOKEN_LIFETIME,
        )
    )
    state.tokens[value] = IssuedToken(
        tenant_id=tenant,
        client_id=app.app_id,
        audience=audience,
        expires=issued + TOKEN_LIFETIME,
        roles=frozenset(roles),
    )
    return _token_response(value)


def _token_response(value: str) -> web.Response:
    seconds = int(TOKEN_LIFETIME.total_seconds()) - 1
    return web.json_response(
        {
            "token_type": "Bearer",
            "expires_in": seconds,
            "ext_expires_in": seconds,
            "access_token": value,
        },
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


def _api_token(request: web.Request, audience: str, principal: ServicePrincipal) -> str:
    state = request.app[STATE]
    api = api_app.api_for(state, audience)
    assert api is not None  # resource_service said "api"
    try:
        return api_app.app_token(state, api, principal, request.app[BASE_URL])
    except api_app.TokenRefused as exc:
        raise _refusal(exc.status, exc.error, exc.description) from None


def _audience(scope: str) -> str:
    """The resource of a client-credentials scope; Entra insists on exactly one /.default."""
    resources = [s for s in scope.split() if s not in ("openid", "profile", "offline_access")]
    if len(resources) != 1 or not resources[0].endswith("/.default"):
        raise _refusal(
            400,
            "invalid_scope",
            f"AADSTS1002012: The provided value for scope {scope} is not valid. Client "
            "credential flows must have a scope value with /.default suffixed to the resource "
            "identifier (application ID URI).",
        )
    return resources[0].removesuffix("/.default")


async def signing_keys(request: web.Request) -> web.Response:
    """The tenant's token signing keys (the openid-configuration's ``jwks_uri``)."""
    state = request.app[STATE]
    tenant = _known_tenant(state, request.match_info["tenant"])
    issuer = api_app.issuer(request.app[BASE_URL], tenant)
    return web.json_response(tokens.jwks(state.published_keys, issuer))


async def openid_configuration(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant = _known_tenant(state, request.match_info["tenant"])
    base = request.app[BASE_URL]
    return web.json_response(
        {
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "sandbox.localhost",
        }
    )


async def instance_discovery(request: web.Request) -> web.Response:
    """Answers MSAL's instance discovery for an authorize endpoint on this host."""
    base = request.app[BASE_URL]
    authorize = request.query.get("authorization_endpoint", "")
    match = re.match(rf"^{re.escape(base)}/([^/]+)/", authorize)
    if match is None:
        raise ApiError(
            400,
            "invalid_instance",
            "AADSTS50049: Unknown or invalid instance.",
            extra={"error_codes": [50049]},
        )
    host = base.removeprefix("https://")
    return web.json_response(
        {
            "tenant_discovery_endpoint": (
                f"{base}/{match.group(1)}/v2.0/.well-known/openid-configuration"
            ),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
    )
