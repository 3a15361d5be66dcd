"""README's statements of what the identity can do beyond its work, read against the roles
infra assigns for each role choice (issue 27 item 6: README said it cannot delete a secret,
while with USE_CUSTOM_ROLES=false it holds Key Vault Secrets Officer, which can)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from sandbox import builtin_roles
from tests.infra import bicep

README = (bicep.ROOT / "README.md").read_text(encoding="utf-8")
ROLES = bicep.INFRA / "modules" / "custom-roles.bicep"
MAIN = bicep.MAIN.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Role:
    actions: tuple[str, ...]
    data_actions: tuple[str, ...] = ()


#: Key Vault Secrets Officer (b86a8fe4-44ce-4948-aee5-eccb2c155cd7) as Microsoft publishes it
#: (learn.microsoft.com/azure/role-based-access-control/built-in-roles/security).
SECRETS_OFFICER = Role(
    (
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Support/*",
        "Microsoft.KeyVault/checkNameAvailability/read",
        "Microsoft.KeyVault/deletedVaults/read",
        "Microsoft.KeyVault/locations/*/read",
        "Microsoft.KeyVault/vaults/*/read",
        "Microsoft.KeyVault/operations/read",
    ),
    ("Microsoft.KeyVault/vaults/secrets/*",),
)
CUSTOM = {
    "reader": Role(tuple(bicep.variable(ROLES, "readerActions"))),
    "definitionReader": Role(tuple(bicep.variable(ROLES, "definitionReaderActions"))),
    "vault": Role(
        tuple(bicep.variable(ROLES, "secretWriterActions")),
        tuple(bicep.variable(ROLES, "secretWriterDataActions")),
    ),
    "consumer": Role(tuple(bicep.variable(ROLES, "consumerCheckerActions"))),
}
BUILT_IN = {
    "reader": Role(builtin_roles.READER.actions),
    "definitionReader": Role(builtin_roles.READER.actions),
    "vault": SECRETS_OFFICER,
    "consumer": Role(builtin_roles.WEBSITE_CONTRIBUTOR.actions),
}
SECRET_REMOVALS = ("delete", "recover/action", "purge/action", "backup/action", "restore/action")
#: What each row of README's table asks, as the operations that would do it.
PROBES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "send email through ACS": (("Microsoft.Communication/EmailServices/write",), ()),
    "change a role assignment or role definition": (
        (
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/roleDefinitions/write",
        ),
        (),
    ),
    "delete, recover, purge, back up or restore a secret in the vault": (
        (),
        tuple(f"Microsoft.KeyVault/vaults/secrets/{operation}" for operation in SECRET_REMOVALS),
    ),
    "read resources other than ACS resources, role assignments and role definitions": (
        ("Microsoft.Compute/virtualMachines/read", "Microsoft.Storage/storageAccounts/read"),
        (),
    ),
    "change, restart or deploy a consumer site, or list its app settings": (
        (
            "Microsoft.Web/sites/write",
            "Microsoft.Web/sites/restart/action",
            "Microsoft.Web/sites/config/list/action",
        ),
        (),
    ),
}


def grants(patterns: tuple[str, ...], operation: str) -> bool:
    """Azure RBAC's match: `*` stands for any characters, case-insensitive."""
    return any(
        re.fullmatch(re.escape(p).replace(r"\*", ".*"), operation, re.IGNORECASE) for p in patterns
    )


def can(roles: dict[str, Role], row: str) -> bool:
    actions, data_actions = PROBES[row]
    return any(
        any(grants(role.actions, a) for a in actions)
        or any(grants(role.data_actions, d) for d in data_actions)
        for role in roles.values()
    )


def readme_table() -> dict[str, tuple[str, str]]:
    """README's "can the identity ..." rows: question -> (custom roles, built-in roles)."""
    block = README.split("| can the identity ... |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in block.splitlines()[2:]:
        question, custom, built_in = (c.strip() for c in line.strip("|").split(" | "))
        rows[re.sub(r" \(with `[A-Z_]+`\)$", "", question)] = (custom, built_in)
    return rows


def test_the_roles_here_are_the_ones_main_bicep_assigns_for_each_choice() -> None:
    for kind, custom, built_in in [
        ("reader", "readerGuid", "builtInReader"),
        ("definitionReader", "definitionReaderGuid", "builtInReader"),
        ("vault", "secretWriterGuid", "builtInKeyVaultSecretsOfficer"),
        ("consumer", "consumerCheckerGuid", "builtInWebsiteContributor"),
    ]:
        assert f"useCustomRoles ? customRoles.outputs.{custom} : {built_in}" in MAIN, kind
    assert "var builtInKeyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'" in MAIN
    assert f"var builtInReader = '{builtin_roles.READER.name}'" in MAIN
    assert f"var builtInWebsiteContributor = '{builtin_roles.WEBSITE_CONTRIBUTOR.name}'" in MAIN


def test_the_table_asks_each_question_once() -> None:
    assert set(readme_table()) == set(PROBES)


@pytest.mark.parametrize("row", sorted(PROBES))
def test_each_answer_is_what_the_roles_grant(row: str) -> None:
    custom, built_in = readme_table()[row]
    assert custom.split(":")[0] == ("yes" if can(CUSTOM, row) else "no"), row
    assert built_in.split(":")[0] == ("yes" if can(BUILT_IN, row) else "no"), row


def test_no_sentence_says_the_identity_cannot_delete_a_secret_for_both_choices() -> None:
    assert "or delete a\nsecret" not in README
    assert not re.search(r"identity cannot[^.|]*delete a\s+secret", README)
