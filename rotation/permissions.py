"""Every Azure RBAC action the rotator's code names, in one place.

Each is in Microsoft's published resource provider operations lists (vendored under
tests/operations/, checked by tests/infra/test_operations.py together with every action
infra/ grants), so a role built from these is one Azure Resource Manager accepts.
"""

from __future__ import annotations

#: The Key Vault data actions the rotator performs, the custom *secret writer* role's
#: dataActions exactly (infra/modules/custom-roles.bicep): read the current password and a
#: deleted name (getSecret), list the vault and read versions' tags and dates
#: (readMetadata), promote a verified password (setSecret), disable retired versions and
#: tag finished rotations (update).
VAULT_GET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
VAULT_READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
VAULT_SET = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
VAULT_UPDATE = "Microsoft.KeyVault/vaults/secrets/update/action"
VAULT_DATA_ACTIONS = (VAULT_GET, VAULT_READ_METADATA, VAULT_SET, VAULT_UPDATE)


def short(action: str) -> str:
    """The last two segments of an action, as operators see it in a role: ``setSecret/action``."""
    return "/".join(action.split("/")[-2:])
