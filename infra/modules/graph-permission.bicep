// Grants the rotator's managed identity its Microsoft Graph application permissions:
// - Application.ReadWrite.OwnedBy: add and remove client secrets on the applications it owns,
//   and read (list) applications and service principals. It cannot touch any application it
//   does not own, which is why each ACS sender app must list the identity as an owner
//   (infra/scripts/add-owner.sh).
// - Policy.Read.All and Application.Read.All: read the tenant's app-management policies (the
//   default, GET /policies/defaultAppManagementPolicy, and each app-specific one with the apps
//   it applies to, GET /policies/appManagementPolicies/{id}/appliesTo), so that a new secret
//   never outlives the cap a policy sets and an app whose policy forbids new passwords is
//   blocked before any write. Graph's permissions tables for those calls name exactly these.
//   Application.Read.All reads every application's properties, which OwnedBy already reads.
//
// Deploying this needs the deployer to hold AppRoleAssignment.ReadWrite.All and
// Application.Read.All in Microsoft Graph (in practice: Privileged Role Administrator or
// Global Administrator). This is admin consent for the identity, given by the deployment.
// Deployed only with grantGraphPermission=true (default false, so that a plain subscription
// Owner can deploy); otherwise an administrator runs
// infra/scripts/grant-graph-permission.sh and `doctor` reports the grant missing until then.
extension microsoftGraphV1

@description('Object id of the Function App\'s system-assigned managed identity.')
param principalId string

// Microsoft Graph's application id and the ids of its app roles are the same in every
// tenant (Microsoft Graph permissions reference).
var graphAppId = '00000003-0000-0000-c000-000000000000'
var applicationReadWriteOwnedBy = '18a4783c-866b-4cc7-a460-3d5e5662c884'
var policyReadAll = '246dd0d5-5bd0-4def-940b-0421030a5b68'
var applicationReadAll = '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource ownedBy 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: graph.id
  appRoleId: applicationReadWriteOwnedBy
}

resource policyRead 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: graph.id
  appRoleId: policyReadAll
}

resource applicationRead 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: graph.id
  appRoleId: applicationReadAll
}

output appRoleAssignmentId string = ownedBy.id
