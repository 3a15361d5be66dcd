// Grants the rotator's identity its role on one vault (a new one or an existing one, which
// may live in another resource group). Scoped to the vault, never wider.

param vaultName string
param principalId string

@description('Role definition GUID: the custom "secret writer" role or Key Vault Secrets Officer.')
param roleDefinitionGuid string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource grant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roleDefinitionGuid)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    description: 'ACS SMTP rotation: read the current password, write new versions, disable old ones.'
  }
}

output uri string = vault.properties.vaultUri
