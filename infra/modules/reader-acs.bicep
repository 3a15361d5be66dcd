// Discovery read access on one ACS resource only (when ROTATION_ACS_RESOURCE_IDS names them).
param acsName string
param principalId string
param roleDefinitionGuid string

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: acsName
}

resource grant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acs.id, principalId, roleDefinitionGuid)
  scope: acs
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    description: 'ACS SMTP rotation: read this resource, its SMTP Usernames and role assignments.'
  }
}
