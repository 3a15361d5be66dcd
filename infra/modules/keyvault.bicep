// The vault that holds each app's current SMTP password (and its username companion).
// RBAC authorization only (no access policies), soft delete and purge protection on, so a
// deleted password can always be recovered and nobody can purge it early. Every data-plane
// access is logged to the workspace (AuditEvent), which shows who read a password when.

param location string
param tags object
param name string
param workspaceId string

@minValue(7)
@maxValue(90)
param softDeleteRetentionDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Flex Consumption without VNet integration calls the vault from shared, changing outbound addresses and is not a trusted Azure service, so a firewall would lock the rotator out; access is RBAC-only and audited.
  // checkov:skip=CKV_AZURE_189:As CKV_AZURE_109: the public endpoint is needed by the rotator and by the consumers that read the password; RBAC authorization guards it.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
