// Key Vault's secret events to the rotator's Event Grid trigger (function key_vault_events,
// rotation/vault_watch.py; issue 26). Deployed in the vault's resource group.
//
// Sources, as they were read:
// - Microsoft's Flex Consumption Event Grid sample, Azure-Samples/functions-quickstart-python-azd-eventgrid-blob
//   (infra/main.bicep): an Event Grid *system topic* on the source resource; and its .NET twin,
//   Azure-Samples/functions-quickstart-dotnet-azd-eventgrid-blob (scripts/post-up.sh): the
//   event subscription is made only after the code is deployed, because Event Grid validates a
//   function endpoint when the subscription is made. Flex Consumption runs Event Grid triggers
//   (the sample's blob trigger uses Event Grid as its source: Flex has no polling blob trigger).
//   Here the subscription is this module's too, made when `subscribe` is true: the operator
//   sets KEY_VAULT_EVENTS=true and runs `azd provision` once the code is deployed (docs/deploy.md).
// - "Azure Key Vault as Event Grid source" (learn.microsoft.com/azure/event-grid/event-schema-key-vault):
//   topic type Microsoft.KeyVault.vaults; event types; the subject is the secret's name.
// - Event filtering (learn.microsoft.com/azure/event-grid/event-filtering): includedEventTypes,
//   subjectBeginsWith / subjectEndsWith, isSubjectCaseSensitive.
// - Delivery with an Azure Function destination, endpointType AzureFunction, resourceId
//   <site id>/functions/<name> (azure-rest-api-specs, eventgrid, stable/2022-06-15,
//   EventGrid.json: AzureFunctionEventSubscriptionDestination; maxEventsPerBatch 1 is Event
//   Grid's one-event delivery).
// - Dead letters (learn.microsoft.com/azure/event-grid/manage-event-delivery and
//   managed-service-identity): deadLetterWithResourceIdentity with the system topic's
//   system-assigned identity, which needs Storage Blob Data Contributor on the container.
// - Retry defaults (delivery-and-retry): 30 attempts, 1440 minutes to live.
// - Metrics of Microsoft.EventGrid/systemTopics (learn.microsoft.com/azure/azure-monitor/
//   reference/supported-metrics/microsoft-eventgrid-systemtopics-metrics): DeadLetteredCount,
//   the alert below; doctor reads DeliverySuccessCount and DeadLetteredCount too.

param tags object
param vaultName string
param systemTopicName string

@description('Make the event subscription (the function must exist: set after the first deploy).')
param subscribe bool

@description('The Function App (resource id) and the trigger function events are delivered to.')
param functionAppId string
param functionName string = 'key_vault_events'

@description('The managed secrets\' names (ROTATION_SECRET_NAME_TEMPLATE around {app_id}).')
param subjectBeginsWith string
param subjectEndsWith string

@description('The Function App\'s storage account (resource id) and the dead-letter container in it.')
param storageAccountId string
param deadLetterContainerName string

@description('Who may read the subscription and its metrics (doctor): the rotator\'s identity.')
param readerPrincipalId string

@description('Action groups of the rotator\'s alerts (empty: shown in Azure Monitor only).')
param actionGroupIds array

var builtInReader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageName = last(split(storageAccountId, '/'))

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: vault.location // a system topic lives in its source's region
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
  scope: resourceGroup(split(storageAccountId, '/')[2], split(storageAccountId, '/')[4])
}

module deadLetterAccess 'eventgrid-deadletter.bicep' = {
  name: 'eventgrid-deadletter-${uniqueString(topic.id)}'
  scope: resourceGroup(split(storageAccountId, '/')[2], split(storageAccountId, '/')[4])
  params: {
    storageName: storageName
    containerName: deadLetterContainerName
    principalId: topic.identity.principalId
    roleDefinitionGuid: storageBlobDataContributor
  }
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (subscribe) {
  parent: topic
  name: 'acs-smtp-rotation'
  dependsOn: [
    deadLetterAccess
  ]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNewVersionCreated'
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
      subjectBeginsWith: subjectBeginsWith
      subjectEndsWith: subjectEndsWith
      isSubjectCaseSensitive: false
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

// doctor reads the subscription and the topic's delivery metrics: Reader on the topic only.
resource topicReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, readerPrincipalId, builtInReader)
  scope: topic
  properties: {
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInReader)
    description: 'ACS SMTP rotation: doctor checks the Key Vault event subscription and its delivery.'
  }
}

// Anything dead-lettered is an event the rotator never handled: a near expiry not rotated, a
// hand-written version not checked. Alert on the first one.
resource deadLettered 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${systemTopicName}-dead-lettered'
  location: 'global'
  tags: tags
  properties: {
    description: 'A Key Vault event could not be delivered to the rotator and was dead-lettered into the ${deadLetterContainerName} container of the Function App\'s storage. Read the blob (it names the event and the last error), fix the cause (GET /api/doctor), then run a rotation of the app it names.'
    severity: 1
    enabled: true
    scopes: [
      topic.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: false
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dead-lettered'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          timeAggregation: 'Total'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    actions: [
      for id in actionGroupIds: {
        actionGroupId: id
      }
    ]
  }
}

output systemTopicId string = topic.id
output subscribed bool = subscribe
