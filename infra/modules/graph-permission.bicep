// Grants the rotator's managed identity the Microsoft Graph application permission
// Application.ReadWrite.OwnedBy: add and remove client secrets on the applications it owns,
// and read (list) applications and service principals. It cannot touch any application it
// does not own, which is why each ACS sender app must list the identity as an owner
// (infra/scripts/add-owner.sh).
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

// Microsoft Graph's application id and the id of its Application.ReadWrite.OwnedBy app role
// are the same in every tenant (Microsoft Graph permissions reference).
var graphAppId = '00000003-0000-0000-c000-000000000000'
var applicationReadWriteOwnedBy = '18a4783c-866b-4cc7-a460-3d5e5662c884'

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource ownedBy 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: graph.id
  appRoleId: applicationReadWriteOwnedBy
}

output appRoleAssignmentId string = ownedBy.id
