"""The few errors the rotator raises, each with a message an operator can act on.

Adapters translate SDK exceptions into these; nothing above the adapters sees an
SDK exception. Messages never contain secret values.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from rotation.telemetry import redaction

#: Appended to every 403 the rotator reports. Azure role assignments take minutes to apply,
#: but Azure caches a managed identity's tokens for around 24 hours, so a grant that lives
#: in the token (a Microsoft Graph application permission, a group membership) can take
#: hours to show ("Are managed identities tokens cached?", managed identities FAQ).
GRANT_DELAY = (
    "if this was granted just now, allow time: role assignments take minutes to apply, and a "
    "managed identity's tokens are cached for around 24 hours, so a new Graph permission or "
    "group membership can take hours to reach them (https://learn.microsoft.com/entra/"
    "identity/managed-identities-azure-resources/managed-identities-faq"
    "#are-managed-identities-tokens-cached)"
)


class RotationError(Exception):
    """Base class: something an operator should read."""


class SettingsError(RotationError):
    """A setting is missing or invalid; the message names it."""


class PermissionDenied(RotationError):
    """The rotator's identity lacks a permission; the message says which and how to grant it."""


class NotFound(RotationError):
    """A directory object or resource the rotator expected is gone."""


class ServiceUnavailable(RotationError):
    """A cloud service kept failing after the SDK's own retries."""


class MalformedAnswer(ServiceUnavailable):
    """A cloud service answered, but its whole answer cannot be read (not JSON, a listing
    whose items are not a list): the message names the service and the part that is wrong.
    One bad item among good ones is never this: it stays that item's problem."""


class InvalidRequest(RotationError):
    """A cloud service refused a request as malformed (for example a lifetime over policy)."""


class FailureKind(StrEnum):
    """Why an SMTP AUTH check failed (a str: compares equal to, and logs as, its value)."""

    REJECTED = "rejected"  # 535 until the deadline, or a refusal waiting cannot cure
    TLS = "tls"
    DNS = "dns"
    CONNECTION = "connection"
    TIMEOUT = "timeout"


class VerificationFailed(RotationError):
    """The new secret did not pass SMTP AUTH within the verify timeout; `kind` says why."""

    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind = kind


class VaultWriteFailed(RotationError):
    """Key Vault refused or failed to store the new password."""


class SecretNameDeleted(VaultWriteFailed):
    """A Key Vault secret name the rotator must write is held by a soft-deleted secret.

    Key Vault refuses every write to such a name (409 ObjectIsDeletedButRecoverable, or
    ObjectIsBeingDeleted while the deletion runs) until an operator recovers or purges it;
    the message carries the exact command. `fix` is that command alone.
    """

    def __init__(
        self,
        vault_url: str,
        name: str,
        *,
        being_deleted: bool = False,
        purge_on: datetime | None = None,
    ) -> None:
        vault = urlsplit(vault_url).hostname or vault_url
        vault_name = vault.split(".", 1)[0]
        self.name = name
        self.fix = f"az keyvault secret recover --vault-name {vault_name} --name {name}"
        state = (
            "is being deleted"
            if being_deleted
            else "is deleted but recoverable (soft delete)"
            + (f", until it is purged on {purge_on:%Y-%m-%d}" if purge_on else "")
        )
        super().__init__(
            f"Key Vault secret '{name}' in {vault_url} {state}; Key Vault refuses to reuse the "
            f"name until it is recovered or purged. Recover it: `{self.fix}` (its old "
            "versions come back; the next run promotes a new one). Or, if the vault has no "
            f"purge protection, delete it for good: `az keyvault secret purge --vault-name "
            f"{vault_name} --name {name}`"
        )


class PasswordAdditionBlocked(RotationError):
    """Graph refused a new password because an app-management policy forbids it: the app
    is blocked (an administrator must exempt it), not failed."""

    fix = (
        "an administrator exempts the app by assigning it an app-management policy without "
        "the passwordAddition restriction"
    )


class LeaseTaken(RotationError):
    """Another run, here or on another instance, holds the app's lease; `run_id` names
    that run when the lease store knows it."""

    def __init__(self, message: str, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class LeaseLost(RotationError):
    """The app's lease was lost while its work ran (taken by another run after a renewal
    failed, or lapsed while renewals kept failing): the work stopped before its next write,
    and the next run finishes it (I5)."""


class LeaseStoreUnavailable(RotationError):
    """The lease store (the Function App's storage account) cannot be reached or used;
    nothing may rotate until it can."""


class SigningKeysUnavailable(RotationError):
    """Entra's OpenID Connect metadata or signing keys could not be read: no token can be
    checked, so the HTTP API refuses every call (503) until they can."""


class UnknownSigningKey(RotationError):
    """A token names a signing key the tenant does not publish, even after a refresh."""


class RetirementIncomplete(RotationError):
    """Some old credentials could not be removed; every removal was attempted and each
    failure is in the report. The next run tries again."""


def internal_error(exc: BaseException) -> str:
    """How a bug is reported: its type only. Its text could hold anything, a secret too."""
    return f"internal error: {type(exc).__name__}"


def describe(exc: BaseException) -> str:
    """The one way an error reaches an operator (report, log line, HTTP answer, CLI, doctor):
    our own errors' messages (written for operators, with the service's request ids when
    an adapter had them: rotation/azure/errors.reason), scrubbed; the type alone for
    anything else. tests/unit/test_azure_errors.py holds every other module to it."""
    if isinstance(exc, RotationError):
        return redaction.scrub(str(exc))
    return internal_error(exc)
