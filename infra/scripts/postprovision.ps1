# azd postprovision hook on Windows: the twin of postprovision.sh.
$ErrorActionPreference = 'Stop'
$here = Split-Path -Parent $MyInvocation.MyCommand.Path

Write-Output ''
Write-Output 'ACS SMTP rotation is provisioned.'
Write-Output "  Function API : $env:FUNCTION_URL"
Write-Output "  Key Vault    : $env:ROTATION_KEY_VAULT_URL"
Write-Output "  Identity     : $env:ROTATOR_PRINCIPAL_ID (object id of the Function App's managed identity)"
Write-Output "  Workbook     : Application Insights > Workbooks > 'ACS SMTP rotation' in resource group $env:AZURE_RESOURCE_GROUP"
Write-Output ''

if ($env:GRANT_GRAPH_PERMISSION -ne 'true') {
    Write-Output 'Microsoft Graph permission NOT granted (GRANT_GRAPH_PERMISSION is not true, the default). A Privileged Role Administrator runs:'
    Write-Output "  infra/scripts/grant-graph-permission.ps1 -PrincipalId $env:ROTATOR_PRINCIPAL_ID"
    Write-Output ''
}

if ($env:ACS_APP_IDS) {
    Write-Output 'Making the identity an owner of the apps in ACS_APP_IDS:'
    try {
        & "$here/add-owner.ps1" -PrincipalId $env:ROTATOR_PRINCIPAL_ID
    } catch {
        Write-Warning 'Some apps were not done: run infra/scripts/add-owner.ps1 again as an owner of them.'
    }
} else {
    Write-Output 'One step is left: make the identity an owner of each ACS sender app, e.g.'
    Write-Output '  infra/scripts/add-owner.ps1 -Discover             # apps named by SMTP Usernames'
    Write-Output '  infra/scripts/add-owner.ps1 <app id> [<app id>...]'
    Write-Output "(or 'azd env set ACS_APP_IDS <id>,<id>' and 'azd provision' again)."
}
Write-Output ''
Write-Output 'Check every prerequisite once the code is deployed (the end of azd up), signed in as'
Write-Output "someone holding the API's Rotation.Read role (API_OPERATORS, or assign it: docs/deploy.md):"
Write-Output "  `$token = az account get-access-token --resource $env:API_APP_ID_URI --query accessToken -o tsv"
Write-Output "  curl `"$env:FUNCTION_URL/doctor`" -H `"Authorization: Bearer `$token`""
Write-Output "Check what the rotator sees: curl `"$env:FUNCTION_URL/status`" -H `"Authorization: Bearer `$token`""
