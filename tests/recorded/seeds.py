"""Seed steps of a recording: what the recorded session did that the product never does
(delete a secret, create an ACS resource, register an app), done on the sandbox's state.

Each returns the recorded ids it made sandbox objects for (recorded id -> sandbox id), so
that later requests naming the recorded ids reach the seeded objects; a step naming an id
an earlier step mapped receives the sandbox's id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sandbox.builtin_roles import CONTRIBUTOR
from sandbox.server import Sandbox
from sandbox.state import SecretVersion

Seed = Callable[[Sandbox, Mapping[str, Any]], dict[str, str]]


def run(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    return SEEDS[step["kind"]](sandbox, step)


def _soft_delete(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """A DELETE of the secret; a recording that polled the deletion takes `seconds`."""
    finishing = timedelta(seconds=step.get("seconds", 0))
    sandbox.state.soft_delete_secret(step["name"], finishing_in=finishing)
    return {}


def _wait(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """The time that passed between two recorded requests, on the sandbox's clock."""
    sandbox.state.clock.advance(timedelta(seconds=step["seconds"]))
    return {}


def _versions(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """`count` more versions of secret `name` (a recorded vault had that many)."""
    now = sandbox.state.clock.now()
    versions = sandbox.state.vault.setdefault(step["name"].lower(), [])
    days = step.get("expires_in_days")
    expires = None if days is None else now + timedelta(days=days)
    content_type, tags = step.get("content_type"), step.get("tags", {})
    for i in range(step["count"]):
        version = SecretVersion(
            step["name"], uuid.uuid4().hex, str(i), content_type, dict(tags), True, expires, None,
            now, now,
        )  # fmt: skip
        versions.append(version)
    return {}


def _secrets(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """`count` secrets besides the recorded ones (a recorded vault held that many)."""
    for i in range(step["count"]):
        _versions(sandbox, {"name": f"{step.get('prefix', 'seeded')}-{i:03d}", "count": 1})
    return {}


def _deleted(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """`count` soft-deleted secrets (a recorded vault had that many)."""
    for i in range(step["count"]):
        name = f"{step.get('prefix', 'deleted')}-{i:03d}"
        _versions(sandbox, {**step, "name": name, "count": 1})
        sandbox.state.soft_delete_secret(name)
    return {}


def _vault_pages(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """Key Vault's pages as the recording had them (sizes, empty ones included)."""
    sandbox.state.vault_page_sizes = tuple(step["sizes"])
    return {}


def _subscription(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """The recorded subscription ids stand for the sandbox's one."""
    return dict.fromkeys(step["ids"], sandbox.subscription_id)


def _acs_resource(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """The recorded ACS resource, in the sandbox's subscription (the recording created it
    with a PUT, a long-running operation the rotator never starts)."""
    sandbox.state.add_acs_resource(sandbox.subscription_id, step["resource_group"], step["name"])
    return _subscription(sandbox, step)


def _contributor(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """A service principal holding Contributor on the subscription, as the recording made
    (an app, its principal and a role assignment PUT, none of which the rotator writes)."""
    app = sandbox.state.add_application(sandbox.tenant_id, "recorded")
    sp = sandbox.state.add_service_principal(app)
    scope = f"/subscriptions/{sandbox.subscription_id}"
    sandbox.state.assign_role(scope, sp, CONTRIBUTOR.role_name)
    return {**_subscription(sandbox, step), step["principal"]: sp.object_id}


def _application(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """The recorded application (its appId kept) and its service principal, owned by the
    rotator (the recording created both with POSTs the rotator never makes)."""
    app = sandbox.state.add_application(sandbox.tenant_id, step["display_name"], step["app_id"])
    sp = sandbox.state.add_service_principal(app)
    app.owners.add(sandbox.rotator.principal_id)
    found = {step["object_id"]: app.object_id}
    if "sp_id" in step:
        found[step["sp_id"]] = sp.object_id
    return found


def _password(sandbox: Sandbox, step: Mapping[str, Any]) -> dict[str, str]:
    """A password of the recorded application, as an earlier addPassword made it."""
    app = sandbox.state.applications[step["object_id"]]  # mapped by the replay already
    credential = sandbox.state.add_password(app, display_name=step.get("display_name"))
    return {step["key_id"]: credential.key_id}


SEEDS: dict[str, Seed] = {
    "application": _application,
    "password": _password,
    "subscription": _subscription,
    "acs_resource": _acs_resource,
    "contributor": _contributor,
    "soft_delete": _soft_delete,
    "versions": _versions,
    "secrets": _secrets,
    "deleted": _deleted,
    "wait": _wait,
    "vault_pages": _vault_pages,
}
