"""rotation/azure/signing_keys.py against the sandbox's Entra: its OpenID Connect metadata and
key set, shaped like Entra's ("Access tokens": kid, x5t, n, e, x5c and the key's issuer)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from rotation.azure.signing_keys import SigningKeys
from rotation.errors import SigningKeysUnavailable, UnknownSigningKey
from sandbox import tokens
from sandbox.server import Sandbox, unreachable_vault_url


def keys_of(sandbox: Sandbox, **options: float) -> SigningKeys:
    return SigningKeys(sandbox.login_url, sandbox.tenant_id, sandbox.client_ssl(), **options)


def b64int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


async def test_the_issuer_is_the_tenants_and_each_key_matches_its_certificate(
    sandbox: Sandbox,
) -> None:
    keys = keys_of(sandbox)
    assert await keys.issuer() == f"{sandbox.login_url}/{sandbox.tenant_id}/v2.0"
    found = await keys.key(tokens.key_id(0))
    jwk = found._jwk_data
    cert = x509.load_der_x509_certificate(base64.b64decode(jwk["x5c"][0]))
    thumbprint = base64.urlsafe_b64encode(
        hashlib.sha1(cert.public_bytes(Encoding.DER), usedforsecurity=False).digest()
    ).rstrip(b"=")
    assert jwk["kid"] == jwk["x5t"] == thumbprint.decode()
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert (b64int(jwk["n"]), b64int(jwk["e"])) == (
        public.public_numbers().n,
        public.public_numbers().e,
    )
    assert jwk["issuer"] == await keys.issuer()
    assert jwk["use"] == "sig"


async def test_a_key_nobody_published_is_unknown_after_one_more_fetch(sandbox: Sandbox) -> None:
    keys = keys_of(sandbox, refresh_cooldown=0)
    await keys.key(tokens.key_id(0))
    with pytest.raises(UnknownSigningKey):
        await keys.key("no-such-key")
    assert sandbox.state.requests["login GET /{tenant}/discovery/v2.0/keys"] == 2


async def test_metadata_of_an_unknown_tenant_or_an_unreachable_host_is_unavailable_by_url(
    sandbox: Sandbox,
) -> None:
    other = SigningKeys(
        sandbox.login_url, "0f0e0d0c-0000-4000-8000-000000000000", sandbox.client_ssl()
    )
    with pytest.raises(SigningKeysUnavailable, match="openid-configuration") as caught:
        await other.issuer()
    assert "HTTP Error 400" in str(caught.value)  # the service's words (azure/errors.reason)
    down = SigningKeys(unreachable_vault_url(), sandbox.tenant_id, sandbox.client_ssl())
    with pytest.raises(SigningKeysUnavailable, match="could not be read"):
        await down.key("any")


async def test_metadata_naming_another_issuer_is_refused(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenID Connect Discovery 4.3: the document's issuer must be the URL it came from."""
    keys = SigningKeys(f"{sandbox.login_url}/", sandbox.tenant_id, sandbox.client_ssl())
    monkeypatch.setattr(keys, "expected_issuer", "https://login.microsoftonline.com/x/v2.0")
    with pytest.raises(SigningKeysUnavailable, match="names the issuer"):
        await keys.issuer()
