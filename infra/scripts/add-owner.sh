#!/usr/bin/env bash
# Makes the rotator's managed identity an owner of each ACS sender app.
#
# Why: the identity holds Microsoft Graph Application.ReadWrite.OwnedBy, which lets it add and
# remove client secrets only on applications it owns. Until it owns an app, the rotator sees
# the app but cannot rotate it (it logs a 403 naming the app and this script).
#
# Who may run it: an owner of each app, or an Entra role that manages all applications
# (Application Administrator or Cloud Application Administrator). Idempotent: owners already
# in place are left alone. Works in every cloud `az` is set to (`az cloud set`).
#
# Usage:
#   infra/scripts/add-owner.sh [--principal-id <object id>] [--discover] [<app id> ...]
#     --principal-id  the identity's object id; default: $ROTATOR_PRINCIPAL_ID, or
#                     `azd env get-value ROTATOR_PRINCIPAL_ID` (an output of `azd provision`)
#     --discover      also take every app named by an SMTP Username of the ACS resources in
#                     $ROTATION_ACS_RESOURCE_IDS, or in the subscriptions in
#                     $ROTATION_SUBSCRIPTION_IDS (default: the current `az` subscription)
#     <app id>        Entra application (client) ids; $ACS_APP_IDS (comma-separated) adds more
set -euo pipefail

SMTP_API_VERSION=2025-09-01
principal="${ROTATOR_PRINCIPAL_ID:-}"
discover=false
apps=()

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --principal-id) principal="${2:?--principal-id needs a value}"; shift 2 ;;
    --discover) discover=true; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    *) apps+=("$1"); shift ;;
  esac
done

command -v az >/dev/null || { echo "the Azure CLI (az) is required" >&2; exit 2; }

if [ -z "$principal" ] && command -v azd >/dev/null; then
  principal="$(azd env get-value ROTATOR_PRINCIPAL_ID 2>/dev/null || true)"
fi
if [ -z "$principal" ]; then
  echo "no principal id: pass --principal-id, or run after 'azd provision' (ROTATOR_PRINCIPAL_ID)" >&2
  exit 2
fi

split_csv() { tr -s ',; ' '\n' <<<"${1:-}" | sed '/^$/d'; }

while IFS= read -r id; do apps+=("$id"); done < <(split_csv "${ACS_APP_IDS:-}")

# SMTP Usernames name their Entra app directly (properties.entraApplicationId).
smtp_apps_of() {
  az rest --method get --url "$1/smtpUsernames?api-version=$SMTP_API_VERSION" \
    --query "value[].properties.entraApplicationId" --output tsv
}

if [ "$discover" = true ]; then
  resources=()
  while IFS= read -r id; do resources+=("$id"); done < <(split_csv "${ROTATION_ACS_RESOURCE_IDS:-}")
  if [ ${#resources[@]} -eq 0 ]; then
    subscriptions=()
    while IFS= read -r id; do subscriptions+=("$id"); done < <(split_csv "${ROTATION_SUBSCRIPTION_IDS:-}")
    [ ${#subscriptions[@]} -gt 0 ] || subscriptions=("$(az account show --query id --output tsv)")
    for sub in "${subscriptions[@]}"; do
      while IFS= read -r id; do resources+=("$id"); done < <(
        az resource list --subscription "$sub" \
          --resource-type Microsoft.Communication/CommunicationServices --query "[].id" --output tsv
      )
    done
  fi
  for resource in "${resources[@]}"; do
    while IFS= read -r id; do [ -n "$id" ] && apps+=("$id"); done < <(smtp_apps_of "$resource")
  done
fi

if [ ${#apps[@]} -eq 0 ]; then
  echo "no app ids given: pass them as arguments, set ACS_APP_IDS, or use --discover" >&2
  exit 2
fi

failed=0
for app in $(printf '%s\n' "${apps[@]}" | tr '[:upper:]' '[:lower:]' | sort -u); do
  if ! az ad app show --id "$app" --query id --output tsv >/dev/null 2>&1; then
    echo "FAIL   $app: no such application in this tenant (or you may not read it)" >&2
    failed=$((failed + 1))
    continue
  fi
  already="$(az ad app owner list --id "$app" --query "[?id=='$principal'] | length(@)" --output tsv)"
  if [ "$already" != "0" ]; then
    echo "ok     $app: the identity is already an owner"
  elif az ad app owner add --id "$app" --owner-object-id "$principal" >/dev/null; then
    echo "added  $app: the identity is now an owner"
  else
    echo "FAIL   $app: could not add the owner (you must own the app or be an Application Administrator)" >&2
    failed=$((failed + 1))
  fi
done

[ "$failed" -eq 0 ] || { echo "$failed app(s) not done" >&2; exit 1; }
