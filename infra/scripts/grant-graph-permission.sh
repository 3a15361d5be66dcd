#!/usr/bin/env bash
# Grants the rotator's managed identity its Microsoft Graph application permissions (admin
# consent for a managed identity):
#   Application.ReadWrite.OwnedBy  add and remove passwords of the apps it owns (required)
#   Policy.Read.All                read the tenant's app-management policies (a cap on a
#   Application.Read.All           password's lifetime, a ban on passwords) and which apps
#                                  each applies to; without them the rotator still works,
#                                  and says it could not read them
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
# App role ids of Microsoft Graph, the same in every tenant (Microsoft Graph permissions
# reference); infra/modules/graph-permission.bicep names the same three.
ROLES="Application.ReadWrite.OwnedBy=18a4783c-866b-4cc7-a460-3d5e5662c884
Policy.Read.All=246dd0d5-5bd0-4def-940b-0421030a5b68
Application.Read.All=9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"
principal="${ROTATOR_PRINCIPAL_ID:-}"

case "${1:-}" in
  --principal-id) principal="${2:?--principal-id needs a value}" ;;
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

echo "$ROLES" | while IFS='=' read -r name role; do
  count="$(az rest --method get --url "$assignments" \
    --query "value[?appRoleId=='$role' && resourceId=='$graph_sp'] | length(@)" --output tsv)"
  if [ "$count" != "0" ]; then
    echo "ok     the identity already holds $name"
    continue
  fi
  az rest --method post --url "$assignments" --headers "Content-Type=application/json" \
    --body "{\"principalId\":\"$principal\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$role\"}" \
    --output none
  echo "added  $name for $principal"
done
