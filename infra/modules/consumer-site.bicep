// Consumer checks on one App Service / Functions site (when ROTATION_CONSUMER_SITES names
// it): read its Key Vault references and refresh them. The assignment on the site covers
// its deployment slots.
param siteName string
param principalId string
param roleDefinitionGuid string

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource grant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(site.id, principalId, roleDefinitionGuid)
  scope: site
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    description: 'ACS SMTP rotation: refresh this site\'s Key Vault references and read what they resolve.'
  }
}
