# azd preprovision hook on Windows: the twin of preprovision.sh. Checks that the Azure CLI
# is signed in and that the Microsoft.App resource provider (Flex Consumption needs it) is
# registered in the deployment subscription, naming the command that fixes each.
$ErrorActionPreference = 'Stop'

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error 'preprovision: the Azure CLI (az) is required by the hooks: https://aka.ms/azcli'
    exit 1
}
az account show --query id -o tsv *> $null
if ($LASTEXITCODE -ne 0) {
    Write-Error 'preprovision: the Azure CLI is not signed in. Run: az login'
    exit 1
}
$subscription = $env:AZURE_SUBSCRIPTION_ID
$scope = @()
if ($subscription) { $scope = @('--subscription', $subscription) }

$state = az provider show --namespace Microsoft.App --query registrationState -o tsv @scope 2>$null
if ($LASTEXITCODE -ne 0 -or -not $state) { $state = 'Unknown' }
if ($state -ne 'Registered') {
    $fix = 'az provider register --namespace Microsoft.App --wait'
    if ($subscription) { $fix = "$fix --subscription $subscription" }
    Write-Error ("preprovision: the Microsoft.App resource provider is '$state' in subscription $subscription. " +
        "Flex Consumption needs it. Register it (once per subscription, a few minutes), then run azd up again:`n  $fix")
    exit 1
}
Write-Output 'preprovision: az signed in, Microsoft.App registered.'
