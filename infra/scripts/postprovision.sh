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
echo "Once the code is deployed, the end of azd up asks doctor and prints its lines (postdeploy hook);"
echo "run it again any time: curl \"${FUNCTION_URL:-https://<app>/api}/doctor?format=text&code=<function key>\""
echo "Check what the rotator sees: curl \"${FUNCTION_URL:-https://<app>/api}/status?code=<function key>\""
echo "(get a key: az functionapp keys list -g ${AZURE_RESOURCE_GROUP:-<rg>} -n ${FUNCTION_APP_NAME:-<app>})"
