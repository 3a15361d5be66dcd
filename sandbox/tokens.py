"""Access tokens shaped like Entra's: signed JWTs with the claims real app-only tokens carry.

Why JWTs and not opaque strings: the rotator's `doctor` reads the ``roles`` claim of its
Graph token (the app roles granted to its service principal), and SDKs see the same
three-part ``header.payload.signature`` text they get from Entra. Services in the sandbox
still validate a token by looking it up in ``state.tokens`` (stricter than a signature
check: a token the sandbox did not issue is refused even if well formed).

Claims follow the v1.0 access tokens Entra issues to Microsoft Graph, Azure Resource
Manager and Key Vault (Microsoft identity platform docs, "Access token claims reference"):
``aud`` (the resource), ``iss`` (``https://sts.windows.net/<tid>/``), ``iat``/``nbf``/``exp``,
``appid``, ``appidacr`` ("1": client secret), ``idp``, ``idtyp`` ("app"), ``oid`` and ``sub``
(the service principal's object id), ``tid``, ``ver`` ("1.0") and ``roles`` only when the
client holds app roles on that resource (Entra leaves the claim out otherwise).

Signing is RS256 with one key per process (made on first use; generating an RSA key takes
tens of milliseconds, too slow to repeat for every sandbox a test suite starts). Its public
half is served at ``/<tenant>/discovery/v2.0/keys``, as ``jwks_uri`` advertises.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: Microsoft Graph's application id: a Graph token's audience in Azure.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
#: Resources every sandbox tenant knows besides its own services (what Entra knows as the
#: service principals of Graph, ARM, Key Vault and Storage in every tenant).
PUBLIC_RESOURCES = {
    "https://graph.microsoft.com": "graph",
    GRAPH_APP_ID: "graph",
    "https://management.azure.com": "arm",
    "https://management.core.windows.net": "arm",
    "https://vault.azure.net": "vault",
    "https://storage.azure.com": "storage",
    "e406a681-f3d4-42a8-90b6-c2b029497af1": "storage",  # Azure Storage's application id
}


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_id() -> str:
    """The ``kid`` of the signing key: a digest of its public numbers."""
    numbers = signing_key().public_key().public_numbers()
    return _b64(hashlib.sha256(str(numbers.n).encode()).digest()[:15])


def jwks() -> dict[str, Any]:
    """The public key set (RFC 7517), as Entra's ``discovery/v2.0/keys`` lists its keys."""
    numbers = signing_key().public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "kid": key_id(),
                "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": _b64(numbers.e.to_bytes(3, "big")),
            }
        ]
    }


def claims(
    *,
    audience: str,
    tenant_id: str,
    client_id: str,
    object_id: str,
    roles: list[str],
    issued: datetime,
    lifetime: timedelta,
) -> dict[str, Any]:
    """The payload of an app-only v1.0 access token."""
    iat = int(issued.timestamp())
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": iat,
        "nbf": iat,
        "exp": iat + int(lifetime.total_seconds()),
        "appid": client_id,
        "appidacr": "1",
        "idp": f"https://sts.windows.net/{tenant_id}/",
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "tid": tenant_id,
        "ver": "1.0",
    }
    if roles:
        payload["roles"] = sorted(roles)
    return payload


def encode(payload: dict[str, Any]) -> str:
    """``header.payload.signature``, signed RS256 with the process key."""
    header = {"typ": "JWT", "alg": "RS256", "kid": key_id(), "x5t": key_id()}
    signing_input = f"{_b64(_json(header))}.{_b64(_json(payload))}"
    signature = signing_key().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
