// The dead-letter container of the Key Vault event subscription, in the Function App's storage,
// and the system topic's identity allowed to write it (Storage Blob Data Contributor, scoped to
// the container: learn.microsoft.com/azure/event-grid/managed-service-identity, "Deliver events
// to destinations ... dead-lettering"). A module so that it deploys in the storage's group.

param storageName string
param containerName string
param principalId string
param roleDefinitionGuid string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, principalId, roleDefinitionGuid)
  scope: container
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    description: 'Key Vault events Event Grid could not deliver to the ACS SMTP rotation function.'
  }
}
