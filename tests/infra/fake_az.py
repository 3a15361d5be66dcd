"""A stand-in for the Azure CLI, for testing infra/scripts/*.sh without Azure.

It answers only the `az` commands those scripts run, from a JSON world file named by
$FAKE_AZ_WORLD, applies their writes to that file, and appends each command line to
$FAKE_AZ_WORLD.log. Azure itself is unreachable here; the scripts' own logic (idempotence,
discovery, exit codes) is what the tests exercise.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def main(args: list[str]) -> int:
    path = Path(os.environ["FAKE_AZ_WORLD"])
    world: dict[str, Any] = json.loads(path.read_text())
    with path.with_suffix(".log").open("a") as log:
        log.write(" ".join(args) + "\n")
    owners: dict[str, list[str]] = world["owners"]  # app id -> owner object ids
    words = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    command = " ".join(words)

    if command == "account show":
        if world.get("signed_out"):
            print("ERROR: Please run 'az login' to setup account.", file=sys.stderr)
            return 1
        print(world["default_subscription"])
    elif command == "provider show":
        providers: dict[str, str] = world.get("providers", {})
        print(providers.get(option(args, "--namespace"), "NotRegistered"))
    elif command == "cloud show":
        print("https://graph.example.test/")
    elif command == "resource list":
        for resource in world["resources"].get(option(args, "--subscription"), []):
            print(resource)
    elif command == "ad sp show":
        print(world["graph_sp"] if option(args, "--id") == GRAPH_APP_ID else "")
    elif command == "ad app show":
        if option(args, "--id") not in owners:
            print("ERROR: Resource does not exist", file=sys.stderr)
            return 3
        print("object-" + option(args, "--id"))
    elif command == "ad app owner list":
        wanted = re.search(r"id=='([^']+)'", option(args, "--query"))
        print(sum(1 for o in owners[option(args, "--id")] if wanted and o == wanted[1]))
    elif command == "ad app owner add":
        app = option(args, "--id")
        if app in world.get("not_mine", []):
            print("ERROR: Insufficient privileges to complete the operation.", file=sys.stderr)
            return 1
        owners[app].append(option(args, "--owner-object-id"))
    elif command == "account get-access-token":
        # A token for the API (postdeploy.sh); none until `token_after` requests have failed.
        token_after = world.get("token_after", 0)
        world["tokens_asked"] = world.get("tokens_asked", 0) + 1
        path.write_text(json.dumps(world))
        if world["tokens_asked"] <= token_after or "access_token" not in world:
            print("ERROR: AADSTS50105: not assigned to a role for the application", file=sys.stderr)
            return 1
        assert option(args, "--query") == "accessToken"
        assert option(args, "--resource") == world.get("api", option(args, "--resource"))
        print(world["access_token"])
        return 0
    elif command == "functionapp keys list":
        # The host writes its keys when it first starts: until then there are none.
        keys_after = world.get("keys_after", 0)  # how many lists fail before the key shows
        world["keys_listed"] = world.get("keys_listed", 0) + 1
        path.write_text(json.dumps(world))
        if world["keys_listed"] <= keys_after or "function_key" not in world:
            print("ERROR: Operation returned an invalid status 'Not Found'", file=sys.stderr)
            return 1
        assert option(args, "--query") == "functionKeys.default"
        print(world["function_key"])
        return 0
    elif command == "rest":
        return rest(args, world)
    else:
        print(f"fake az: unsupported command {args}", file=sys.stderr)
        return 2
    path.write_text(json.dumps(world))
    return 0


def rest(args: list[str], world: dict[str, Any]) -> int:
    url, method = option(args, "--url"), option(args, "--method")
    path = Path(os.environ["FAKE_AZ_WORLD"])
    if "/smtpUsernames?" in url:
        for app in world["smtp_usernames"].get(url.split("/smtpUsernames?")[0], []):
            print(app)
    elif url.endswith("/appRoleAssignments") and method == "get":
        wanted = re.search(
            r"appRoleId=='([^']+)' && resourceId=='([^']+)'", option(args, "--query")
        )
        assert wanted
        print(
            sum(
                1
                for a in world["app_roles"]
                if (a["appRoleId"], a["resourceId"]) == wanted.groups()
            )
        )
    elif url.endswith("/appRoleAssignments") and method == "post":
        world["app_roles"].append(json.loads(option(args, "--body")))
        path.write_text(json.dumps(world))
    else:
        print(f"fake az: unsupported url {url}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
