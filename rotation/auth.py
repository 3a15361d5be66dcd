"""Who may call the HTTP API: an Entra ID access token, checked here on every request.

The API is an app registration of its own (infra/modules/api-app.bicep) with three app roles:
`Rotation.Read` (status, doctor, dry runs), `Rotation.Rotate` (due and force runs) and
`Rotation.Emergency` (emergency runs). Assignment is required, so Entra issues a token for it
only to a user, group member or workload that holds one of them. Its tokens are v2.0
(``requestedAccessTokenVersion: 2``): ``aud`` is the API's client id and ``iss`` is
``{authority}/{tenant}/v2.0`` (Microsoft identity platform, "Access token claims reference").

What is checked, in this order (RFC 6750 for the answers; PyJWT for the signature and the
registered claims):

1. an ``Authorization: Bearer <token>`` header (else 401, no error code: RFC 6750 3.1);
2. the token's header: ``alg`` RS256, the only algorithm Entra signs access tokens with (so
   ``none`` and HMAC with the public key as secret are refused) and a ``kid``;
3. the signature, with that key from the tenant's published keys (rotation/azure/signing_keys.py);
4. ``iss`` (exactly the tenant's issuer: another tenant's or a v1.0 token fails), ``aud`` (the
   API's client id), ``exp`` and ``nbf`` with `LEEWAY_SECONDS` of clock skew; ``tid`` is the
   tenant, ``oid`` and ``azp`` are there;
5. the role the route (and the run's mode) needs, in ``roles``: else 403.

A delegated (user) token must also carry the API's scope in ``scp``. Nothing of a token is
ever logged or answered: refusals name the reason only, and the caller's ids (object id,
client app id, user name, role) are what the audit records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

import jwt

from rotation.error_codes import ErrorCode
from rotation.errors import SigningKeysUnavailable, UnknownSigningKey, describe
from rotation.model import Requester
from rotation.settings import canonical_guid

#: Clock skew allowed on exp and nbf. Small: Azure hosts keep NTP time, and Entra already
#: dates nbf a few minutes back.
LEEWAY_SECONDS = 60
#: The delegated permission users' tokens carry (Azure CLI is pre-authorized for it).
USER_SCOPE = "user_impersonation"
ALGORITHM = "RS256"
MAX_TOKEN_CHARS = 16_384  # Entra's tokens are a few kB; a larger header is not one of them
_NAME_CHARS = 200


class Role(StrEnum):
    READ = "Rotation.Read"
    ROTATE = "Rotation.Rotate"
    EMERGENCY = "Rotation.Emergency"


class KeySource(Protocol):
    """The tenant's issuer and signing keys (rotation/azure/signing_keys.py)."""

    async def issuer(self) -> str: ...

    async def key(self, kid: str) -> Any: ...


class Refusal(Exception):
    """Why a request is refused: `status` 401, 403 or 503, a `code` for programs and a
    `message` for people (neither holds anything from the token)."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code: ErrorCode = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller whose token passed: who, through which client, holding which of our roles."""

    object_id: str
    app_id: str
    type: Literal["user", "app"]
    name: str | None
    roles: frozenset[str]

    def acting_as(self, role: Role) -> Requester:
        """The caller, with the role the request needs, or 403 if they do not hold it."""
        if role.value not in self.roles:
            held = ", ".join(sorted(self.roles)) or "none of the API's roles"
            raise Refusal(
                403,
                "role_missing",
                f"this needs the app role {role.value}; the token carries {held}. An owner of "
                "the API's enterprise application assigns it (README: Who may call the API).",
            )
        return Requester(
            type=self.type,
            object_id=self.object_id,
            app_id=self.app_id,
            name=self.name,
            role=role.value,
        )


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an ``Authorization: Bearer`` header (names and scheme in any case)."""
    values = [v for k, v in headers.items() if k.lower() == "authorization"]
    if not values or not values[0].strip():
        raise Refusal(
            401,
            "token_missing",
            "send an Entra ID access token for the API in the Authorization header (Bearer)",
        )
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if len(values) > 1 or scheme.lower() != "bearer" or not token or " " in token:
        raise Refusal(401, "token_malformed", "the Authorization header is not 'Bearer <token>'")
    if len(token) > MAX_TOKEN_CHARS:
        raise Refusal(401, "token_malformed", "the token is too long to be an Entra token")
    return token


class TokenCheck:
    """Checks tokens for one API (its client id) in one tenant."""

    def __init__(self, keys: KeySource, *, audience: str, tenant_id: str) -> None:
        self.keys = keys
        self.audience = audience
        self.tenant_id = tenant_id.lower()

    async def caller(self, headers: Mapping[str, str]) -> Caller:
        """The caller the request's token names, or a 401 (503 while Entra's keys cannot be
        read) `Refusal`. 403 comes later, from `Caller.acting_as`."""
        token = bearer_token(headers)
        kid = _key_id(token)
        try:
            key = await self.keys.key(kid)
            issuer = await self.keys.issuer()
        except UnknownSigningKey:
            raise Refusal(
                401, "token_unknown_key", "the token is signed with a key Entra does not publish"
            ) from None
        except SigningKeysUnavailable as exc:
            raise Refusal(503, "signing_keys_unavailable", describe(exc)) from None
        claims = self._verified(token, key, issuer)
        return self._caller(claims)

    def _verified(self, token: str, key: Any, issuer: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "tid", "oid", "azp"]},
            )
        except jwt.InvalidSignatureError:
            raise Refusal(
                401, "token_signature_invalid", "the token's signature does not verify"
            ) from None
        except jwt.ExpiredSignatureError:
            raise Refusal(401, "token_expired", "the token has expired: get a new one") from None
        except jwt.ImmatureSignatureError:
            raise Refusal(
                401, "token_not_yet_valid", "the token is not valid yet (nbf or iat)"
            ) from None
        except jwt.InvalidAudienceError:
            raise Refusal(
                401,
                "token_wrong_audience",
                f"the token is not for this API (aud must be its client id {self.audience}): "
                "ask for a token for the API's application ID URI",
            ) from None
        except jwt.InvalidIssuerError:
            raise Refusal(401, "token_wrong_issuer", _issuer_problem(token, issuer)) from None
        except jwt.MissingRequiredClaimError as exc:
            raise Refusal(
                401, "token_claims_missing", f"the token has no {exc.claim!r} claim"
            ) from None
        except jwt.PyJWTError:
            raise Refusal(401, "token_invalid", "the token is not a valid access token") from None
        return claims

    def _caller(self, claims: Mapping[str, Any]) -> Caller:
        if str(claims.get("tid", "")).lower() != self.tenant_id:
            raise Refusal(401, "token_wrong_tenant", "the token is from another tenant")
        if claims.get("ver") != "2.0":
            raise Refusal(401, "token_invalid", "the token is not a v2.0 access token")
        object_id, app_id = canonical_guid(claims["oid"]), canonical_guid(claims["azp"])
        roles = claims.get("roles", [])
        if object_id is None or app_id is None or not _strings(roles):
            raise Refusal(401, "token_invalid", "the token's oid, azp or roles claim is malformed")
        kind = _kind(claims)
        caller = Caller(
            object_id, app_id, kind, _name(claims), frozenset(roles) & {r.value for r in Role}
        )
        if not caller.roles:
            raise Refusal(
                403,
                "role_missing",
                "the token carries none of the API's app roles (Rotation.Read, Rotation.Rotate, "
                "Rotation.Emergency)",
            )
        return caller


def _key_id(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Refusal(401, "token_malformed", "the token is not a JSON Web Token") from None
    if header.get("alg") != ALGORITHM:
        raise Refusal(
            401,
            "token_algorithm_refused",
            f"the token is not signed with {ALGORITHM} (Entra signs access tokens with it only)",
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 200:
        raise Refusal(401, "token_malformed", "the token's header names no signing key (kid)")
    return kid


def _issuer_problem(token: str, issuer: str) -> str:
    """Why `iss` is wrong, in words an operator can act on (read from the already verified
    signature's token; only its version is looked at)."""
    version = jwt.decode(token, options={"verify_signature": False}).get("ver")
    if version == "1.0":
        return (
            "the token is a v1.0 token; the API's app registration must ask for v2.0 tokens "
            "(api.requestedAccessTokenVersion: 2, as infra sets it)"
        )
    return f"the token was not issued by this API's tenant (iss must be {issuer})"


def _kind(claims: Mapping[str, Any]) -> Literal["user", "app"]:
    """App-only tokens carry no ``scp``; Entra's optional claim ``idtyp`` (configured by
    infra; "only in app-only access tokens", value ``app``) must agree when present. A
    user's token must hold the API's scope."""
    scopes = claims.get("scp")
    kind: Literal["user", "app"] = "app" if scopes is None else "user"
    if claims.get("idtyp", kind) != kind:
        raise Refusal(401, "token_invalid", "the token's idtyp and scp disagree")
    if kind == "user" and (not isinstance(scopes, str) or USER_SCOPE not in scopes.split()):
        raise Refusal(403, "scope_missing", f"a user's token must carry the scope {USER_SCOPE}")
    return kind


def _name(claims: Mapping[str, Any]) -> str | None:
    """The user's sign-in name (v2.0: preferred_username; upn and name as fallbacks)."""
    for claim in ("preferred_username", "upn", "name"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return re.sub(r"[\x00-\x1f\x7f]", "?", value.strip())[:_NAME_CHARS]
    return None


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def client_address(headers: Mapping[str, str]) -> dict[str, str]:
    """``client_ip``: the last address of X-Forwarded-For, the one Azure's front end appended
    (earlier ones are whatever the client sent). Only for the log of a refused call."""
    forwarded = [v for k, v in headers.items() if k.lower() == "x-forwarded-for"]
    last = forwarded[-1].split(",")[-1].strip() if forwarded else ""
    return {"client_ip": re.sub(r"[^0-9A-Fa-f.:\[\]]", "?", last)[:64]} if last else {}


def challenge(status: int, code: str) -> str | None:
    """The ``WWW-Authenticate`` header of a refusal (RFC 6750 3): none asked for when no token
    came, ``invalid_token`` for a bad token, ``insufficient_scope`` for a missing role."""
    if status == 401 and code == "token_missing":
        return 'Bearer realm="acs-smtp-rotation"'
    if status == 401 and code == "token_malformed":
        return (
            f'Bearer realm="acs-smtp-rotation", error="invalid_request", error_description="{code}"'
        )
    if status == 401 and code.startswith("token_"):
        return (
            f'Bearer realm="acs-smtp-rotation", error="invalid_token", error_description="{code}"'
        )
    if status == 403 and code in ("role_missing", "scope_missing"):
        return (
            f'Bearer realm="acs-smtp-rotation", error="insufficient_scope", '
            f'error_description="{code}"'
        )
    return None
