#!/bin/sh
# azd preprovision hook: checks what `azd provision` needs before it starts, so a missing
# prerequisite fails here with the command that fixes it instead of halfway through.
#   - the Azure CLI, signed in (the hooks and scripts use it);
#   - the Microsoft.App resource provider registered in the deployment subscription
#     (Flex Consumption needs it; an unregistered provider fails the Function App).
# Sources: Azure/azure-cli#33177 and hashicorp/terraform-provider-azurerm#30397 (Flex apps
# fail without Microsoft.App registered, and nothing registers it for you).
# azd passes AZURE_SUBSCRIPTION_ID from the environment.
set -eu

if ! command -v az >/dev/null 2>&1; then
  echo "preprovision: the Azure CLI (az) is required by the hooks: https://aka.ms/azcli" >&2
  exit 1
fi
subscription="${AZURE_SUBSCRIPTION_ID:-}"
if ! az account show --query id -o tsv >/dev/null 2>&1; then
  echo "preprovision: the Azure CLI is not signed in. Run: az login" >&2
  exit 1
fi
if [ -n "$subscription" ]; then
  set -- --subscription "$subscription"
else
  set --
fi

state="$(az provider show --namespace Microsoft.App --query registrationState -o tsv "$@" 2>/dev/null || echo Unknown)"
if [ "$state" != "Registered" ]; then
  echo "preprovision: the Microsoft.App resource provider is '$state' in subscription ${subscription:-(default)}." >&2
  echo "Flex Consumption needs it. Register it (once per subscription, a few minutes), then run azd up again:" >&2
  echo "  az provider register --namespace Microsoft.App --wait${subscription:+ --subscription $subscription}" >&2
  exit 1
fi
echo "preprovision: az signed in, Microsoft.App registered."
