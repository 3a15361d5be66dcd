// The rotator: a Python 3.11 Function App on Flex Consumption with a system-assigned
// managed identity, which is its only credential anywhere (storage, telemetry, Key Vault,
// Resource Manager, Microsoft Graph). HTTPS only, FTP and basic publishing credentials
// off: azd deploys with an Entra token.

param location string
param tags object
param planName string
param name string
param storageName string
param storageBlobEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param appInsightsName string
param appInsightsConnectionString string

@description('ROTATION_* settings the product reads (see rotation/settings.py), as [{name, value}].')
param rotationSettings array

@description('Most instances Flex Consumption may scale out to. A daily rotation needs one.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@allowed([
  2048
  4096
])
param instanceMemoryMB int

// The host reaches storage and Application Insights with the identity: no keys anywhere.
// Storage by its service URIs, as Microsoft's Flex Consumption quickstarts set them
// (Azure-Samples/functions-quickstart-python-http-azd, infra/app/api.bicep), from the
// account's own endpoints, so they are right in every cloud: AzureWebJobsStorage__accountName
// is "valid only if the account isn't in a sovereign cloud" (Azure Functions developer guide,
// "Connecting to host storage with an identity"). Blob: timers, keys, the package; table: the
// host's diagnostic events. No queue: this app has no trigger that uses one.
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storageBlobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storageTableEndpoint
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD'
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption exists only in some regions; a daily job that misses a run catches up on the next one, long before any password expires.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Operators call the HTTP API (POST /api/rotations, GET /api/status) from outside Azure; every route but /api/health needs a function key. A VNet-integrated variant with a private endpoint can close it.
  // checkov:skip=CKV_AZURE_17:Callers authenticate with function keys; requiring client certificates would force every operator and pipeline to hold one, for no gain over the key.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero by design; a timer job needs no standing instances, and a missed run is caught up by the next.
  // checkov:skip=CKV_AZURE_78:Flex Consumption has no FTP and ARM rejects siteConfig.ftpsState on it (error 51021); basic publishing (ftp and scm) is switched off below.
  // checkov:skip=CKV_AZURE_15:Flex Consumption's siteConfig takes only what Microsoft's Flex samples set (appSettings); new apps get TLS 1.2 as the platform minimum.
  // checkov:skip=CKV_AZURE_67:Flex Consumption does not offer the HTTP/2 setting (hidden for Flex apps, Azure/azure-functions-ux#7660); its siteConfig keeps to what Microsoft's Flex samples set.
  // checkov:skip=CKV_AZURE_18:As CKV_AZURE_67.
  // checkov:skip=CKV_AZURE_213:App Service health check probes instances to evict them from a load balancer; a scale-to-zero timer app has none to evict. The silence alert (no run.finished in 48 h) watches liveness instead.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'rotation'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    // Only appSettings, as in Microsoft's Flex Consumption samples (Azure-Samples/azure-
    // functions-flex-consumption-samples): ARM rejects siteConfig fields Flex does not
    // support (ftpsState fails with error 51021, Azure/azure-pipelines-tasks#21032), and
    // FTP, remote debugging and the HTTP/2 proxy do not exist on Flex. TLS 1.2 is the
    // platform's minimum for new apps; FTP and basic publishing are off below.
    siteConfig: {
      // Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION
      // (the runtime is set in functionAppConfig), so neither appears here.
      appSettings: concat(hostSettings, rotationSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// ----- what the host itself needs --------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

// Blob: the host keeps timer schedule status, singleton leases and function keys in blobs,
// and Flex reads the deployment package from a blob container.
resource storageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, site.id, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    description: 'Functions host storage (AzureWebJobsStorage) and the Flex deployment package.'
  }
}

// Table: the host records its diagnostic events in a table of AzureWebJobsStorage and,
// without this role, logs a 403 every few minutes. Queue Data Contributor is not granted:
// the host uses queues only for blob triggers and Durable Functions, and this app has neither.
resource storageTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, site.id, storageTableDataContributor)
  scope: storage
  properties: {
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    description: 'Functions host diagnostic events (AzureWebJobsStorage tables).'
  }
}

// Application Insights has local (key) auth off: telemetry is accepted from this identity.
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, site.id, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    description: 'Send logs and metrics to Application Insights with Entra authentication.'
  }
}

output name string = site.name
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
output id string = site.id
