"""Key Vault soft delete in the sandbox, driven by azure-keyvault-secrets' SecretClient.

A deleted secret keeps its name: writing it answers 409 Conflict with innererror
ObjectIsDeletedButRecoverable (or ObjectIsBeingDeleted while the deletion runs), the
deleted secret reads through GET /deletedsecrets/{name}, and recovering it brings every
version back. Sources are named in sandbox/vault_deleted.py and sandbox/vault_api.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from sandbox.server import Sandbox


def inner_code(exc: HttpResponseError) -> str | None:
    return str(exc.error.innererror.get("code")) if exc.error else None


async def test_setting_a_soft_deleted_name_is_409_deleted_but_recoverable(
    sandbox: Sandbox, secret_client: SecretClient
) -> None:
    await secret_client.set_secret("gone", "v1")
    sandbox.state.soft_delete_secret("gone")

    with pytest.raises(ResourceExistsError) as caught:
        await secret_client.set_secret("gone", "v2")
    with pytest.raises(ResourceNotFoundError):
        await secret_client.get_secret("gone")

    assert caught.value.status_code == 409
    assert caught.value.error is not None
    assert caught.value.error.code == "Conflict"
    assert inner_code(caught.value) == "ObjectIsDeletedButRecoverable"
    assert "deleted but recoverable state" in str(caught.value)
    assert [p async for p in secret_client.list_properties_of_secret_versions("gone")] == []


async def test_while_the_deletion_runs_the_name_is_being_deleted_and_not_yet_readable(
    sandbox: Sandbox, secret_client: SecretClient
) -> None:
    await secret_client.set_secret("going", "v1")
    sandbox.state.soft_delete_secret("going", finishing_in=timedelta(seconds=30))

    with pytest.raises(ResourceExistsError) as writing:
        await secret_client.set_secret("going", "v2")
    with pytest.raises(ResourceNotFoundError) as reading:
        await secret_client.get_deleted_secret("going")
    sandbox.state.clock.advance(timedelta(seconds=31))
    deleted = await secret_client.get_deleted_secret("going")

    assert inner_code(writing.value) == "ObjectIsBeingDeleted"
    assert "currently being deleted and cannot be re-created" in str(writing.value)
    assert "Deleted Secret not found: going" in str(reading.value)
    assert deleted.name == "going"


async def test_a_deleted_secret_reads_with_its_dates_and_tags(
    sandbox: Sandbox, secret_client: SecretClient
) -> None:
    await secret_client.set_secret(
        "old", "value-never-shown", tags={"app-id": "a"}, content_type="t"
    )
    record = sandbox.state.soft_delete_secret("old")

    deleted = await secret_client.get_deleted_secret("old")

    assert deleted.recovery_id == f"{sandbox.vault_url}/deletedsecrets/old"
    assert deleted.deleted_date is not None
    assert int(deleted.deleted_date.timestamp()) == int(record.deleted.timestamp())
    assert deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    assert deleted.properties.tags == {"app-id": "a"}
    assert deleted.properties.content_type == "t"
    with pytest.raises(ResourceNotFoundError, match="Deleted Secret not found: never"):
        await secret_client.get_deleted_secret("never")


async def test_reading_a_deleted_secret_needs_get_and_list(
    sandbox: Sandbox, secret_client: SecretClient
) -> None:
    sandbox.state.soft_delete_secret("old")
    rotator = sandbox.rotator.client_id.lower()

    for only in ("get", "list"):
        sandbox.state.vault_permissions[rotator] = frozenset({only, "set", "update"})
        with pytest.raises(HttpResponseError) as caught:
            await secret_client.get_deleted_secret("old")
        assert caught.value.status_code == 403
    sandbox.state.vault_permissions[rotator] = frozenset({"get", "list", "set", "update"})
    assert (await secret_client.get_deleted_secret("old")).name == "old"


async def test_recover_brings_every_version_back_and_frees_the_name(
    sandbox: Sandbox, secret_client: SecretClient
) -> None:
    await secret_client.set_secret("back", "v1")
    await secret_client.set_secret("back", "v2")
    sandbox.state.soft_delete_secret("back")

    await secret_client.recover_deleted_secret("back")
    await secret_client.set_secret("back", "v3")

    versions = [p async for p in secret_client.list_properties_of_secret_versions("back")]
    assert len(versions) == 3
    assert (await secret_client.get_secret("back")).value == "v3"
    with pytest.raises(ResourceNotFoundError):
        await secret_client.get_deleted_secret("back")


async def test_recover_needs_the_recover_permission_which_the_rotator_lacks(
    sandbox: Sandbox, secret_client: SecretClient
) -> None:
    sandbox.state.soft_delete_secret("old")
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset(
        {"get", "list", "set", "update"}
    )

    with pytest.raises(HttpResponseError) as caught:
        await secret_client.recover_deleted_secret("old")

    assert caught.value.status_code == 403
    assert "recover/action" in str(caught.value)


async def test_deleted_secrets_list_in_pages_of_25_once_their_deletion_finished(
    sandbox: Sandbox, secret_client: SecretClient
) -> None:
    for number in range(30):
        sandbox.state.soft_delete_secret(f"gone-{number:02}")
    sandbox.state.soft_delete_secret("going", finishing_in=timedelta(minutes=1))

    listed = [d async for d in secret_client.list_deleted_secrets()]

    assert sorted(d.name for d in listed) == [f"gone-{n:02}" for n in range(30)]
    # The client's first request meets the bearer challenge, then two pages (25 + 5).
    assert sandbox.state.requests["vault GET /deletedsecrets"] == 3
    assert all(d.recovery_id == f"{sandbox.vault_url}/deletedsecrets/{d.name}" for d in listed)
    assert all(d.properties.tags is None for d in listed)  # none were set
