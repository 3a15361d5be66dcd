"""Every RBAC action infra/ grants and the code names is one Microsoft publishes.

Azure Resource Manager refuses a whole custom role for one action no provider registered
(400 InvalidActionOrNotAction), so `azd up` fails on it; nothing offline would notice. The
published operations lists are vendored under tests/operations/ (each names its source and
the date it was read); the sandbox's Resource Manager reads the same lists and refuses such
a role as Azure does (sandbox/operations.py).
"""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.authorization.models import Permission, RoleDefinition

import rotation
from rotation.azure.identity import build_credential
from rotation.azure.trust import connection_options
from rotation.settings import Settings
from sandbox import operations
from sandbox.server import Sandbox
from tests.infra import bicep

ROLES = bicep.INFRA / "modules" / "custom-roles.bicep"
#: An action string in the code: a namespace, a path, and a verb at its end.
ACTION = re.compile(r"^Microsoft\.\w+/[\w*/.]+/(read|write|delete|action)$", re.IGNORECASE)
#: The consumer checker as infra granted it before issue 22: two of its actions are named
#: in no published operations list (ARM would refuse the role, and `azd up` with it).
OLD_CONSUMER_CHECKER = [
    "Microsoft.Web/sites/read",
    "Microsoft.Web/sites/slots/read",
    "Microsoft.Web/sites/config/appsettings/read",
    "Microsoft.Web/sites/slots/config/appsettings/read",
    "Microsoft.Web/sites/config/connectionstrings/read",
    "Microsoft.Web/sites/slots/config/connectionstrings/read",
    "Microsoft.Web/sites/config/appsettings/action",
    "Microsoft.Web/sites/slots/config/appsettings/action",
]


def role_variables() -> dict[str, list[str]]:
    """Every `var <name>Actions` of the custom roles, by name."""
    variables = bicep.parse(ROLES)["variables"]
    return {n: v["value"] for n, v in variables.items() if n.lower().endswith("actions")}


def code_actions() -> dict[str, str]:
    """Every string constant in rotation/ that is an RBAC action -> where it is."""
    found: dict[str, str] = {}
    package = Path(rotation.__file__).parent
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and ACTION.match(text):
                found[text] = f"{path.relative_to(package)}:{node.lineno}"
    return found


def unknown(action: str, *, data: bool | None = None) -> str | None:
    """Azure's refusal of `action` in a role, or None; `data` None: either kind will do."""
    published = operations.published()
    if data is None:
        refusals = [published.refusal(action), published.refusal(action, data=True)]
        return None if None in refusals else refusals[0]
    return published.refusal(action, data=data)


def test_each_vendored_list_names_its_source_and_when_it_was_read() -> None:
    files = sorted(operations.DIRECTORY.glob("*.txt"))
    assert [f.stem for f in files] == [
        "microsoft.authorization",
        "microsoft.communication",
        "microsoft.keyvault",
        "microsoft.web",
    ]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert re.search(r"^# Source: .+https://learn\.microsoft\.com/\S+", text, re.M), path
        assert re.search(r"read \d{4}-\d{2}-\d{2}\.$", text, re.M), path
    published = operations.published()
    assert len(published.actions) > 100
    assert "microsoft.keyvault/vaults/secrets/setsecret/action" in published.data_actions


def test_every_action_infra_grants_is_published() -> None:
    refused = {
        f"{name}: {action}": refusal
        for name, actions in role_variables().items()
        for action in actions
        if (refusal := unknown(action, data=name.lower().endswith("dataactions")))
    }
    assert refused == {}
    assert set(role_variables()) >= {
        "readerActions",
        "definitionReaderActions",
        "consumerCheckerActions",
        "secretWriterActions",
        "secretWriterDataActions",
    }


def test_every_action_the_code_names_is_published() -> None:
    found = code_actions()
    refused = {f"{where}: {a}": r for a, where in found.items() if (r := unknown(a))}

    assert refused == {}
    assert "Microsoft.Communication/EmailServices/write" in found  # the scan sees them
    assert "Microsoft.KeyVault/vaults/secrets/setSecret/action" in found


@pytest.mark.parametrize(
    ("action", "refusal"),
    [
        ("Microsoft.Web/sites/config/appsettings/action", "does not match any of the actions"),
        ("Microsoft.Web/sites/config/connectionstrings/read", "does not match any"),
        ("Microsoft.Contoso/widgets/read", "resource provider referenced in the action"),
    ],
)
def test_an_unpublished_action_is_caught(action: str, refusal: str) -> None:
    assert refusal in (unknown(action) or "")


@pytest.mark.parametrize(
    "action",
    [
        "Microsoft.Communication/CommunicationServices/*/read",  # matches EventGridFilters/Read
        "*/read",
        "microsoft.web/sites/READ",  # ARM compares without case
    ],
)
def test_a_wildcard_or_a_case_variant_of_a_published_action_passes(action: str) -> None:
    assert unknown(action) is None


# ----- the sandbox's Resource Manager refuses such a role, as Azure does ----------------------


async def put_role(
    sandbox: Sandbox, settings: Settings, name: str, actions: list[str], data: list[str]
) -> RoleDefinition:
    """Creates a custom role at the subscription through azure-mgmt-authorization, as
    Bicep's deployment or `az role definition create` does."""
    credential = build_credential(settings)
    scope = f"/subscriptions/{sandbox.subscription_id}"
    client = AuthorizationManagementClient(
        credential,
        sandbox.subscription_id,
        base_url=settings.arm_endpoint,
        credential_scopes=[settings.arm_endpoint + "/.default"],
        retry_total=0,
        **connection_options(settings),
    )
    try:
        return await client.role_definitions.create_or_update(
            scope,
            str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            RoleDefinition(
                role_name=name,
                role_type="CustomRole",
                permissions=[Permission(actions=actions, data_actions=data)],
                assignable_scopes=[scope],
            ),
        )
    finally:
        await client.close()
        await credential.close()


@pytest.fixture
def deployer(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's identity as the one running `azd up`: Owner of the subscription."""
    for key, value in sandbox.env().items():
        if key.startswith("AZURE_"):
            monkeypatch.setenv(key, value)
    sandbox.state.assign_role(
        f"/subscriptions/{sandbox.subscription_id}", sandbox.rotator.sp, "Owner"
    )


@pytest.mark.usefixtures("deployer")
async def test_resource_manager_accepts_every_custom_role_infra_defines(
    sandbox: Sandbox, settings: Settings
) -> None:
    variables = role_variables()
    roles = {
        "reader": (variables["readerActions"], []),
        "definition reader": (variables["definitionReaderActions"], []),
        "consumer checker": (variables["consumerCheckerActions"], []),
        "secret writer": (variables["secretWriterActions"], variables["secretWriterDataActions"]),
    }

    made = [await put_role(sandbox, settings, n, a, d) for n, (a, d) in roles.items()]

    assert [r.role_name for r in made] == list(roles)


@pytest.mark.usefixtures("deployer")
async def test_resource_manager_refuses_a_role_with_an_unpublished_action_as_azure_does(
    sandbox: Sandbox, settings: Settings
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await put_role(sandbox, settings, "consumer checker (before)", OLD_CONSUMER_CHECKER, [])

    assert refused.value.status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "InvalidActionOrNotAction"
    assert (
        "'Microsoft.Web/sites/config/connectionstrings/read' does not match any of the actions "
        "supported by the providers." in str(refused.value)
    )
