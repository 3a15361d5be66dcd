"""Azure Resource Manager's items, read one by one: role assignments, SMTP Usernames, ACS
resources, role definitions and App Service's Key Vault references.

Shapes: azure-rest-api-specs, authorization 2022-04-01 RoleAssignment and RoleDefinition,
communication CommunicationServiceResource and SmtpUsernameResource (``properties.username``,
``entraApplicationId``, ``tenantId``), and Microsoft.Web ApiKVReference. None of these items
can flag an app by itself (an assignment names a principal, not an app; an SMTP Username
whose app id cannot be read names no app): one that cannot be read is skipped, logged and
counted (rotation.telemetry.skipped_items), and the rest of the answer is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rotation.azure.wire import Guid, Id, Wire, readable
from rotation.model import RoleAssignmentEntry, SmtpUsernameEntry

ARM = "Azure Resource Manager"


class _AssignmentProperties(Wire):
    scope: Id
    principalId: Guid
    principalType: Id
    roleDefinitionId: Id


class _Assignment(Wire):
    properties: _AssignmentProperties


def role_assignments(items: Iterable[Any], answer: str) -> list[RoleAssignmentEntry]:
    """RoleAssignment items as entries; one that cannot be read is skipped."""
    found = readable(_Assignment, items, ARM, answer, "a role assignment")
    return [
        RoleAssignmentEntry(p.scope, p.principalId, p.principalType, p.roleDefinitionId)
        for p in (a.properties for a in found)
    ]


class _SmtpUsernameProperties(Wire):
    username: Id
    entraApplicationId: Guid
    tenantId: Guid


class _SmtpUsername(Wire):
    properties: _SmtpUsernameProperties


def smtp_usernames(resource_id: str, items: Iterable[Any], answer: str) -> list[SmtpUsernameEntry]:
    """SmtpUsernameResource items of one ACS resource; one that cannot be read is skipped
    (its app id unread, it names no app: never a ghost app)."""
    found = readable(_SmtpUsername, items, ARM, answer, "an SMTP Username")
    return [
        SmtpUsernameEntry(resource_id, p.username, p.entraApplicationId, p.tenantId)
        for p in (u.properties for u in found)
    ]
