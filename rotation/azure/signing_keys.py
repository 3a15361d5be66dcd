"""The tenant's token signing keys, found through its OpenID Connect metadata.

Entra publishes a tenant's metadata at ``{authority}/{tenant}/v2.0/.well-known/openid-configuration``;
its ``issuer`` is what every v2.0 token of the tenant carries in ``iss``, and its ``jwks_uri``
(``{authority}/{tenant}/discovery/v2.0/keys``) lists the public keys tokens are signed with
(Microsoft identity platform, "Access tokens": validate the signature and the issuer against
the OpenID discovery document). Entra rolls those keys over now and then, so a token may name
a key (``kid``) that a cached list does not hold yet.

PyJWT's `PyJWKClient` keeps the key list: cached for `lifespan`, fetched again when a token
names an unknown key, but at most once per `refresh_cooldown` (a stream of made-up key ids
cannot turn into a stream of requests to Entra). It reads over urllib, synchronously, so each
call runs in a worker thread. The metadata is read once per process: its issuer and key URL
do not move.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKClientConnectionError, PyJWKClientError

from rotation.azure.errors import reason as _reason
from rotation.azure.trust import trusted_ssl_context
from rotation.errors import SigningKeysUnavailable, UnknownSigningKey
from rotation.settings import Settings

#: Entra's guidance is to look for new keys about once a day; an unknown key id fetches sooner.
LIFESPAN_SECONDS = 24 * 3600.0
REFRESH_COOLDOWN_SECONDS = 30.0  # PyJWKClient's own default
TIMEOUT_SECONDS = 10.0
_HEADERS = {"User-Agent": "acs-smtp-rotation", "Accept": "application/json"}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Metadata is read where it was asked for, never where a redirect points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class SigningKeys:
    """One tenant's metadata (its issuer) and signing keys, read on first use and cached."""

    def __init__(
        self,
        authority: str,
        tenant_id: str,
        ssl_context: ssl.SSLContext,
        *,
        refresh_cooldown: float = REFRESH_COOLDOWN_SECONDS,
        lifespan: float = LIFESPAN_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.expected_issuer = f"{authority.rstrip('/')}/{tenant_id}/v2.0"
        self.metadata_url = f"{self.expected_issuer}/.well-known/openid-configuration"
        self._ssl = ssl_context
        self._timeout = timeout
        self._refresh_cooldown = refresh_cooldown
        self._lifespan = lifespan
        self._client: PyJWKClient | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKeys:
        """The keys of ROTATION_TENANT_ID at the cloud's authority (ROTATION_CLOUD or
        ROTATION_AUTHORITY_HOST), over the same TLS trust as every other client."""
        return cls(settings.authority, settings.tenant_id, trusted_ssl_context(settings))

    async def issuer(self) -> str:
        """The tenant's issuer, as its metadata states it (read once)."""
        await self._ready()
        return self.expected_issuer

    async def key(self, kid: str) -> PyJWK:
        """The published key `kid`; the list is fetched again (cooldown permitting) when it
        does not hold it."""
        client = await self._ready()
        try:
            return await asyncio.to_thread(client.get_signing_key, kid)
        except PyJWKClientConnectionError as exc:
            raise SigningKeysUnavailable(
                f"Entra's signing keys ({client.uri}) could not be read: {_reason(exc)}"
            ) from None
        except PyJWKClientError as exc:
            if "Unable to find a signing key" in str(exc):
                raise UnknownSigningKey(
                    "the token's signing key is not one Entra publishes"
                ) from None
            raise SigningKeysUnavailable(
                f"Entra's signing keys ({client.uri}) are not a usable key set: {_reason(exc)}"
            ) from None
        except jwt.PyJWTError as exc:  # PyJWKSetError: a key set without one usable key
            raise SigningKeysUnavailable(
                f"Entra's signing keys ({client.uri}) are not a usable key set: {_reason(exc)}"
            ) from None

    async def _ready(self) -> PyJWKClient:
        async with self._lock:  # one metadata read, however many requests arrive at once
            if self._client is None:
                jwks_uri = await asyncio.to_thread(self._read_metadata)
                self._client = PyJWKClient(
                    jwks_uri,
                    cache_jwk_set=True,
                    lifespan=self._lifespan,
                    headers=_HEADERS,
                    timeout=self._timeout,
                    ssl_context=self._ssl,
                    cooldown_duration=self._refresh_cooldown,
                )
            return self._client

    def _read_metadata(self) -> str:
        """The metadata's ``jwks_uri``, once its ``issuer`` proved to be the tenant's."""
        opener = urllib.request.build_opener(
            _NoRedirects(), urllib.request.HTTPSHandler(context=self._ssl)
        )
        request = urllib.request.Request(self.metadata_url, headers=_HEADERS)  # noqa: S310 (https, built from settings)
        try:
            with opener.open(request, timeout=self._timeout) as response:
                document = json.loads(response.read(1_000_000))
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, bad JSON
            raise SigningKeysUnavailable(
                f"Entra's OpenID Connect metadata ({self.metadata_url}) could not be read: "
                f"{_reason(exc)}"
            ) from None
        issuer = document.get("issuer") if isinstance(document, dict) else None
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        # OpenID Connect Discovery 1.0, 4.3: the issuer must be the URL the document was
        # fetched under; anything else is not this tenant's metadata.
        if issuer != self.expected_issuer:
            raise SigningKeysUnavailable(
                f"Entra's OpenID Connect metadata ({self.metadata_url}) names the issuer "
                f"{str(issuer)[:200]!r}, not {self.expected_issuer!r}"
            )
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise SigningKeysUnavailable(
                f"Entra's OpenID Connect metadata ({self.metadata_url}) has no https jwks_uri"
            )
        return jwks_uri
