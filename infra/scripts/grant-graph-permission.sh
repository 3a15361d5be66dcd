#!/usr/bin/env bash
# Grants the rotator's managed identity the Microsoft Graph application permission
# Application.ReadWrite.OwnedBy (admin consent for a managed identity).
#
# By default (GRANT_GRAPH_PERMISSION=false) `azd up` leaves this to an administrator
# (Privileged Role Administrator, or Global Administrator), who runs this script once;
# `doctor` reports the grant as missing until then. With GRANT_GRAPH_PERMISSION=true,
# `azd provision` does it through the Microsoft Graph Bicep extension instead. Idempotent.
#
# Usage: infra/scripts/grant-graph-permission.sh [--principal-id <object id>]
#   default principal: $ROTATOR_PRINCIPAL_ID or `azd env get-value ROTATOR_PRINCIPAL_ID`
set -euo pipefail

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
OWNED_BY=18a4783c-866b-4cc7-a460-3d5e5662c884 # Application.ReadWrite.OwnedBy, in every tenant
principal="${ROTATOR_PRINCIPAL_ID:-}"

case "${1:-}" in
  --principal-id) principal="${2:?--principal-id needs a value}" ;;
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "unknown argument $1" >&2; exit 2 ;;
esac

command -v az >/dev/null || { echo "the Azure CLI (az) is required" >&2; exit 2; }
if [ -z "$principal" ] && command -v azd >/dev/null; then
  principal="$(azd env get-value ROTATOR_PRINCIPAL_ID 2>/dev/null || true)"
fi
[ -n "$principal" ] || { echo "no principal id: pass --principal-id or run after 'azd provision'" >&2; exit 2; }

graph="$(az cloud show --query endpoints.microsoftGraphResourceId --output tsv)"
graph="${graph%/}"
graph_sp="$(az ad sp show --id "$GRAPH_APP_ID" --query id --output tsv)"
assignments="$graph/v1.0/servicePrincipals/$principal/appRoleAssignments"

count="$(az rest --method get --url "$assignments" \
  --query "value[?appRoleId=='$OWNED_BY' && resourceId=='$graph_sp'] | length(@)" --output tsv)"
if [ "$count" != "0" ]; then
  echo "ok     the identity already holds Application.ReadWrite.OwnedBy"
  exit 0
fi
az rest --method post --url "$assignments" --headers "Content-Type=application/json" \
  --body "{\"principalId\":\"$principal\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$OWNED_BY\"}" \
  --output none
echo "added  Application.ReadWrite.OwnedBy for $principal"
