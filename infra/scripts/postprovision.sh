#!/bin/sh
# azd postprovision hook: finishes what Bicep cannot do and says what is left.
# azd passes the deployment outputs (ROTATOR_PRINCIPAL_ID, FUNCTION_URL, ...) and the
# environment's values (ACS_APP_IDS, GRANT_GRAPH_PERMISSION, ...) as environment variables.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"

echo ""
echo "ACS SMTP rotation is provisioned."
echo "  Function API : ${FUNCTION_URL:-?}"
echo "  Key Vault    : ${ROTATION_KEY_VAULT_URL:-?}"
echo "  Identity     : ${ROTATOR_PRINCIPAL_ID:-?} (object id of the Function App's managed identity)"
echo "  Workbook     : Application Insights > Workbooks > \"ACS SMTP rotation\" in resource group ${AZURE_RESOURCE_GROUP:-?}"
echo ""

if [ "${GRANT_GRAPH_PERMISSION:-false}" != "true" ]; then
  echo "Microsoft Graph permission NOT granted (GRANT_GRAPH_PERMISSION is not true, the default). A Privileged Role Administrator runs:"
  echo "  infra/scripts/grant-graph-permission.sh --principal-id ${ROTATOR_PRINCIPAL_ID:-<id>}"
  echo ""
fi

if [ -n "${ACS_APP_IDS:-}" ]; then
  echo "Making the identity an owner of the apps in ACS_APP_IDS:"
  if ! command -v bash >/dev/null || ! command -v az >/dev/null; then
    echo "  bash and az are needed; run infra/scripts/add-owner.sh later." >&2
  else
    bash "$here/add-owner.sh" --principal-id "${ROTATOR_PRINCIPAL_ID:?}" ||
      echo "  Some apps were not done: run infra/scripts/add-owner.sh again as an owner of them." >&2
  fi
else
  echo "One step is left: make the identity an owner of each ACS sender app, e.g."
  echo "  infra/scripts/add-owner.sh --discover            # apps named by SMTP Usernames"
  echo "  infra/scripts/add-owner.sh <app id> [<app id>...]"
  echo "(or 'azd env set ACS_APP_IDS <id>,<id>' and 'azd provision' again)."
fi
echo ""
echo "Check every prerequisite once the code is deployed (the end of azd up), signed in as"
echo "someone holding the API's Rotation.Read role (API_OPERATORS, or assign it: docs/deploy.md):"
echo "  AUTH=\"Authorization: Bearer \$(az account get-access-token --resource ${API_APP_ID_URI:-<application ID URI>} --query accessToken -o tsv)\""
echo "  curl \"${FUNCTION_URL:-https://<app>/api}/doctor\" -H \"\$AUTH\""
echo "Check what the rotator sees: curl \"${FUNCTION_URL:-https://<app>/api}/status\" -H \"\$AUTH\""
