// Discovery read access on a whole subscription: the rotator lists every ACS resource in it.
targetScope = 'subscription'

param principalId string
param roleDefinitionGuid string

@description('What the grant is for (the role assignment\'s description).')
param purpose string = 'ACS SMTP rotation: find ACS resources, their SMTP Usernames and role assignments.'

resource grant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionGuid)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    description: purpose
  }
}
