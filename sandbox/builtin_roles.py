"""Azure's built-in role definitions the sandbox seeds, as Microsoft publishes them.

Discovery decides who may send by evaluating `actions` against `notActions`, so these are
the real lists, not summaries. Sources:

- Owner and Contributor: learn.microsoft.com/azure/role-based-access-control/built-in-roles/
  privileged (MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/
  privileged.md, ms.date 07/01/2026).
- Reader: the same reference, general category (built-in-roles/general.md).
- Communication and Email Service Owner (09976791-48a7-449e-bb21-39d1a415f350): its
  definition as created on 2024-11-21, mirrored from Azure's role catalogue by
  azure-rbac-catalog.org. The copy available to us ends after
  ``EmailServices/Domains/SenderUsernames/delete``; the entries after that are left out,
  which makes the sandbox's role grant less than Azure's, never more.

- Website Contributor: the same reference, web and mobile category
  (built-in-roles/web-and-mobile.md); the consumer-site checks' built-in fallback.

None of them has dataActions or notDataActions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BuiltInRole:
    name: str  # the role definition's GUID
    role_name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()


OWNER = BuiltInRole(
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Owner",
    "Grants full access to manage all resources, including the ability to assign roles in "
    "Azure RBAC.",
    ("*",),
)

CONTRIBUTOR = BuiltInRole(
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Contributor",
    "Grants full access to manage all resources, but does not allow you to assign roles in "
    "Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
    ("*",),
    (
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
        "Microsoft.Blueprint/blueprintAssignments/write",
        "Microsoft.Blueprint/blueprintAssignments/delete",
        "Microsoft.Compute/galleries/share/action",
        "Microsoft.Purview/consents/write",
        "Microsoft.Purview/consents/delete",
        "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
        "Microsoft.Subscription/cancel/action",
        "Microsoft.Subscription/enable/action",
    ),
)

READER = BuiltInRole(
    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Reader",
    "View all resources, but does not allow you to make any changes.",
    ("*/read",),
)

COMMUNICATION_AND_EMAIL_SERVICE_OWNER = BuiltInRole(
    "09976791-48a7-449e-bb21-39d1a415f350",
    "Communication and Email Service Owner",
    "Create, read, modify, and delete Communications and Email Service resources.",
    (
        "Microsoft.Communication/CheckNameAvailability/action",
        "Microsoft.Communication/Locations/OperationStatuses/read",
        "Microsoft.Communication/Locations/OperationStatuses/write",
        "Microsoft.Communication/Operations/read",
        "Microsoft.Communication/CommunicationServices/read",
        "Microsoft.Communication/CommunicationServices/write",
        "Microsoft.Communication/CommunicationServices/delete",
        "Microsoft.Communication/CommunicationServices/ListKeys/action",
        "Microsoft.Communication/CommunicationServices/RegenerateKey/action",
        "Microsoft.Communication/CommunicationServices/LinkNotificationHub/action",
        "Microsoft.Communication/CommunicationServices/EventGridFilters/read",
        "Microsoft.Communication/CommunicationServices/EventGridFilters/write",
        "Microsoft.Communication/CommunicationServices/EventGridFilters/delete",
        "Microsoft.Communication/EmailServices/read",
        "Microsoft.Communication/EmailServices/write",
        "Microsoft.Communication/EmailServices/delete",
        "Microsoft.Communication/EmailServices/Domains/read",
        "Microsoft.Communication/EmailServices/Domains/write",
        "Microsoft.Communication/EmailServices/Domains/delete",
        "Microsoft.Communication/EmailServices/Domains/SenderUsernames/read",
        "Microsoft.Communication/EmailServices/Domains/SenderUsernames/write",
        "Microsoft.Communication/EmailServices/Domains/SenderUsernames/delete",
    ),
)

WEBSITE_CONTRIBUTOR = BuiltInRole(
    "de139f84-1756-47ae-9be6-808fbbe84772",
    "Website Contributor",
    "Lets you manage websites (not web plans), but not access to them.",
    (
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Insights/components/*",
        "Microsoft.ResourceHealth/availabilityStatuses/read",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Support/*",
        "Microsoft.Web/certificates/*",
        "Microsoft.Web/listSitesAssignedToHostName/read",
        "Microsoft.Web/serverFarms/join/action",
        "Microsoft.Web/serverFarms/read",
        "Microsoft.Web/sites/*",
    ),
)

ALL = (OWNER, CONTRIBUTOR, READER, COMMUNICATION_AND_EMAIL_SERVICE_OWNER, WEBSITE_CONTRIBUTOR)
