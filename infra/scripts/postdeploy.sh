#!/bin/sh
# azd postdeploy hook: the last step of `azd up` (and of `azd deploy`). It asks the deployed
# Function App's doctor (GET /api/doctor?format=text) for every prerequisite of a rotation
# and prints its lines, so the operator sees at once what is left to do: right after the
# first `azd up`, typically the Graph grant and the ownership of each sender app.
#
# A postdeploy hook, not postprovision: azd runs postprovision before it deploys the code,
# so there would be no doctor to ask yet. It never fails the deployment: a failed check is
# the operator's next step (its fix is printed under it), not a broken deploy.
#
# azd passes the deployment outputs (FUNCTION_URL, API_APP_ID_URI, ...) as environment
# variables. doctor is an API route like the others: it takes the deployer's own Entra ID
# token for the API (az account get-access-token), which carries the API's Rotation.Read role
# when the deployer is among API_OPERATORS. The token goes in the Authorization header, never
# in the URL, and is never printed.
set -u

url="${FUNCTION_URL:-}"
api="${API_APP_ID_URI:-}"
# A new Flex Consumption app takes a minute or two to start: try for about three minutes.
attempts="${DOCTOR_ATTEMPTS:-18}"
pause="${DOCTOR_PAUSE_SECONDS:-10}"

later() {
  echo "Run it yourself once the app answers:"
  echo "  curl -H \"Authorization: Bearer \$(az account get-access-token --resource ${api:-<API_APP_ID_URI>} --query accessToken -o tsv)\" \"${url:-https://<app>/api}/doctor?format=text\""
  echo "  (you need the API's Rotation.Read role: API_OPERATORS, or docs/deploy.md \"Who may call the API\")"
}

echo ""
echo "doctor: every prerequisite of a rotation, checked by the deployed app"
if [ -z "$url" ] || [ -z "$api" ]; then
  echo "  FUNCTION_URL or API_APP_ID_URI is not set (azd sets them after a provision)."
  later
  exit 0
fi
for tool in az curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "  $tool is needed to ask doctor."
    later
    exit 0
  fi
done

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
try=1
while :; do
  # A role granted a moment ago shows only in a token issued after it: ask for one each try.
  token="$(az account get-access-token --resource "$api" --query accessToken -o tsv 2>/dev/null)"
  code=""
  if [ -n "$token" ]; then
    code="$(curl -sS --max-time 200 -o "$tmp" -w '%{http_code}' \
      -H "Authorization: Bearer $token" "$url/doctor?format=text" 2>/dev/null)"
    if [ "$code" = 401 ] || [ "$code" = 403 ]; then
      echo "  doctor refused your sign-in (HTTP $code): your token carries no Rotation.Read role of the API."
      later
      exit 0
    fi
    # 200: every check ok; 503: some failed. Either way it is doctor's answer when its last
    # line is the count ("9 checks: 2 failed, 1 warnings"); the platform's own 503 while
    # the app starts is not.
    if { [ "$code" = 200 ] || [ "$code" = 503 ]; } && tail -n 1 "$tmp" | grep -Eq '^[0-9]+ checks: '; then
      sed 's/^/  /' "$tmp"
      if [ "$code" = 503 ]; then
        echo "The deployment succeeded; each failed check above has its fix. Run doctor again after fixing:"
        echo "  python -m rotation doctor, or GET $url/doctor?format=text"
      fi
      exit 0
    fi
  fi
  if [ "$try" -ge "$attempts" ]; then
    if [ -z "$token" ]; then
      echo "  No token for the API could be had (az account get-access-token --resource $api failed: sign in with az login, and hold one of its roles)."
    else
      echo "  doctor did not answer (last: HTTP ${code:-none})."
    fi
    later
    exit 0
  fi
  echo "  waiting for the app to start (try $try of $attempts) ..."
  sleep "$pause"
  try=$((try + 1))
done
