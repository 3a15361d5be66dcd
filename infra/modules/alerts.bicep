// Alerts on the rotator's own log events (JSON lines, see rotation/logs.py), read from the
// Application Insights `traces` table:
//   run.finished     fields failed, rotated, unfinished       -> a run with failed > 0
//   app.expiry_near  fields app_id, days_left (logged only     -> an app within N days of
//                    when the app was not rotated in that run)    expiry, still not rotated
// plus a silence alert when no run has finished for two days (the timer stopped, the app
// cannot start, or its identity lost access to storage).

param location string
param tags object
param namePrefix string
param appInsightsId string

@description('Alert when an app not rotated in a run has this many days or fewer before its SMTP password expires.')
@minValue(1)
@maxValue(365)
param expiryDays int

@description('Email address for alert notifications; empty means the alerts show in Azure Monitor only.')
param email string

@description('Raise an alert when no run has finished for two days (turn off for schedules rarer than daily).')
param silenceAlert bool

// The JSON object is taken from the first '{' on, so a prefix added by the host does not matter.
// (No blank lines inside a query: trim() keeps the spliced text free of them.)
var parse = '''
| extend body = parse_json(extract(@"(\{.*\})", 1, message))
| extend eventName = tostring(body.event)
'''

var problemQuery = replace('''
traces
| where message contains "run.finished" or message contains "app.expiry_near"
__PARSE__
| extend failed = toint(body.failed), unfinished = toint(body.unfinished), rotated = toint(body.rotated)
| extend appId = tostring(body.app_id), daysLeft = todouble(body.days_left), runId = tostring(body.run_id)
| where (eventName == "run.finished" and failed > 0) or (eventName == "app.expiry_near" and daysLeft <= __DAYS__)
| project timestamp, eventName, runId, failed, rotated, unfinished, appId, daysLeft
''', '__DAYS__', string(expiryDays))

var silenceQuery = '''
traces
| where message contains "run.finished"
__PARSE__
| where eventName == "run.finished"
| summarize runs = count()
'''

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(email)) {
  name: '${namePrefix}-ag'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'acs-rotate'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: email
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(email) ? [] : [
  actionGroup.id
]

resource problems 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-rotation-problem'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACS SMTP rotation: a run failed or a password is near expiry'
    description: 'A rotation run reported failed apps (run.finished with failed > 0), or an app was not rotated and its SMTP password expires within ${expiryDays} days (app.expiry_near). See the run report: GET /api/status, or the run.finished and app.failed events.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: trim(replace(problemQuery, '__PARSE__', trim(parse)))
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'eventName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource silence 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = if (silenceAlert) {
  name: '${namePrefix}-rotation-silent'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACS SMTP rotation: no run finished for two days'
    description: 'No run.finished event in 48 hours: the timer is not firing, the app does not start, or it cannot reach its storage. Check the Function App\'s logs and its identity\'s role assignments.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT6H'
    windowSize: 'P2D'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: trim(replace(silenceQuery, '__PARSE__', trim(parse)))
          timeAggregation: 'Total'
          metricMeasureColumn: 'runs'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

output problemRuleId string = problems.id
