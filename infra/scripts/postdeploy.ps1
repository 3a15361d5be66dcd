# azd postdeploy hook on Windows: the twin of postdeploy.sh. Asks the deployed app's doctor
# (GET /api/doctor?format=text) with the deployer's own Entra ID token for the API and prints
# its lines; never fails the deployment. The token goes in the Authorization header and is
# never printed.
$ErrorActionPreference = 'Continue'

$url = $env:FUNCTION_URL
$api = $env:API_APP_ID_URI
$attempts = if ($env:DOCTOR_ATTEMPTS) { [int]$env:DOCTOR_ATTEMPTS } else { 18 }
$pause = if ($env:DOCTOR_PAUSE_SECONDS) { [int]$env:DOCTOR_PAUSE_SECONDS } else { 10 }

function Show-Later {
    Write-Output 'Run it yourself once the app answers:'
    Write-Output "  curl -H `"Authorization: Bearer <az account get-access-token --resource $api --query accessToken -o tsv>`" `"$url/doctor?format=text`""
    Write-Output "  (you need the API's Rotation.Read role: API_OPERATORS, or docs/deploy.md `"Who may call the API`")"
}

Write-Output ''
Write-Output 'doctor: every prerequisite of a rotation, checked by the deployed app'
if (-not $url -or -not $api) {
    Write-Output '  FUNCTION_URL or API_APP_ID_URI is not set (azd sets them after a provision).'
    Show-Later
    exit 0
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Output '  az is needed to ask doctor.'
    Show-Later
    exit 0
}

for ($try = 1; ; $try++) {
    # A role granted a moment ago shows only in a token issued after it: ask for one each try.
    $token = az account get-access-token --resource $api --query accessToken -o tsv 2>$null
    $code = $null
    if ($token) {
        try {
            $answer = Invoke-WebRequest -Uri "$url/doctor?format=text" -Headers @{ 'Authorization' = "Bearer $token" } `
                -SkipHttpErrorCheck -TimeoutSec 200 -UseBasicParsing
            $code = [int]$answer.StatusCode
            if ($code -eq 401 -or $code -eq 403) {
                Write-Output "  doctor refused your sign-in (HTTP $code): your token carries no Rotation.Read role of the API."
                Show-Later
                exit 0
            }
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
        if (-not $token) {
            Write-Output "  No token for the API could be had (az account get-access-token --resource $api failed: sign in with az login, and hold one of its roles)."
        } else {
            Write-Output "  doctor did not answer (last: HTTP $code)."
        }
        Show-Later
        exit 0
    }
    Write-Output "  waiting for the app to start (try $try of $attempts) ..."
    Start-Sleep -Seconds $pause
}
