"""Azure Resource Manager resource ids, read with azure.mgmt.core.tools, not by hand.

An id is well formed when azure.mgmt.core.tools takes it apart and puts it back together
unchanged (`is_valid_resource_id`); `parse_resource_id` then names its parts.
"""

from __future__ import annotations

from azure.mgmt.core import tools


def resource_parts(
    resource_id: str, kind: str | None = None, *, child: str | None = None
) -> dict[str, str] | None:
    """The parts of a resource's id (``subscription``, ``resource_group``, ``namespace``,
    ``type``, ``name``), or None when `resource_id` is not the id of a resource in a
    resource group.

    `kind` (``Namespace/type``, any case) asks for that type of resource. The id names the
    resource itself, or, with `child` (a child type such as ``slots``), one child of it.
    """
    if not tools.is_valid_resource_id(resource_id):
        return None
    parts = {key: str(value) for key, value in tools.parse_resource_id(resource_id).items()}
    if "resource_group" not in parts or "name" not in parts:
        return None
    if kind is not None and f"{parts['namespace']}/{parts['type']}".lower() != kind.lower():
        return None
    if parts.get("children") and not _one_child(parts, child):
        return None
    return parts


def _one_child(parts: dict[str, str], child: str | None) -> bool:
    """The id ends in one ``/<child>/<name>`` of the same provider."""
    return (
        child is not None
        and parts.get("last_child_num") == "1"
        and "child_namespace_1" not in parts
        and parts.get("child_type_1", "").lower() == child.lower()
    )


def system_topic_id(vault_resource_id: str) -> str:
    """The Event Grid system topic infra makes on the vault (infra/main.bicep:
    ``evgt-${vaultName}``), in the vault's resource group. The sandbox serves it here too."""
    group, _, vault = vault_resource_id.rstrip("/").partition("/providers/")
    name = vault.rsplit("/", 1)[-1]
    return f"{group}/providers/Microsoft.EventGrid/systemTopics/evgt-{name}"
