// ACS SMTP secret rotation: everything `azd up` creates, with the least privilege each part
// needs. docs/deploy.md names every permission granted here and why.
//
//   resource group  Function App (Flex Consumption, Python 3.11, system-assigned identity)
//                   Storage (host state + deployment package, identity only, no keys)
//                   Log Analytics + Application Insights (Entra-authenticated ingestion)
//                   Key Vault (RBAC, soft delete, purge protection), or an existing vault
//                   alert rules (failed run, password near expiry, no run for two days)
//                   workbook "ACS SMTP rotation" (expiry, runs, verification, consumers)
//   subscription    custom roles "reader" and "secret writer" (or built-in fallbacks)
//   ACS scopes      reader role on each subscription or ACS resource the rotator scans
//   consumer sites  (opt-in) consumer checker role on each scanned subscription or named site
//   Entra ID        Microsoft Graph Application.ReadWrite.OwnedBy for the identity (opt-in);
//                   the HTTP API's app registration with its app roles (modules/api-app.bicep)
targetScope = 'subscription'

// ----- azd ---------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds unique resource names.')
param environmentName string

@minLength(1)
@description('Region for all resources. It must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse; empty means rg-<environmentName>.')
param resourceGroupName string = ''

// ----- where the rotator looks -------------------------------------------------------------

// Lists are comma-separated strings, exactly as the ROTATION_* settings take them, so an
// azd environment variable can carry them (azd substitutes text, not JSON arrays).

@description('Comma-separated subscription ids whose ACS resources the rotator scans (ROTATION_SUBSCRIPTION_IDS). Empty, with acsResourceIds empty too, means this deployment\'s subscription.')
param subscriptionIds string = ''

@description('Comma-separated ACS resource ids to scan instead of whole subscriptions (ROTATION_ACS_RESOURCE_IDS): /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Communication/communicationServices/<name>.')
param acsResourceIds string = ''

@description('Optional comma-separated allow-list of Entra app ids, each "<appId>" or "<appId>=<smtp username>" (ROTATION_APP_IDS).')
param appIds string = ''

@description('Comma-separated Entra app ids never to touch (ROTATION_EXCLUDE_APP_IDS).')
param excludeAppIds string = ''

// ----- how it rotates (defaults match rotation/settings.py) -----------------------------------

// Each parameter below accepts exactly what its setting accepts (tests/infra/test_settings_
// bounds.py): an int setting is an int with the same bounds; a setting with fractions (Bicep
// has no such type) or a fixed set of words is a string, and the app refuses a bad value at
// start-up, naming it (GET /api/health answers 503 with the line, the problem alert fires).

@description('Rotate when the current password expires within this many days.')
@minValue(1)
@maxValue(365)
param rotateBeforeDays int = 30

@description('Lifetime of each new client secret, in days. Your tenant\'s app management policy may cap it.')
@minValue(2)
@maxValue(730)
param secretLifetimeDays int = 180

@description('Hours (0 to 720, fractions allowed) an old password keeps working after its successor is in Key Vault. 48 covers App Service Key Vault references, which refresh every 24 hours.')
param graceHours string = '48'

@description('Seconds (over 0, up to 1800) to keep trying SMTP AUTH with a new secret while Entra propagates it.')
param verifyTimeoutSeconds string = '300'

@description('Cap on verify time, in seconds (over 0, up to 200), for rotations started over HTTP (the front end cuts requests at 230 s).')
param httpVerifyTimeoutSeconds string = '150'

@minValue(1)
@maxValue(64)
param maxConcurrency int = 16

@description('Key Vault secret name for each app; must contain {app_id}. Empty means acs-smtp-{app_id}.')
param secretNameTemplate string = ''

@description('Timer schedule (NCRONTAB, six fields, UTC). Default: daily at 03:00.')
param schedule string = '0 0 3 * * *'

@description('ACS SMTP host. Empty means smtp.azurecomm.net in the public cloud; ACS documents no SMTP host in other clouds, so there it must be given, or the app stops at start-up naming ROTATION_SMTP_HOST.')
param smtpHost string = ''

@minValue(1)
@maxValue(65535)
param smtpPort int = 587

// Endpoint overrides (empty: the cloud's own, from ROTATION_CLOUD). US Government DoD (L5)
// tenants set graphUrl to https://dod-graph.microsoft.us (Microsoft Graph national cloud
// deployments); a parameter, so that the next `azd provision` keeps it.
@description('Entra endpoint override (ROTATION_AUTHORITY_HOST). Empty: the cloud\'s own.')
param authorityHost string = ''

@description('Microsoft Graph endpoint override (ROTATION_GRAPH_URL), e.g. https://dod-graph.microsoft.us for US Government DoD. Empty: the cloud\'s own.')
param graphUrl string = ''

@description('Resource Manager endpoint override (ROTATION_ARM_URL). Empty: the cloud\'s own.')
param armUrl string = ''

// For diagnosis; every record is scrubbed of tokens, client secrets and passwords either way.
@description('ROTATION_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR.')
param logLevel string = 'INFO'

@description('ROTATION_HTTP_LOGGING: true turns on azure-core\'s network trace (headers and bodies, scrubbed) at DEBUG.')
param httpLogging string = 'false'

// ----- consumer sites (opt-in; see README "Consumers") --------------------------------------

@description('true (or 1, yes, on, t, y, in any case): after a promotion, refresh the App Service / Functions sites whose Key Vault references use the secret and confirm they resolve the new version (ROTATION_CONSUMERS_ENABLED). Empty means false.')
param consumersEnabled string = ''

@description('Comma-separated site or slot resource ids to check instead of scanning every site in the subscriptions (ROTATION_CONSUMER_SITES).')
param consumerSites string = ''

@description('Comma-separated app ids (or "all") whose every consumer is a site found above, so their old secrets may go once all confirmed (ROTATION_CONSUMERS_FULLY_COVERED).')
param consumersFullyCovered string = ''

@description('Seconds (over 0, up to 900) to wait after a promotion for consumer sites to resolve the new version.')
param consumerConfirmTimeoutSeconds string = '120'

// ----- vault ------------------------------------------------------------------------------

@description('Use this existing Key Vault (RBAC authorization) instead of creating one. Empty creates a new vault.')
param existingKeyVaultName string = ''

@description('Subscribe the rotator to the vault\'s Key Vault events (near expiry, expired, new versions). The function must be deployed first, as Event Grid validates it: set KEY_VAULT_EVENTS=true and run azd provision after the first azd up.')
param keyVaultEvents bool = false

@description('Resource group of the existing vault (same subscription); empty means the deployment\'s resource group.')
param existingKeyVaultResourceGroupName string = ''

@description('Up to 8 letters or digits added to the new vault\'s name. Purge protection keeps a deleted vault\'s name for 90 days: after `azd down`, set a salt (or recover the vault) to deploy the environment again.')
@maxLength(8)
param vaultNameSalt string = ''

// ----- permissions --------------------------------------------------------------------------

@description('true: grant the identity two custom roles with exactly the actions it uses (needs Microsoft.Authorization/roleDefinitions/write, e.g. Owner or User Access Administrator). false: built-in Reader and Key Vault Secrets Officer instead.')
param useCustomRoles bool = true

@description('Grant Microsoft Graph Application.ReadWrite.OwnedBy to the identity in this deployment (the deployer needs Privileged Role Administrator or equivalent). false (the default, which a plain subscription Owner can deploy): an administrator runs infra/scripts/grant-graph-permission.sh afterwards, and `doctor` fails its "graph roles" check until then.')
param grantGraphPermission bool = false

// ----- who may call the HTTP API (README: "Who may call the API") ------------------------------

@description('Comma-separated object ids of groups, users or service principals that get all three app roles of the API (Rotation.Read, Rotation.Rotate, Rotation.Emergency).')
param apiOperators string = ''

@description('Client id of an API app registration an administrator made (with the roles and settings of modules/api-app.bicep). Empty: this deployment registers the API itself.')
param apiClientId string = ''

@description('Application ID URI of that registration (with apiClientId).')
param apiAppIdUri string = ''

// ----- monitoring ---------------------------------------------------------------------------

@description('Email for alert notifications; empty: alerts show in Azure Monitor only.')
param alertEmail string = ''

@description('Alert when an app that was not rotated is this many days or fewer from expiry.')
@minValue(1)
@maxValue(365)
param alertExpiryDays int = 14

@description('Alert when no rotation run has finished for two days.')
param silenceAlert bool = true

@description('When this deployment ran (set by the deployment itself). The silence alert stays quiet until two days later: the first scheduled run may be up to a day away.')
param deployedAt string = utcNow('u')

@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// ----- hosting ------------------------------------------------------------------------------

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

// ===== names ==================================================================================

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'acs-smtp-rotation'
}
var rgName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var functionAppName = 'func-acs-rotation-${token}'
var deploymentContainerName = 'app-package-${token}'
// The rotator's per-app leases (ROTATION_LEASE_CONTAINER), in the host's own storage account.
var leaseContainerName = 'rotation-leases'
// Key Vault events Event Grid could not deliver (modules/eventgrid.bicep), same account.
var deadLetterContainerName = 'key-vault-events-deadletter'
var createVault = empty(existingKeyVaultName)
var vaultName = createVault ? 'kv-${token}${toLower(vaultNameSalt)}' : existingKeyVaultName
// Built from the name (not read from the vault) so the app settings need not wait for it.
var vaultUrl = 'https://${vaultName}${environment().suffixes.keyvaultDns}/'
var vaultResourceGroupName = createVault || empty(existingKeyVaultResourceGroupName) ? rgName : existingKeyVaultResourceGroupName
var vaultResourceId = resourceId(subscription().subscriptionId, vaultResourceGroupName, 'Microsoft.KeyVault/vaults', vaultName)

// Where discovery reads: the named subscriptions, the subscriptions of the named ACS
// resources, or (neither given) this subscription. Ids are lower-cased and deduplicated
// (union() drops duplicates): a repeated id would name two nested deployments alike.
var subscriptionIdsGiven = empty(subscriptionIds) ? [] : split(replace(subscriptionIds, ' ', ''), ',')
var subscriptionIdsLower = [for id in subscriptionIdsGiven: toLower(id)]
var subscriptionIdList = union(subscriptionIdsLower, [])
var acsResourceIdList = empty(acsResourceIds) ? [] : split(replace(acsResourceIds, ' ', ''), ',')
var scanWholeSubscriptions = empty(subscriptionIdList) && empty(acsResourceIdList) ? [subscription().subscriptionId] : subscriptionIdList
var acsSubscriptionIdsRepeated = [for id in acsResourceIdList: toLower(split(id, '/')[2])]
var acsSubscriptionIds = union(acsSubscriptionIdsRepeated, []) // union() drops duplicates
var acsSubscriptionScopes = [for id in acsSubscriptionIds: '/subscriptions/${id}']
var subscriptionScopes = [for id in scanWholeSubscriptions: '/subscriptions/${id}']
var readerAssignableScopes = union(
  [
    subscription().id
  ],
  subscriptionScopes,
  acsSubscriptionScopes
)

// Consumer sites: the subscriptions scanned for sites, or the named sites (slots are covered
// by their site's assignment).
// The words the app reads as true (pydantic's booleans): the role must follow the setting.
var trueWords = [
  '1'
  'on'
  't'
  'true'
  'y'
  'yes'
]
var checkConsumers = contains(trueWords, toLower(consumersEnabled))
var consumerSiteList = empty(consumerSites) ? [] : split(replace(consumerSites, ' ', ''), ',')
var consumerSiteIdsRepeated = [for id in consumerSiteList: join(take(split(id, '/'), 9), '/')]
var consumerSiteIds = union(consumerSiteIdsRepeated, []) // a site named twice (or with slots) once
var consumerSiteScopesRepeated = [for id in consumerSiteIds: '/subscriptions/${split(id, '/')[2]}']
var consumerSiteScopes = union(consumerSiteScopesRepeated, [])
var consumerSubscriptionScopes = !checkConsumers ? [] : empty(consumerSiteList) ? subscriptionScopes : consumerSiteScopes

// Built-in fallbacks when useCustomRoles is false.
var builtInReader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
var builtInKeyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var builtInWebsiteContributor = 'de139f84-1756-47ae-9be6-808fbbe84772'

var cloudNames = {
  AzureCloud: 'public'
  AzureUSGovernment: 'usgov'
  AzureChinaCloud: 'china'
}

// ===== resources ==============================================================================

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceName: 'log-${token}'
    appInsightsName: 'appi-${token}'
    retentionDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${token}'
    deploymentContainerName: deploymentContainerName
    leaseContainerName: leaseContainerName
    skuName: storageSku
  }
}

module vault 'modules/keyvault.bicep' = if (createVault) {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: vaultName
    workspaceId: monitoring.outputs.workspaceId
  }
}

// The API's app registration: made here unless an administrator made one (apiClientId).
module apiApp 'modules/api-app.bicep' = if (empty(apiClientId)) {
  name: 'api-app'
  scope: rg
  params: {
    name: 'acs-smtp-rotation-${token}'
    operatorIds: empty(apiOperators) ? [] : split(replace(apiOperators, ' ', ''), ',')
  }
}
var apiClient = empty(apiClientId) ? apiApp.outputs.clientId : apiClientId
var apiIdentifierUri = empty(apiClientId) ? apiApp.outputs.appIdUri : apiAppIdUri

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    planName: 'plan-${token}'
    name: functionAppName
    storageName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    appInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    rotationSettings: [
      {
        name: 'ROTATION_KEY_VAULT_URL'
        value: vaultUrl
      }
      {
        name: 'ROTATION_KEY_VAULT_RESOURCE_ID'
        value: vaultResourceId
      }
      {
        name: 'ROTATION_TENANT_ID'
        value: tenant().tenantId
      }
      {
        // The audience of the HTTP API's tokens (rotation/auth.py).
        name: 'ROTATION_API_CLIENT_ID'
        value: apiClient
      }
      {
        name: 'ROTATION_CLOUD'
        value: contains(cloudNames, environment().name) ? cloudNames[environment().name] : 'public'
      }
      {
        name: 'ROTATION_SUBSCRIPTION_IDS'
        value: join(scanWholeSubscriptions, ',')
      }
      {
        name: 'ROTATION_ACS_RESOURCE_IDS'
        value: join(acsResourceIdList, ',')
      }
      {
        name: 'ROTATION_APP_IDS'
        value: replace(appIds, ' ', '')
      }
      {
        name: 'ROTATION_EXCLUDE_APP_IDS'
        value: replace(excludeAppIds, ' ', '')
      }
      {
        name: 'ROTATION_ROTATE_BEFORE_DAYS'
        value: string(rotateBeforeDays)
      }
      {
        name: 'ROTATION_SECRET_LIFETIME_DAYS'
        value: string(secretLifetimeDays)
      }
      {
        name: 'ROTATION_GRACE_HOURS'
        value: graceHours
      }
      {
        name: 'ROTATION_VERIFY_TIMEOUT_SECONDS'
        value: verifyTimeoutSeconds
      }
      {
        name: 'ROTATION_HTTP_VERIFY_TIMEOUT_SECONDS'
        value: httpVerifyTimeoutSeconds
      }
      {
        name: 'ROTATION_MAX_CONCURRENCY'
        value: string(maxConcurrency)
      }
      {
        name: 'ROTATION_SECRET_NAME_TEMPLATE'
        value: empty(secretNameTemplate) ? 'acs-smtp-{app_id}' : secretNameTemplate
      }
      {
        name: 'ROTATION_SMTP_HOST'
        value: empty(smtpHost) ? (environment().name == 'AzureCloud' ? 'smtp.azurecomm.net' : '') : smtpHost
      }
      {
        name: 'ROTATION_SMTP_PORT'
        value: string(smtpPort)
      }
      {
        name: 'ROTATION_SCHEDULE'
        value: schedule
      }
      {
        name: 'ROTATION_LOG_FORMAT'
        value: 'json'
      }
      {
        name: 'ROTATION_CONSUMERS_ENABLED'
        value: consumersEnabled
      }
      {
        // doctor fails on a missing Key Vault event subscription only when it is meant to exist
        name: 'ROTATION_KEY_VAULT_EVENTS'
        value: keyVaultEvents ? 'true' : 'false'
      }
      {
        name: 'ROTATION_CONSUMER_SITES'
        value: join(consumerSiteList, ',')
      }
      {
        name: 'ROTATION_CONSUMERS_FULLY_COVERED'
        value: replace(consumersFullyCovered, ' ', '')
      }
      {
        name: 'ROTATION_CONSUMER_CONFIRM_TIMEOUT_SECONDS'
        value: consumerConfirmTimeoutSeconds
      }
      {
        // One rotation per app across instances: a blob lease in AzureWebJobsStorage, reached
        // with the identity's Storage Blob Data Owner (granted for the host already).
        name: 'ROTATION_LEASE_BLOB_URL'
        value: storage.outputs.blobEndpoint
      }
      {
        name: 'ROTATION_LEASE_CONTAINER'
        value: leaseContainerName
      }
      {
        name: 'ROTATION_AUTHORITY_HOST'
        value: authorityHost
      }
      {
        name: 'ROTATION_GRAPH_URL'
        value: graphUrl
      }
      {
        name: 'ROTATION_ARM_URL'
        value: armUrl
      }
      {
        name: 'ROTATION_LOG_LEVEL'
        value: logLevel
      }
      {
        name: 'ROTATION_HTTP_LOGGING'
        value: httpLogging
      }
    ]
  }
}

// ----- the rotator's permissions ----------------------------------------------------------------

// Nested deployments outside this environment's resource group carry the environment's
// token: a subscription-scope deployment name is bound to the region it first ran in, so a
// fixed name fails a second environment elsewhere with InvalidDeploymentLocation.
module customRoles 'modules/custom-roles.bicep' = if (useCustomRoles) {
  name: 'custom-roles-${token}'
  // The secret writer's assignable scope is the vault's resource group: it must exist first.
  dependsOn: [
    rg
  ]
  params: {
    token: token
    readerScopes: readerAssignableScopes
    vaultScope: subscriptionResourceId('Microsoft.Resources/resourceGroups', vaultResourceGroupName)
    consumerScopes: consumerSubscriptionScopes
  }
}

var readerRole = useCustomRoles ? customRoles.outputs.readerGuid : builtInReader
var definitionReaderRole = useCustomRoles ? customRoles.outputs.definitionReaderGuid : builtInReader
var vaultRole = useCustomRoles ? customRoles.outputs.secretWriterGuid : builtInKeyVaultSecretsOfficer
var consumerRole = useCustomRoles ? customRoles.outputs.consumerCheckerGuid : builtInWebsiteContributor

module vaultAccess 'modules/vault-access.bicep' = {
  name: 'vault-access-${token}'
  scope: resourceGroup(vaultResourceGroupName)
  params: {
    vaultName: createVault ? vault.outputs.name : vaultName
    principalId: functionApp.outputs.principalId
    roleDefinitionGuid: vaultRole
  }
}

module readerOnSubscriptions 'modules/reader-subscription.bicep' = [
  for id in scanWholeSubscriptions: {
    name: 'reader-${token}-${uniqueString(id)}'
    scope: subscription(id)
    params: {
      principalId: functionApp.outputs.principalId
      roleDefinitionGuid: readerRole
    }
  }
]

module readerOnAcs 'modules/reader-acs.bicep' = [
  for id in acsResourceIdList: {
    name: 'reader-${token}-${uniqueString(id)}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      acsName: last(split(id, '/'))
      principalId: functionApp.outputs.principalId
      roleDefinitionGuid: readerRole
    }
  }
]

// With the reader role on single ACS resources, role definitions are still read at the
// subscription scope: grant just that there (built-in fallback: Reader on the subscription).
module definitionReaderOnAcsSubscriptions 'modules/reader-subscription.bicep' = [
  for id in acsSubscriptionIds: {
    name: 'definitions-${token}-${uniqueString(id)}'
    scope: subscription(id)
    params: {
      principalId: functionApp.outputs.principalId
      roleDefinitionGuid: definitionReaderRole
    }
  }
]

// Consumer sites: the checker role on each scanned subscription, or on each named site.
module consumersOnSubscriptions 'modules/reader-subscription.bicep' = [
  for id in (checkConsumers && empty(consumerSiteList) ? scanWholeSubscriptions : []): {
    name: 'consumers-${token}-${uniqueString(id)}'
    scope: subscription(id)
    params: {
      principalId: functionApp.outputs.principalId
      roleDefinitionGuid: consumerRole
      purpose: 'ACS SMTP rotation: find App Service sites whose Key Vault references use the SMTP password, refresh them and read what they resolve.'
    }
  }
]

module consumersOnSites 'modules/consumer-site.bicep' = [
  for id in (checkConsumers ? consumerSiteIds : []): {
    name: 'consumer-${token}-${uniqueString(id)}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      siteName: last(split(id, '/'))
      principalId: functionApp.outputs.principalId
      roleDefinitionGuid: consumerRole
    }
  }
]

module graphPermission 'modules/graph-permission.bicep' = if (grantGraphPermission) {
  name: 'graph-permission'
  scope: rg
  params: {
    principalId: functionApp.outputs.principalId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    namePrefix: 'acs-rotation-${token}'
    appInsightsId: monitoring.outputs.appInsightsId
    expiryDays: alertExpiryDays
    email: alertEmail
    silenceAlert: silenceAlert
    silenceArmedAfter: dateTimeAdd(deployedAt, 'P2D', 'yyyy-MM-ddTHH:mm:ssZ')
  }
}

// Key Vault's secret events to the key_vault_events function (issue 26), filtered to the
// managed secrets' names: the secret name template around {app_id}.
var nameTemplate = empty(secretNameTemplate) ? 'acs-smtp-{app_id}' : secretNameTemplate
module keyVaultEventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid-${token}'
  scope: resourceGroup(vaultResourceGroupName)
  params: {
    tags: tags
    vaultName: createVault ? vault.outputs.name : vaultName
    systemTopicName: 'evgt-${vaultName}'
    subscribe: keyVaultEvents
    functionAppId: functionApp.outputs.id
    subjectBeginsWith: split(nameTemplate, '{app_id}')[0]
    subjectEndsWith: split(nameTemplate, '{app_id}')[1]
    storageAccountId: storage.outputs.id
    deadLetterContainerName: deadLetterContainerName
    readerPrincipalId: functionApp.outputs.principalId
    actionGroupIds: alerts.outputs.actionGroupIds
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

// ===== outputs (azd stores them in .azure/<env>/.env) =========================================

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output ROTATION_KEY_VAULT_URL string = vaultUrl
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_URL string = 'https://${functionApp.outputs.defaultHostName}/api'
output ROTATOR_PRINCIPAL_ID string = functionApp.outputs.principalId
output GRAPH_PERMISSION_GRANTED bool = grantGraphPermission
output WORKBOOK_ID string = workbook.outputs.workbookId
output ROTATION_KEY_VAULT_RESOURCE_ID string = vaultResourceId
output API_CLIENT_ID string = apiClient
output API_APP_ID_URI string = apiIdentifierUri
