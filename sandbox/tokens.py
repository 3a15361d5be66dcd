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

Tokens for the rotator's own API (the product checks those by signature, not by lookup:
rotation/auth.py) are v2.0 tokens, `api_claims`.

Signing is RS256 with keys from a pool shared by the process (each made on first use;
generating an RSA key takes tens of milliseconds, too slow to repeat for every sandbox a test
suite starts). A sandbox signs with one of them and publishes it, with those it used before,
at ``/<tenant>/discovery/v2.0/keys``, as ``jwks_uri`` advertises; rotating its key signs with
the next one of the pool (SandboxState.rotate_signing_key).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

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
def signing_key(index: int = 0) -> rsa.RSAPrivateKey:
    """Key number `index` of the process's pool (made on first use, then kept): a sandbox
    signs with one of them and publishes a few, and rotating moves it to the next."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def certificate(index: int = 0) -> bytes:
    """A self-signed certificate (DER) for key `index`: Entra's keys come with theirs (``x5c``),
    and their ``kid`` and ``x5t`` are its SHA-1 thumbprint."""
    key = signing_key(index)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.sandbox.localhost")])
    now = datetime(2024, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(index + 1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def key_id(index: int = 0) -> str:
    """The ``kid`` (and ``x5t``) of key `index`: base64url of its certificate's SHA-1."""
    return _b64(hashlib.sha1(certificate(index), usedforsecurity=False).digest())


def jwk(index: int, issuer: str) -> dict[str, Any]:
    """Key `index` as Entra's ``discovery/v2.0/keys`` lists a key ("Access tokens": kty, use,
    kid, x5t, n, e, x5c and the issuer the key signs for)."""
    numbers = signing_key(index).public_key().public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "kid": key_id(index),
        "x5t": key_id(index),
        "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": _b64(numbers.e.to_bytes(3, "big")),
        "x5c": [base64.b64encode(certificate(index)).decode()],
        "cloud_instance_name": "sandbox.localhost",
        "issuer": issuer,
    }


def jwks(indexes: list[int], issuer: str) -> dict[str, Any]:
    """The public key set (RFC 7517) of the published keys."""
    return {"keys": [jwk(i, issuer) for i in indexes]}


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


def api_claims(
    *,
    issuer: str,
    audience: str,
    tenant_id: str,
    object_id: str,
    client_id: str,
    roles: list[str],
    issued: datetime,
    lifetime: timedelta,
    user: tuple[str, str] | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    """The payload of a v2.0 access token for an API that asked for them
    (``requestedAccessTokenVersion: 2``): ``aud`` its client id, ``iss`` the tenant's v2.0
    issuer, ``azp``/``azpacr`` for the client, ``idtyp`` ``app`` on app-only tokens (the optional
    claim infra configures), and for a user (`user`: sign-in name, display name) ``scp``, ``name`` and
    ``preferred_username``. ``roles`` only when some are held ("Access token claims
    reference")."""
    iat = int(issued.timestamp())
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": iat + int(lifetime.total_seconds()),
        "azp": client_id,
        "azpacr": "1" if user is None else "0",
        "oid": object_id,
        "sub": object_id,
        "tid": tenant_id,
        "uti": _b64(hashlib.sha256(f"{object_id}{iat}{client_id}".encode()).digest()[:16]),
        "ver": "2.0",
    }
    if user is None:  # the optional claim idtyp is "only in app-only access tokens"
        payload["idtyp"] = "app"  # (optional claims reference)
    else:
        payload |= {"preferred_username": user[0], "name": user[1], "scp": scope or ""}
    if roles:
        payload["roles"] = sorted(roles)
    return payload


def encode(payload: dict[str, Any], key: int = 0, **header: Any) -> str:
    """``header.payload.signature``, signed RS256 with key `key` of the pool; `header`
    overrides or adds header fields (tests: ``alg``, ``kid``)."""
    fields = {"typ": "JWT", "alg": "RS256", "kid": key_id(key), "x5t": key_id(key), **header}
    signing_input = f"{_b64(_json(fields))}.{_b64(_json(payload))}"
    signature = signing_key(key).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
