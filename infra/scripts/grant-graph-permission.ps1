<#
.SYNOPSIS
Grants the rotator's managed identity Microsoft Graph Application.ReadWrite.OwnedBy
(PowerShell twin of grant-graph-permission.sh). Run by a Privileged Role Administrator when
the deployment ran with GRANT_GRAPH_PERMISSION=false (the default). Idempotent.
#>
param([string] $PrincipalId = $env:ROTATOR_PRINCIPAL_ID)
$ErrorActionPreference = 'Stop'
$GraphAppId = '00000003-0000-0000-c000-000000000000'
$OwnedBy = '18a4783c-866b-4cc7-a460-3d5e5662c884'  # Application.ReadWrite.OwnedBy, in every tenant

if (-not $PrincipalId -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    $PrincipalId = (azd env get-value ROTATOR_PRINCIPAL_ID 2>$null)
}
if (-not $PrincipalId) { throw "no principal id: pass -PrincipalId or run after 'azd provision'" }

$graph = (az cloud show --query endpoints.microsoftGraphResourceId --output tsv).TrimEnd('/')
$graphSp = az ad sp show --id $GraphAppId --query id --output tsv
$assignments = "$graph/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments"
$count = az rest --method get --url $assignments `
    --query "value[?appRoleId=='$OwnedBy' && resourceId=='$graphSp'] | length(@)" --output tsv
if ($count -ne '0') { Write-Output 'ok     the identity already holds Application.ReadWrite.OwnedBy'; exit 0 }

$body = @{ principalId = $PrincipalId; resourceId = $graphSp; appRoleId = $OwnedBy } | ConvertTo-Json -Compress
$file = New-TemporaryFile
try {
    Set-Content -Path $file -Value $body -NoNewline
    az rest --method post --url $assignments --headers 'Content-Type=application/json' --body "@$file" --output none
    if ($LASTEXITCODE -ne 0) { throw 'the app role assignment failed (are you a Privileged Role Administrator?)' }
} finally {
    Remove-Item $file -ErrorAction SilentlyContinue
}
Write-Output "added  Application.ReadWrite.OwnedBy for $PrincipalId"
