// The operators' picture: an Azure Monitor workbook over the rotator's Application Insights.
// Its panels (workbook.json, kept as plain JSON so the portal's Advanced Editor output can be
// pasted back) read the rotator's log events; rotation/telemetry/events.py and docs/events.md list them,
// and tests/infra/test_log_contract.py checks every query against lines the product writes.
//
// Resource contract (azure-rest-api-specs, applicationinsights, stable/2023-06-01,
// workbooks_API.json): kind 'shared' is the only valid kind; properties.displayName, category
// and serializedData are required; version names the serializedData schema ('Notebook/1.0').
// The name must be a GUID (Microsoft's workbook samples use one): a stable guid() keeps a
// redeployment updating the same workbook instead of adding another. sourceId ties it to the
// Application Insights resource, so it is listed under that resource's Workbooks.

param location string
param tags object
param appInsightsId string

@description('Hours between scheduled runs (the period of ROTATION_SCHEDULE): the workbook marks the last run when it is older than two periods. Operators can change it in the workbook too.')
@minValue(1)
@maxValue(8784)
param schedulePeriodHours int = 24

var displayName = 'ACS SMTP rotation'
var definition = loadTextContent('workbook.json')
var withResource = replace(definition, '__APP_INSIGHTS_ID__', appInsightsId)
var serializedData = replace(withResource, '__SCHEDULE_HOURS__', string(schedulePeriodHours))

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsId, displayName)
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: appInsightsId
    serializedData: serializedData
  }
}

output workbookId string = workbook.id
output workbookName string = workbook.name
