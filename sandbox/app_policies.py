"""Entra app-management policies in the sandbox: the tenant default and app-specific ones,
what they let ``addPassword`` do, and Graph's routes that read them.

The rules, from Microsoft Graph's "Microsoft Entra application authentication methods API
overview" (microsoftgraph/microsoft-graph-docs-contrib, api-reference/v1.0/resources/
applicationauthenticationmethodpolicy.md):

- the tenant default policy always exists, disabled by default; its
  ``applicationRestrictions`` apply to the tenant's application objects;
- an app-specific policy assigned to an application takes precedence, and the application
  does not inherit from the default; only one may be assigned to an application;
- a ``passwordCredentialConfiguration`` restricts apps created on or after
  ``restrictForAppsCreatedAfterDateTime`` (all apps when null); ``passwordAddition`` blocks
  new passwords, ``passwordLifetime`` caps them at ``maxLifetime`` (an ISO 8601 duration);
  newer policies also carry a ``state`` (``disabled``: not evaluated).

The errors ``addPassword`` returns when a policy refuses it are Graph's 400 with code
``CredentialTypeNotAllowedAsPerAppPolicy`` (new passwords forbidden) or
``CredentialInvalidLifetimeAsPerAppPolicy`` (too long), the codes Microsoft's Teams
Toolkit handles on addPassword (OfficeDev/teams-toolkit, aadAppClient), with the messages
operators quote ("Credential type not allowed as per assigned policy",
"Credential lifetime exceeds the max value allowed as per assigned policy '<id>'",
KelvinTegelaar/CIPP-API#1970).

Reading them, per Graph's permissions tables: the default policy and the list of policies
need Policy.Read.All (or Policy.Read.ApplicationConfiguration, Policy.ReadWrite.
ApplicationConfiguration); a policy's ``appliesTo`` needs Application.Read.All and
Policy.Read.All. Application.ReadWrite.OwnedBy is in none of those tables, so it does not
count here (the stricter reading).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"
POLICY_READ = frozenset(
    {
        "Policy.Read.All",
        "Policy.Read.ApplicationConfiguration",
        "Policy.ReadWrite.ApplicationConfiguration",
    }
)
APPLICATION_READ = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)


@dataclass
class PasswordRestriction:
    """A passwordCredentialConfiguration."""

    kind: str  # passwordAddition, passwordLifetime, customPasswordAddition, ...
    max_lifetime: timedelta | None = None
    applies_from: datetime | None = None  # restrictForAppsCreatedAfterDateTime
    state: str = "enabled"

    def applies(self, created: datetime) -> bool:
        if self.state == "disabled":
            return False
        return self.applies_from is None or created >= self.applies_from

    def to_json(self) -> dict[str, Any]:
        return {
            "restrictionType": self.kind,
            "state": self.state,
            "maxLifetime": _duration(self.max_lifetime) if self.max_lifetime else None,
            "restrictForAppsCreatedAfterDateTime": (
                self.applies_from.strftime("%Y-%m-%dT%H:%M:%SZ") if self.applies_from else None
            ),
        }


@dataclass
class AppPolicy:
    """The tenant default (``default`` True) or an app-specific policy."""

    id: str
    display_name: str
    enabled: bool
    passwords: list[PasswordRestriction] = field(default_factory=list)
    default: bool = False
    applies_to: set[str] = field(default_factory=set)  # application object ids

    def refusal(self, created: datetime, lifetime: timedelta) -> tuple[str, str] | None:
        """(Graph's error code, message) for a new password of this lifetime on an app
        created then, or None when the policy allows it."""
        if not self.enabled:
            return None
        rules = [r for r in self.passwords if r.applies(created)]
        if any(r.kind == "passwordAddition" for r in rules):
            return (
                "CredentialTypeNotAllowedAsPerAppPolicy",
                f"Credential type not allowed as per assigned policy '{self.id}'.",
            )
        caps = [r.max_lifetime for r in rules if r.kind == "passwordLifetime" and r.max_lifetime]
        if caps and lifetime > min(caps):
            return (
                "CredentialInvalidLifetimeAsPerAppPolicy",
                "Credential lifetime exceeds the max value allowed as per assigned policy "
                f"'{self.id}'.",
            )
        return None

    def to_json(self) -> dict[str, Any]:
        restrictions = {
            "passwordCredentials": [r.to_json() for r in self.passwords],
            "keyCredentials": [],
        }
        body: dict[str, Any] = {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.display_name,
            "isEnabled": self.enabled,
        }
        if self.default:
            empty = {"passwordCredentials": [], "keyCredentials": []}
            return body | {
                "applicationRestrictions": restrictions,
                "servicePrincipalRestrictions": empty,
            }
        return body | {"restrictions": restrictions}


def tenant_default(max_lifetime: timedelta | None = None) -> AppPolicy:
    """The tenant default policy: disabled, unless a lifetime cap is asked for."""
    passwords = [PasswordRestriction("passwordLifetime", max_lifetime)] if max_lifetime else []
    return AppPolicy(
        DEFAULT_POLICY_ID,
        "Default app management tenant policy",
        enabled=bool(passwords),
        passwords=passwords,
        default=True,
    )


def new_policy(name: str, *restrictions: PasswordRestriction, enabled: bool = True) -> AppPolicy:
    return AppPolicy(str(uuid.uuid4()), name, enabled, list(restrictions))


def _duration(delta: timedelta) -> str:
    """An ISO 8601 duration, days and seconds: P90D, P4DT12H30M5S."""
    days, seconds = delta.days, delta.seconds
    text = f"P{days}D" if days else "P"
    if seconds:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        text += "T" + "".join(
            f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n
        )
    return text if text != "P" else "PT0S"
