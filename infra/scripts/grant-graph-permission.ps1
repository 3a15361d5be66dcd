<#
.SYNOPSIS
Grants the rotator's managed identity its Microsoft Graph application permissions
(PowerShell twin of grant-graph-permission.sh): Application.ReadWrite.OwnedBy (required),
Policy.Read.All and Application.Read.All (to read the tenant's app-management policies).
Run by a Privileged Role Administrator when the deployment ran with
GRANT_GRAPH_PERMISSION=false (the default). Idempotent.
#>
param([string] $PrincipalId = $env:ROTATOR_PRINCIPAL_ID)
$ErrorActionPreference = 'Stop'
$GraphAppId = '00000003-0000-0000-c000-000000000000'
# App role ids of Microsoft Graph, the same in every tenant (Microsoft Graph permissions reference).
$Roles = [ordered]@{
    'Application.ReadWrite.OwnedBy' = '18a4783c-866b-4cc7-a460-3d5e5662c884'
    'Policy.Read.All'               = '246dd0d5-5bd0-4def-940b-0421030a5b68'
    'Application.Read.All'          = '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'
}

if (-not $PrincipalId -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    $PrincipalId = (azd env get-value ROTATOR_PRINCIPAL_ID 2>$null)
}
if (-not $PrincipalId) { throw "no principal id: pass -PrincipalId or run after 'azd provision'" }

$graph = (az cloud show --query endpoints.microsoftGraphResourceId --output tsv).TrimEnd('/')
$graphSp = az ad sp show --id $GraphAppId --query id --output tsv
$assignments = "$graph/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments"
foreach ($name in $Roles.Keys) {
    $role = $Roles[$name]
    $count = az rest --method get --url $assignments `
        --query "value[?appRoleId=='$role' && resourceId=='$graphSp'] | length(@)" --output tsv
    if ($count -ne '0') { Write-Output "ok     the identity already holds $name"; continue }

    $body = @{ principalId = $PrincipalId; resourceId = $graphSp; appRoleId = $role } | ConvertTo-Json -Compress
    $file = New-TemporaryFile
    try {
        Set-Content -Path $file -Value $body -NoNewline
        az rest --method post --url $assignments --headers 'Content-Type=application/json' --body "@$file" --output none
        if ($LASTEXITCODE -ne 0) { throw 'the app role assignment failed (are you a Privileged Role Administrator?)' }
    } finally {
        Remove-Item $file -ErrorAction SilentlyContinue
    }
    Write-Output "added  $name for $PrincipalId"
}
