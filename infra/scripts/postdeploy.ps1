# azd postdeploy hook on Windows: the twin of postdeploy.sh. Asks the deployed app's doctor
# (GET /api/doctor?format=text) and prints its lines; never fails the deployment. The
# function key goes in the x-functions-key header and is never printed.
$ErrorActionPreference = 'Continue'

$url = $env:FUNCTION_URL
$group = $env:AZURE_RESOURCE_GROUP
$app = $env:FUNCTION_APP_NAME
$attempts = if ($env:DOCTOR_ATTEMPTS) { [int]$env:DOCTOR_ATTEMPTS } else { 18 }
$pause = if ($env:DOCTOR_PAUSE_SECONDS) { [int]$env:DOCTOR_PAUSE_SECONDS } else { 10 }

function Show-Later {
    Write-Output 'Run it yourself once the app answers:'
    Write-Output "  curl -H `"x-functions-key: <function key>`" `"$url/doctor?format=text`""
    Write-Output "  (key: az functionapp keys list -g $group -n $app --query functionKeys.default -o tsv)"
}

Write-Output ''
Write-Output 'doctor: every prerequisite of a rotation, checked by the deployed app'
if (-not $url -or -not $group -or -not $app) {
    Write-Output '  FUNCTION_URL, FUNCTION_APP_NAME or AZURE_RESOURCE_GROUP is not set (azd sets them after a provision).'
    Show-Later
    exit 0
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Output '  az is needed to ask doctor.'
    Show-Later
    exit 0
}

for ($try = 1; ; $try++) {
    # The host writes its keys when it first starts: the list is empty (or fails) until then.
    $key = az functionapp keys list -g $group -n $app --query functionKeys.default -o tsv 2>$null
    $code = $null
    if ($key) {
        try {
            $answer = Invoke-WebRequest -Uri "$url/doctor?format=text" -Headers @{ 'x-functions-key' = "$key" } `
                -SkipHttpErrorCheck -TimeoutSec 200 -UseBasicParsing
            $code = [int]$answer.StatusCode
            $text = [string]$answer.Content
            $last = ($text.TrimEnd("`n") -split "`n")[-1]
            # 200: every check ok; 503: some failed. Doctor's answer ends with the count.
            if (($code -eq 200 -or $code -eq 503) -and $last -match '^[0-9]+ checks: ') {
                ($text.TrimEnd("`n") -split "`n") | ForEach-Object { Write-Output "  $_" }
                if ($code -eq 503) {
                    Write-Output 'The deployment succeeded; each failed check above has its fix. Run doctor again after fixing:'
                    Write-Output "  python -m rotation doctor, or GET $url/doctor?format=text"
                }
                exit 0
            }
        } catch {
            $code = $null
        }
    }
    if ($try -ge $attempts) {
        if (-not $key) {
            Write-Output "  The app's function key could not be read (the host has not started yet, or you may not list its keys)."
        } else {
            Write-Output "  doctor did not answer (last: HTTP $code)."
        }
        Show-Later
        exit 0
    }
    Write-Output "  waiting for the app to start (try $try of $attempts) ..."
    Start-Sleep -Seconds $pause
}
