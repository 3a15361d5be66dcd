"""The few errors the rotator raises, each with a message an operator can act on.

Adapters translate SDK exceptions into these; nothing above the adapters sees an
SDK exception. Messages never contain secret values.
"""

from __future__ import annotations


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


class InvalidRequest(RotationError):
    """A cloud service refused a request as malformed (for example a lifetime over policy)."""


class VerificationFailed(RotationError):
    """The new secret did not pass SMTP AUTH within the verify timeout.

    `kind` is one of: ``rejected`` (535 until the deadline), ``tls``, ``dns``,
    ``connection``, ``timeout``.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class VaultWriteFailed(RotationError):
    """Key Vault refused or failed to store the new password."""
