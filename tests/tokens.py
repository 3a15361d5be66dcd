"""Tokens for the API's callers without a running sandbox: for tests that drive `Api` with
fakes of the service. Signed with the sandbox's key pool (sandbox/tokens.py) and checked
against it by `StaticKeys`, so `TokenCheck` runs exactly as it does against Entra's keys.

Sandbox-backed tests use the sandbox's own issuance instead (`Sandbox.user_token`,
`Sandbox.app_token`), which also applies Entra's assignment rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from jwt import PyJWK

from rotation.auth import Role, TokenCheck
from rotation.errors import UnknownSigningKey
from rotation.settings import Settings
from sandbox import tokens

ISSUER_BASE = "https://login.sandbox.example"
ALL_ROLES = tuple(r.value for r in Role)
OPERATOR = "3d1b4c0e-6f5a-4e0b-9d5e-0a1b2c3d4e5f"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


class StaticKeys:
    """The tenant's issuer and the published keys of the pool, in memory."""

    def __init__(self, tenant_id: str, published: Iterable[int] = (0,)) -> None:
        self.issuer_url = f"{ISSUER_BASE}/{tenant_id}/v2.0"
        self.published = {tokens.key_id(i): i for i in published}

    async def issuer(self) -> str:
        return self.issuer_url

    async def key(self, kid: str) -> PyJWK:
        if kid not in self.published:
            raise UnknownSigningKey("not published")
        return PyJWK(tokens.jwk(self.published[kid], self.issuer_url))


def token_check(settings: Settings) -> TokenCheck:
    assert settings.api_client_id is not None
    return TokenCheck(
        StaticKeys(settings.tenant_id),
        audience=settings.api_client_id,
        tenant_id=settings.tenant_id,
    )


def user_claims(
    settings: Settings, roles: Iterable[str] = ALL_ROLES, **changes: Any
) -> dict[str, Any]:
    """A v2.0 user token's claims for the API, as Azure CLI would get them."""
    assert settings.api_client_id is not None
    claims = tokens.api_claims(
        issuer=f"{ISSUER_BASE}/{settings.tenant_id}/v2.0",
        audience=settings.api_client_id,
        tenant_id=settings.tenant_id,
        object_id=OPERATOR,
        client_id=AZURE_CLI,
        roles=list(roles),
        issued=datetime.now(UTC),
        lifetime=timedelta(hours=1),
        user=("ops@contoso.example", "Ops"),
        scope="user_impersonation",
    )
    return {k: v for k, v in (claims | changes).items() if v is not None}


def bearer(
    settings: Settings, roles: Iterable[str] = ALL_ROLES, key: int = 0, **changes: Any
) -> dict[str, str]:
    """An Authorization header with a user token (`changes`: claims to set, None drops one)."""
    return {
        "Authorization": f"Bearer {tokens.encode(user_claims(settings, roles, **changes), key)}"
    }


def app_bearer(settings: Settings, roles: Iterable[str] = ALL_ROLES) -> dict[str, str]:
    """An Authorization header with a workload's app-only token."""
    claims = user_claims(settings, roles, scp=None, name=None, preferred_username=None)
    claims |= {"idtyp": "app", "azpacr": "1", "azp": str(uuid.uuid5(uuid.NAMESPACE_URL, "ci"))}
    return {"Authorization": f"Bearer {tokens.encode(claims)}"}
