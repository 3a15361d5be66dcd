<#
.SYNOPSIS
Makes the rotator's managed identity an owner of each ACS sender app (PowerShell twin of
add-owner.sh; see that script and docs/deploy.md for why).

.EXAMPLE
./infra/scripts/add-owner.ps1 11111111-2222-3333-4444-555555555555
./infra/scripts/add-owner.ps1 -Discover
#>
param(
    [string] $PrincipalId = $env:ROTATOR_PRINCIPAL_ID,
    [switch] $Discover,
    [Parameter(ValueFromRemainingArguments = $true)] [string[]] $AppIds = @()
)
$ErrorActionPreference = 'Stop'
$SmtpApiVersion = '2025-09-01'

function Split-Csv([string] $Text) {
    if (-not $Text) { return @() }
    return @($Text -split '[,;\s]+' | Where-Object { $_ })
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'the Azure CLI (az) is required' }
if (-not $PrincipalId -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    $PrincipalId = (azd env get-value ROTATOR_PRINCIPAL_ID 2>$null)
}
if (-not $PrincipalId) { throw "no principal id: pass -PrincipalId, or run after 'azd provision'" }

$apps = @($AppIds) + (Split-Csv $env:ACS_APP_IDS)
if ($Discover) {
    $resources = Split-Csv $env:ROTATION_ACS_RESOURCE_IDS
    if (-not $resources) {
        $subscriptions = Split-Csv $env:ROTATION_SUBSCRIPTION_IDS
        if (-not $subscriptions) { $subscriptions = @(az account show --query id --output tsv) }
        foreach ($sub in $subscriptions) {
            $resources += @(az resource list --subscription $sub `
                    --resource-type Microsoft.Communication/CommunicationServices --query '[].id' --output tsv)
        }
    }
    foreach ($resource in $resources) {
        $apps += @(az rest --method get --url "$resource/smtpUsernames?api-version=$SmtpApiVersion" `
                --query 'value[].properties.entraApplicationId' --output tsv)
    }
}
$apps = @($apps | Where-Object { $_ } | ForEach-Object { $_.ToLowerInvariant() } | Sort-Object -Unique)
if (-not $apps) { throw 'no app ids given: pass them as arguments, set ACS_APP_IDS, or use -Discover' }

$failed = 0
foreach ($app in $apps) {
    az ad app show --id $app --query id --output tsv *> $null
    if ($LASTEXITCODE -ne 0) {
        Write-Warning "FAIL   ${app}: no such application in this tenant (or you may not read it)"
        $failed++
        continue
    }
    $already = az ad app owner list --id $app --query "[?id=='$PrincipalId'] | length(@)" --output tsv
    if ($already -ne '0') {
        Write-Output "ok     ${app}: the identity is already an owner"
        continue
    }
    az ad app owner add --id $app --owner-object-id $PrincipalId *> $null
    if ($LASTEXITCODE -eq 0) {
        Write-Output "added  ${app}: the identity is now an owner"
    } else {
        Write-Warning "FAIL   ${app}: could not add the owner (you must own the app or be an Application Administrator)"
        $failed++
    }
}
if ($failed) { Write-Error "$failed app(s) not done"; exit 1 }
