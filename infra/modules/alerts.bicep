// Alerts on the rotator's own log events (JSON lines, see rotation/telemetry/logs.py), read from the
// Application Insights `traces` table, and on the Functions host's record of the timer:
//   run.finished     fields failed, rotated, unfinished,  -> a real run (not a dry run)
//                    starved, dry_run                         with failed > 0, or apps due
//                                                             and none started (starved)
//   app.expiry_near  fields app_id, days_left (logged only  -> an app within N days of
//                    when the app was not rotated in a run,    expiry, still not rotated;
//                    dry runs too)                             whichever run saw it (why:
//                                                             docs/deploy.md, "Dry runs and
//                                                             the alerts")
//   run.failed       fields error_type, error              -> a run that failed before its
//                    (discovery, an ARM or Graph 403,          report, so no run.finished
//                    invalid settings)
//   app.left_unstarted fields runs, due_since            -> an app due for several scheduled
//                                                             runs that the budget keeps leaving out
//   settings.invalid field error (at worker start)         -> the app cannot run at all
//   vault.drift_detected fields app_id, vault_version,    -> a Key Vault version of a managed
//                    smtp, error                              secret the rotator did not write
//                                                             (issue 26; rotation/vault_watch.py)
// plus a rule on failed timer invocations (`requests`/`exceptions` of rotation_timer), and a
// silence alert when no real run has finished for two days (the timer stopped, the app
// cannot start, or its identity lost access to storage), armed only two days after the
// deployment, since the first scheduled run may be a day away.
// tests/infra/test_alerts.py runs every query below against log lines the product writes.

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

@description('The silence alert stays quiet until this time (ISO 8601): two days after the deployment.')
param silenceArmedAfter string

// The JSON object is taken from the first '{' on, so a prefix added by the host does not matter.
// (No blank lines inside a query: trim() keeps the spliced text free of them.)
var parse = '''
| extend body = parse_json(extract(@"(\{.*\})", 1, message))
| extend eventName = tostring(body.event), dryRun = tobool(body.dry_run)
'''

var problemQuery = replace('''
traces
| where message contains "run.finished" or message contains "app.expiry_near" or message contains "app.left_unstarted" or message contains "run.failed" or message contains "settings.invalid" or message contains "vault.drift_detected"
__PARSE__
| extend failed = toint(body.failed), unfinished = toint(body.unfinished), rotated = toint(body.rotated), starved = tobool(body.starved)
| extend appId = tostring(body.app_id), daysLeft = todouble(body.days_left), runId = tostring(body.run_id), error = tostring(body.error)
| where (eventName == "run.finished" and (failed > 0 or starved == true) and dryRun != true) or (eventName == "app.expiry_near" and daysLeft <= __DAYS__) or eventName == "app.left_unstarted" or eventName == "run.failed" or eventName == "settings.invalid" or eventName == "vault.drift_detected"
| project timestamp, eventName, runId, failed, rotated, unfinished, starved, appId, daysLeft, error
''', '__DAYS__', string(expiryDays))

// The Functions host records each invocation in `requests` (success false when the function
// raised) and each unhandled exception in `exceptions`, under the function's name.
var timerQuery = '''
union
(requests | where name == "rotation_timer" and success == false | project timestamp, problem = "invocation failed", detail = resultCode),
(exceptions | where operation_Name == "rotation_timer" | project timestamp, problem = "exception", detail = outerMessage)
'''

var silenceQuery = replace('''
traces
| where message contains "run.finished"
__PARSE__
| where eventName == "run.finished" and dryRun != true
| summarize runs = count()
| extend runs = iff(now() < datetime(__ARMED__), 1, runs)
''', '__ARMED__', silenceArmedAfter)

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
    description: 'A rotation run reported failed apps or started none of its due apps (run.finished with failed > 0 or starved; dry runs excluded), a run failed before its report (run.failed), the settings are invalid (settings.invalid), an app was due for several scheduled runs and none started it (app.left_unstarted), an app was not rotated and its SMTP password expires within ${expiryDays} days (app.expiry_near), or someone wrote a Key Vault version of a managed secret by hand (vault.drift_detected: the app is blocked until an operator resolves it; smtp says whether its password works). Run GET /api/doctor, and see GET /api/status or the app.failed events.'
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

resource timerFailed 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-timer-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACS SMTP rotation: the timer invocation failed'
    description: 'The rotation_timer function raised (failed apps, a failure before the run report, invalid settings) or threw an exception the host recorded. Run GET /api/doctor and read the exception in Application Insights.'
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
          query: trim(timerQuery)
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'problem'
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
    description: 'No run.finished event of a real (not dry) run in 48 hours, counted from two days after the deployment: the timer is not firing, the app does not start, or it cannot reach its storage. Run GET /api/doctor and check the Function App\'s logs.'
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

output actionGroupIds array = actionGroups
