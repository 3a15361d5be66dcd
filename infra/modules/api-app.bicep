// The rotator's HTTP API as a Microsoft Entra application (Microsoft Graph Bicep extension, as
// graph-permission.bicep uses it): an application ID URI, three app roles, a service principal
// that requires assignment, and the roles assigned to the operators given at deployment.
// rotation/auth.py checks every call's token against it (docs/deploy.md, "Who may call the API").
//
//   application      identifierUris api://<tenant id>/<name> (a form the identifier URI
//                    restrictions allow for a single-tenant app, and known before the appId
//                    exists, which api://<appId> is not: microsoftgraph/msgraph-bicep-types#239);
//                    v2.0 access tokens (aud = the client id, iss = {authority}/{tenant}/v2.0);
//                    app roles Rotation.Read, .Rotate, .Emergency for users, groups and apps;
//                    the delegated scope user_impersonation with Azure CLI pre-authorized for it,
//                    so `az account get-access-token --resource <application ID URI>` works
//                    without a consent prompt; the optional claim idtyp (app-only tokens).
//   service principal appRoleAssignmentRequired: Entra issues tokens for the API only to a
//                    principal holding one of its roles.
// The deployer needs to be allowed to register applications (the tenant's default for users, or
// Application Developer) and to assign the roles (as the new app's owner, or Cloud Application
// Administrator); where that is not so, an administrator registers the API and the deployment
// takes its client id instead (apiClientId in main.bicep). docs/deploy.md says more.
extension microsoftGraphV1

@description('uniqueName of the application and the last segment of its application ID URI.')
param name string

@description('Object ids of users, groups or service principals that get all three roles.')
param operatorIds array = []

var tenantId = tenant().tenantId
// Azure CLI's application id, the same in every tenant (Azure/azure-cli, azure-cli-core
// auth/identity.py: AZURE_CLI_CLIENT_ID).
var azureCliAppId = '04b07795-8ddb-461a-bbee-02f9e1bf7b46'
var scopeId = guid(tenantId, name, 'user_impersonation')
var roles = [
  {
    value: 'Rotation.Read'
    displayName: 'Read rotation status'
    description: 'Read the status of the managed SMTP passwords, run doctor and dry runs.'
  }
  {
    value: 'Rotation.Rotate'
    displayName: 'Rotate SMTP passwords'
    description: 'Start due and forced rotations (old passwords keep their grace period).'
  }
  {
    value: 'Rotation.Emergency'
    displayName: 'Emergency-rotate SMTP passwords'
    description: 'Start emergency rotations, which remove every other password of the named apps at once.'
  }
]

resource api 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: name
  displayName: 'ACS SMTP rotation API (${name})'
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    'api://${tenantId}/${name}'
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: scopeId
        value: 'user_impersonation'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Call the ACS SMTP rotation API'
        adminConsentDescription: 'Lets the app call the ACS SMTP rotation API as the signed-in user, within the app roles the user holds.'
        userConsentDisplayName: 'Call the ACS SMTP rotation API'
        userConsentDescription: 'Lets the app call the ACS SMTP rotation API as you, within the app roles you hold.'
      }
    ]
    preAuthorizedApplications: [
      {
        appId: azureCliAppId
        delegatedPermissionIds: [
          scopeId
        ]
      }
    ]
  }
  appRoles: [
    for role in roles: {
      id: guid(tenantId, name, role.value)
      value: role.value
      displayName: role.displayName
      description: role.description
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
  optionalClaims: {
    accessToken: [
      {
        name: 'idtyp'
      }
    ]
  }
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: api.appId
  appRoleAssignmentRequired: true
}

// Every operator gets every role (a flat loop: Bicep has no nested loops).
resource operatorRoles 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for i in range(0, length(operatorIds) * length(roles)): {
    principalId: operatorIds[i / length(roles)]
    resourceId: servicePrincipal.id
    appRoleId: guid(tenantId, name, roles[i % length(roles)].value)
  }
]

output clientId string = api.appId
output appIdUri string = 'api://${tenantId}/${name}'
output servicePrincipalId string = servicePrincipal.id
