"""Small JSON Schemas of the answers the rotator reads, written from the published contracts.

Each schema keeps what the contract says about required properties and types (and nothing
it leaves open), and names the file and version it comes from. Property names are as on
the wire. `additionalProperties` stays open: the services add fields over time.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
INTEGER: Schema = {"type": "integer"}
STRINGS: Schema = {"type": "array", "items": STRING}
STRING_MAP: Schema = {"type": "object", "additionalProperties": STRING}
GUID: Schema = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}


def page_of(
    item: Schema, *, next_link: str, required_value: bool = False, null_link: bool = False
) -> Schema:
    """A list result: `value` (array of `item`) and an optional next-page link."""
    link: Schema = {"type": ["string", "null"]} if null_link else STRING
    schema: Schema = {
        "type": "object",
        "properties": {"value": {"type": "array", "items": item}, next_link: link},
    }
    if required_value:
        schema["required"] = ["value"]
    return schema


def arm_resource(
    properties: Schema,
    *,
    type_: Schema = STRING,
    required: tuple[str, ...] = ("id", "name", "type", "properties"),
    **extra: Schema,
) -> Schema:
    """An ARM resource (common-types v5 Resource: id, name, type) with these `properties`."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {
            "id": STRING,
            "name": STRING,
            "type": type_,
            **extra,
            "properties": properties,
        },
    }


def obj(properties: dict[str, Schema], *required: str) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


# ----- Key Vault secrets -------------------------------------------------------------------
# Azure/azure-rest-api-specs specification/keyvault/data-plane/Microsoft.KeyVault/stable/
# 2025-07-01/secrets.json, definitions SecretAttributes, SecretBundle, SecretItem,
# SecretListResult, KeyVaultError/Error. No property of these is required; unixtime is an
# integer; tags map strings to strings.

KV_SOURCE = "azure-rest-api-specs keyvault/data-plane stable/2025-07-01/secrets.json"

KV_ATTRIBUTES: Schema = {
    "type": "object",
    "properties": {
        "enabled": BOOLEAN,
        "nbf": INTEGER,
        "exp": INTEGER,
        "created": INTEGER,
        "updated": INTEGER,
        "recoverableDays": INTEGER,
        "recoveryLevel": {
            "enum": [
                "Purgeable",
                "Recoverable+Purgeable",
                "Recoverable",
                "Recoverable+ProtectedSubscription",
                "CustomizedRecoverable+Purgeable",
                "CustomizedRecoverable",
                "CustomizedRecoverable+ProtectedSubscription",
            ]
        },
    },
}

KV_SECRET_ITEM: Schema = {
    "type": "object",
    "properties": {
        "id": STRING,
        "attributes": KV_ATTRIBUTES,
        "tags": STRING_MAP,
        "contentType": STRING,
        "managed": BOOLEAN,
    },
}

KV_SECRET_BUNDLE: Schema = {
    "type": "object",
    "properties": {
        **KV_SECRET_ITEM["properties"],
        "value": STRING,
        "kid": STRING,
        "previousVersion": STRING,
    },
}

# The spec types nextLink as a string; Key Vault's last page carries "nextLink": null (the
# Key Vault recordings of Azure/azure-sdk-for-js show it), so null passes too.
KV_SECRET_LIST: Schema = page_of(KV_SECRET_ITEM, next_link="nextLink", null_link=True)

# DeletedSecretItem / DeletedSecretBundle / DeletedSecretListResult of the same file: the
# item or bundle plus recoveryId (string), scheduledPurgeDate and deletedDate (unixtime).
_KV_DELETED: dict[str, Schema] = {
    "recoveryId": STRING,
    "scheduledPurgeDate": INTEGER,
    "deletedDate": INTEGER,
}
KV_DELETED_SECRET_ITEM: Schema = {
    "type": "object",
    "properties": {**KV_SECRET_ITEM["properties"], **_KV_DELETED},
}
KV_DELETED_SECRET_BUNDLE: Schema = {
    "type": "object",
    "properties": {**KV_SECRET_BUNDLE["properties"], **_KV_DELETED},
}
KV_DELETED_SECRET_LIST: Schema = page_of(
    KV_DELETED_SECRET_ITEM, next_link="nextLink", null_link=True
)

_KV_ERROR_DETAIL: Schema = {
    "type": "object",
    "properties": {"code": STRING, "message": STRING, "innererror": {"type": ["object", "null"]}},
}
KV_ERROR: Schema = {"type": "object", "properties": {"error": _KV_ERROR_DETAIL}}


# ----- ARM: the common error shape -------------------------------------------------------------
# azure-rest-api-specs specification/common-types/resource-management/v5/types.json
# ErrorResponse/ErrorDetail (what Communication 2025-09-01 names for its errors).

ARM_ERROR: Schema = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": STRING,
                "message": STRING,
                "target": STRING,
                "details": {"type": "array"},
                "additionalInfo": {"type": "array"},
            },
        }
    },
}


# ----- Communication ---------------------------------------------------------------------
# azure-rest-api-specs specification/communication/resource-manager/Microsoft.Communication/
# stable/2025-09-01/CommunicationServices.json (CommunicationServiceResource: a
# TrackedResource, so `location` is required; CommunicationServiceProperties requires
# `dataLocation`) and SmtpUsernames.json (SmtpUsernameProperties requires username,
# entraApplicationId, tenantId; SmtpUsernameResourceCollection pages with nextLink).

COMM_SOURCE = "azure-rest-api-specs communication stable/2025-09-01"

ACS_RESOURCE: Schema = arm_resource(
    obj(
        {
            "dataLocation": STRING,
            "provisioningState": STRING,
            "hostName": STRING,
            "immutableResourceId": STRING,
            "version": STRING,
            "linkedDomains": STRINGS,
            "publicNetworkAccess": STRING,
            "disableLocalAuth": BOOLEAN,
        },
        "dataLocation",
    ),
    required=("id", "name", "type", "location"),
    location=STRING,
    tags=STRING_MAP,
)
ACS_RESOURCE_LIST: Schema = page_of(ACS_RESOURCE, next_link="nextLink")

SMTP_USERNAME: Schema = arm_resource(
    obj(
        {"username": STRING, "entraApplicationId": STRING, "tenantId": STRING},
        "username",
        "entraApplicationId",
        "tenantId",
    )
)
SMTP_USERNAME_LIST: Schema = page_of(SMTP_USERNAME, next_link="nextLink")


# ----- Authorization ---------------------------------------------------------------------------
# azure-rest-api-specs specification/authorization/resource-manager/Microsoft.Authorization/
# stable/2022-04-01/authorization-RoleAssignmentsCalls.json (RoleAssignmentProperties
# requires roleDefinitionId and principalId; principalType is one of five; the list is
# pageable with nextLink) and authorization-RoleDefinitionsCalls.json (Permission: actions,
# notActions, dataActions, notDataActions).

AUTHZ_SOURCE = "azure-rest-api-specs authorization stable/2022-04-01"
_NULLABLE_STRING: Schema = {"type": ["string", "null"]}  # ARM answers null when absent

ROLE_ASSIGNMENT: Schema = arm_resource(
    obj(
        {
            "scope": STRING,
            "roleDefinitionId": STRING,
            "principalId": STRING,
            "principalType": {
                "enum": ["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"]
            },
            "description": _NULLABLE_STRING,
            "condition": _NULLABLE_STRING,
            "conditionVersion": _NULLABLE_STRING,
        },
        "roleDefinitionId",
        "principalId",
    ),
    type_={"const": "Microsoft.Authorization/roleAssignments"},
)
ROLE_ASSIGNMENT_LIST: Schema = page_of(ROLE_ASSIGNMENT, next_link="nextLink")

_PERMISSION: Schema = obj(
    {"actions": STRINGS, "notActions": STRINGS, "dataActions": STRINGS, "notDataActions": STRINGS}
)
ROLE_DEFINITION: Schema = arm_resource(
    obj(
        {
            "roleName": STRING,
            "description": STRING,
            "type": STRING,
            "assignableScopes": STRINGS,
            "permissions": {"type": "array", "items": _PERMISSION},
        }
    ),
    type_={"const": "Microsoft.Authorization/roleDefinitions"},
)


# ----- Microsoft Graph v1.0 --------------------------------------------------------------------
# The v1.0 metadata as msgraph-sdk 1.65.0 generated it (msgraph/generated/models/
# application.py, password_credential.py, service_principal.py): keyId is an Edm.Guid,
# endDateTime/startDateTime are Edm.DateTimeOffset strings, the rest nullable strings.
# Errors: learn.microsoft.com/graph/errors (code and message, innerError with request-id,
# client-request-id and date).

GRAPH_SOURCE = "msgraph v1.0 metadata (msgraph-sdk 1.65.0 models) and Graph error docs"
_NULLABLE = {"type": ["string", "null"]}

PASSWORD_CREDENTIAL: Schema = {
    "type": "object",
    "required": ["keyId"],
    "properties": {
        "keyId": GUID,
        "displayName": _NULLABLE,
        "hint": _NULLABLE,
        "secretText": _NULLABLE,
        "startDateTime": _NULLABLE,
        "endDateTime": _NULLABLE,
        "customKeyIdentifier": _NULLABLE,
    },
}

_APP_IDS: dict[str, Schema] = {"id": GUID, "appId": GUID, "displayName": _NULLABLE}
APPLICATION: Schema = obj(
    {**_APP_IDS, "passwordCredentials": {"type": "array", "items": PASSWORD_CREDENTIAL}},
    "id",
    "appId",
)
SERVICE_PRINCIPAL: Schema = obj(
    {
        **_APP_IDS,
        "servicePrincipalType": _NULLABLE,
        "appOwnerOrganizationId": {"anyOf": [GUID, {"type": "null"}]},  # Edm.Guid
        "accountEnabled": {"type": ["boolean", "null"]},
    },
    "id",
    "appId",
)

GRAPH_COLLECTION_SPS: Schema = page_of(
    SERVICE_PRINCIPAL, next_link="@odata.nextLink", required_value=True
)
GRAPH_COLLECTION_APPS: Schema = page_of(
    APPLICATION, next_link="@odata.nextLink", required_value=True
)

GRAPH_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": STRING,
                "message": STRING,
                "innerError": {
                    "type": "object",
                    "required": ["request-id", "date"],
                    "properties": {
                        "request-id": GUID,
                        "client-request-id": STRING,
                        "date": STRING,
                    },
                },
            },
        }
    },
}
