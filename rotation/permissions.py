"""Every Azure RBAC action the rotator's code names, in one place.

Each is in Microsoft's published resource provider operations lists (vendored under
tests/operations/, checked by tests/infra/test_operations.py together with every action
infra/ grants), so a role built from these is one Azure Resource Manager accepts.
"""

from __future__ import annotations

#: What ACS asks of an SMTP sender's role on the ACS resource, as its current docs list it
#: ("Assign a role to a Microsoft Entra application for SMTP authentication", learn.microsoft.com
#: azure/communication-services/quickstarts/email/send-email-smtp/smtp-authentication, which
#: added CommunicationServices/Write to the two actions it named before: azure-docs PR
#: 286727). Discovery, doctor's sender-role check and the SMTP failure hint all read this.
COMMUNICATION_READ = "Microsoft.Communication/CommunicationServices/Read"
COMMUNICATION_WRITE = "Microsoft.Communication/CommunicationServices/Write"
EMAIL_WRITE = "Microsoft.Communication/EmailServices/write"
SENDER_ACTIONS = (COMMUNICATION_READ, COMMUNICATION_WRITE, EMAIL_WRITE)

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


def listed(actions: tuple[str, ...] = SENDER_ACTIONS) -> str:
    """Actions for a sentence: "A, B and C"."""
    return ", ".join(actions[:-1]) + " and " + actions[-1] if len(actions) > 1 else actions[0]


def short(action: str) -> str:
    """The last two segments of an action, as operators see it in a role: ``setSecret/action``."""
    return "/".join(action.split("/")[-2:])
