"""EntraAdapter against the sandbox: real msgraph-sdk, real azure-identity, real HTTPS.

The adapter is built exactly as the service builds it (EntraAdapter.from_settings with the
product's DefaultAzureCredential reading AZURE_* from the environment).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential

from rotation.azure.entra import IN_BATCH, EntraAdapter
from rotation.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RotationError,
    ServiceUnavailable,
)
from rotation.model import AppRecord
from rotation.settings import Settings, load_settings
from sandbox.app_policies import PasswordRestriction, new_policy
from sandbox.server import Sandbox

LIST_APPS = "graph GET /applications"
LIST_SPS = "graph GET /servicePrincipals"
ADD_PASSWORD = "graph POST /applications/{id}/addPassword"
REMOVE_PASSWORD = "graph POST /applications/{id}/removePassword"

Open = Callable[..., EntraAdapter]


async def app_ids_of(entra: EntraAdapter, object_ids: list[str]) -> dict[str, str]:
    """Service principal object id -> app id, from `service_principals` (what discovery reads)."""
    return {
        oid: found.app_id for oid, found in (await entra.service_principals(object_ids)).items()
    }


@pytest.fixture
async def open_adapter(settings: Settings, credential: AsyncTokenCredential) -> AsyncIterator[Open]:
    adapters: list[EntraAdapter] = []

    def make(**options: object) -> EntraAdapter:
        adapter = EntraAdapter.from_settings(settings, credential, **options)  # type: ignore[arg-type]
        adapters.append(adapter)
        return adapter

    yield make
    for adapter in adapters:
        await adapter.close()


@pytest.fixture
def entra(open_adapter: Open) -> EntraAdapter:
    return open_adapter()


async def _record(entra: EntraAdapter, app_id: str) -> AppRecord:
    return (await entra.read_apps([app_id]))[app_id.lower()]


def _assert_no_secret(sandbox: Sandbox, error: BaseException) -> None:
    text = str(error)
    for secret in sandbox.state.issued_secrets:
        assert secret not in text


# ----- read_apps --------------------------------------------------------------------------------


async def test_read_apps_maps_graph_applications_to_records(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender(name="billing")
    records = await entra.read_apps([sender.app_id.upper()])
    record = records[sender.app_id]
    assert record.object_id == sender.app.object_id
    assert record.display_name == "billing"
    (credential,) = record.credentials
    assert credential.key_id == sender.password.key_id
    assert credential.display_name == "initial secret"
    assert credential.hint == sender.client_secret[:3]
    assert credential.end == sender.password.end


async def test_read_apps_batches_15_ids_per_request_and_omits_missing_apps(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    senders = [sandbox.add_sender() for _ in range(IN_BATCH + 2)]
    missing = str(uuid.uuid4())
    records = await entra.read_apps([s.app_id for s in senders] + [missing])
    assert set(records) == {s.app_id for s in senders}
    assert sandbox.state.requests[LIST_APPS] == 2


async def test_read_apps_lists_everything_with_paging_when_asked_for_many(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    state = sandbox.state
    apps = [state.add_application(sandbox.tenant_id, f"bulk-{i}") for i in range(1000)]
    wanted = [a.app_id for a in apps[:200]]
    records = await entra.read_apps(wanted)
    assert set(records) == set(wanted)
    assert state.requests[LIST_APPS] == 2  # 1001 applications, 999 per page


async def test_read_apps_of_nothing_asks_nothing(sandbox: Sandbox, entra: EntraAdapter) -> None:
    assert await entra.read_apps([]) == {}
    assert sandbox.state.requests[LIST_APPS] == 0


async def test_read_apps_survives_a_dropped_connection(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.faults.inject(LIST_APPS, drop=True, times=1)
    assert sender.app_id in await entra.read_apps([sender.app_id])
    assert sandbox.state.requests[LIST_APPS] == 2


async def test_read_apps_without_any_graph_permission_is_permission_denied(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sandbox.rotator.sp.graph_roles.clear()
    with pytest.raises(PermissionDenied) as caught:
        await entra.read_apps([str(uuid.uuid4())])
    assert "Application.ReadWrite.OwnedBy" in str(caught.value)


async def test_a_wrong_rotator_secret_is_permission_denied_without_the_secret(
    sandbox: Sandbox, settings: Settings
) -> None:
    wrong = ClientSecretCredential(
        sandbox.tenant_id,
        sandbox.rotator.client_id,
        "Zz8Q~not-the-secret",
        authority=sandbox.login_url,
        connection_verify=str(sandbox.ca_path),
    )
    adapter = EntraAdapter.from_settings(settings, wrong)
    try:
        with pytest.raises(PermissionDenied) as caught:
            await adapter.read_apps([str(uuid.uuid4())])
    finally:
        await adapter.close()
        await wrong.close()
    assert "failed to get a token for Microsoft Graph" in str(caught.value)
    assert "Zz8Q~not-the-secret" not in str(caught.value)


async def test_an_unreachable_graph_is_service_unavailable(
    sandbox: Sandbox, credential: AsyncTokenCredential
) -> None:
    sandbox.state.add_resource("https://127.0.0.1:9", "graph")  # known to Entra, not served
    settings = load_settings(sandbox.env(graph_url="https://127.0.0.1:9"))
    adapter = EntraAdapter.from_settings(settings, credential)
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await adapter.read_apps([str(uuid.uuid4())])
    finally:
        await adapter.close()
    assert "ROTATION_GRAPH_URL" in str(caught.value)


async def test_a_graph_url_entra_does_not_know_names_the_setting_and_aadsts500011(
    sandbox: Sandbox, credential: AsyncTokenCredential
) -> None:
    settings = load_settings(sandbox.env(graph_url="https://graph.example.invalid"))
    adapter = EntraAdapter.from_settings(settings, credential)
    try:
        with pytest.raises(InvalidRequest) as caught:
            await adapter.read_apps([str(uuid.uuid4())])
    finally:
        await adapter.close()
    assert str(caught.value) == (
        "could not read applications: Entra knows no resource https://graph.example.invalid "
        "(AADSTS500011: invalid_resource): check ROTATION_GRAPH_URL and ROTATION_CLOUD"
    )


# ----- add_password ---------------------------------------------------------------------------


async def test_add_password_returns_a_secret_that_entra_accepts(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    end = sandbox.state.clock.now() + timedelta(days=180)
    new = await entra.add_password(record, "acs-smtp-rotation 2026-01-01T00:00:00Z", end)
    stored = sender.app.passwords[-1]
    assert new.credential.key_id == stored.key_id
    assert new.credential.display_name == "acs-smtp-rotation 2026-01-01T00:00:00Z"
    assert new.credential.made_by_us
    assert new.credential.end is not None
    assert abs((new.credential.end - end).total_seconds()) < 1
    assert "*" in repr(new.value)  # SecretStr never prints the value
    app, reason = sandbox.state.check_client_secret(
        sandbox.tenant_id, sender.app_id, new.value.get_secret_value()
    )
    assert app is sender.app, reason


async def test_add_password_on_an_app_not_owned_explains_how_to_grant(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender(owned=False)
    record = await _record(entra, sender.app_id)
    with pytest.raises(PermissionDenied) as caught:
        await entra.add_password(record, "x", sandbox.state.clock.now() + timedelta(days=1))
    message = str(caught.value)
    assert f"az ad app owner add --id {sender.app_id}" in message
    assert "Application.ReadWrite.All" in message
    assert "Authorization_RequestDenied" in message
    _assert_no_secret(sandbox, caught.value)


async def test_add_password_over_the_lifetime_policy_is_invalid_request() -> None:
    async with Sandbox(max_secret_lifetime=timedelta(days=90)) as sandbox:
        settings = load_settings(sandbox.env())
        credential = ClientSecretCredential(
            sandbox.tenant_id,
            sandbox.rotator.client_id,
            sandbox.rotator.client_secret,
            authority=sandbox.login_url,
            connection_verify=str(sandbox.ca_path),
        )
        entra = EntraAdapter.from_settings(settings, credential)
        try:
            sender = sandbox.add_sender()
            record = await _record(entra, sender.app_id)
            end = sandbox.state.clock.now() + timedelta(days=180)
            with pytest.raises(InvalidRequest) as caught:
                await entra.add_password(record, "too long", end)
        finally:
            await entra.close()
            await credential.close()
    assert "ROTATION_SECRET_LIFETIME_DAYS" in str(caught.value)


async def test_add_password_is_retried_by_the_sdk_after_429(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    sandbox.state.faults.inject(ADD_PASSWORD, status=429, retry_after=1, times=1)
    new = await entra.add_password(record, "x", sandbox.state.clock.now() + timedelta(days=9))
    assert new.credential.key_id == sender.app.passwords[-1].key_id
    assert sandbox.state.requests[ADD_PASSWORD] == 2


async def test_persistent_throttling_is_service_unavailable(
    sandbox: Sandbox, open_adapter: Open
) -> None:
    entra = open_adapter(max_retries=1)
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    sandbox.state.faults.inject(ADD_PASSWORD, status=429, retry_after=1)
    with pytest.raises(ServiceUnavailable) as caught:
        await entra.add_password(record, "x", sandbox.state.clock.now() + timedelta(days=9))
    assert "429" in str(caught.value)
    assert sandbox.state.requests[ADD_PASSWORD] == 2
    assert len(sender.app.passwords) == 1


@pytest.mark.parametrize("status", [503, 504])
async def test_add_password_is_sent_once_even_when_graph_times_out_after_creating_it(
    sandbox: Sandbox, entra: EntraAdapter, status: int
) -> None:
    """kiota's RetryHandler would resend the POST on 503/504 and add a second secret."""
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    sandbox.state.faults.inject(ADD_PASSWORD, status=status, times=1, after=True)
    with pytest.raises(ServiceUnavailable) as caught:
        await entra.add_password(record, "x", sandbox.state.clock.now() + timedelta(days=9))
    assert str(status) in str(caught.value)
    assert sandbox.state.requests[ADD_PASSWORD] == 1
    assert len(sender.app.passwords) == 2  # created, but nobody heard its text
    _assert_no_secret(sandbox, caught.value)


@pytest.mark.slow
async def test_reads_are_still_retried_by_the_sdk_after_503(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.faults.inject(LIST_APPS, status=503, retry_after=0, times=1)
    assert sender.app_id in await entra.read_apps([sender.app_id])
    assert sandbox.state.requests[LIST_APPS] == 2


async def test_an_unretried_5xx_is_service_unavailable(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    sandbox.state.faults.inject(ADD_PASSWORD, status=500, times=1)
    with pytest.raises(ServiceUnavailable):
        await entra.add_password(record, "x", sandbox.state.clock.now() + timedelta(days=9))


# ----- remove_password --------------------------------------------------------------------------


async def test_remove_password_is_idempotent(sandbox: Sandbox, entra: EntraAdapter) -> None:
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    assert await entra.remove_password(record, sender.password.key_id) is True
    assert sender.app.passwords == []
    assert await entra.remove_password(record, sender.password.key_id) is False


@pytest.mark.parametrize("status", [400, 404])
async def test_remove_password_refused_for_a_key_already_gone_is_false_whatever_the_wording(
    sandbox: Sandbox, entra: EntraAdapter, status: int
) -> None:
    """Graph documents no body for an unknown keyId: the adapter re-reads the app."""
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    sender.app.passwords.clear()  # someone else removed it meanwhile
    sandbox.state.faults.inject(REMOVE_PASSWORD, status=status, times=1)
    assert await entra.remove_password(record, sender.password.key_id) is False
    assert sandbox.state.requests[LIST_APPS] == 2  # the first read, then the re-read


@pytest.mark.parametrize(("status", "error"), [(400, InvalidRequest), (404, NotFound)])
async def test_remove_password_refused_while_the_key_is_still_there_is_an_error(
    sandbox: Sandbox, entra: EntraAdapter, status: int, error: type[RotationError]
) -> None:
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    sandbox.state.faults.inject(REMOVE_PASSWORD, status=status, times=1)
    with pytest.raises(error):
        await entra.remove_password(record, sender.password.key_id)
    assert len(sender.app.passwords) == 1


async def test_remove_password_of_a_deleted_app_is_not_found(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    del sandbox.state.applications[sender.app.object_id]
    with pytest.raises(NotFound):
        await entra.remove_password(record, sender.password.key_id)


async def test_remove_password_on_an_app_not_owned_is_permission_denied(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender(owned=False)
    record = await _record(entra, sender.app_id)
    with pytest.raises(PermissionDenied) as caught:
        await entra.remove_password(record, sender.password.key_id)
    assert sender.app_id in str(caught.value)
    assert len(sender.app.passwords) == 1


async def test_remove_password_survives_a_dropped_connection(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    record = await _record(entra, sender.app_id)
    sandbox.state.faults.inject(REMOVE_PASSWORD, drop=True, times=1)
    assert await entra.remove_password(record, sender.password.key_id) is True
    assert sender.app.passwords == []


# ----- service principals --------------------------------------------------------------------


async def test_service_principal_app_ids_in_batches(sandbox: Sandbox, entra: EntraAdapter) -> None:
    senders = [sandbox.add_sender() for _ in range(IN_BATCH + 1)]
    missing = str(uuid.uuid4())
    mapping = await app_ids_of(entra, [s.principal_id.upper() for s in senders] + [missing])
    assert mapping == {s.principal_id: s.app_id for s in senders}
    assert sandbox.state.requests[LIST_SPS] == 2


async def test_errors_are_rotation_errors_and_never_carry_secrets(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sandbox.state.faults.inject("graph *", status=400)
    with pytest.raises(RotationError) as caught:
        await app_ids_of(entra, [str(uuid.uuid4())])
    assert isinstance(caught.value, InvalidRequest)
    _assert_no_secret(sandbox, caught.value)


# ----- app-management policies ------------------------------------------------------------


async def test_password_policies_read_the_default_each_restrictive_policy_and_its_apps(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sender = sandbox.add_sender()
    other = sandbox.add_sender()
    default = sandbox.state.tenants[sandbox.tenant_id]
    default.enabled = True
    since = sandbox.state.clock.now() - timedelta(days=3)
    default.passwords = [PasswordRestriction("passwordLifetime", timedelta(days=90), since)]
    mine = new_policy("mine", PasswordRestriction("passwordAddition", state="disabled"))
    sandbox.state.assign_policy(sender.app, mine)
    sandbox.state.app_policies["idle"] = new_policy("idle", enabled=False)

    found = await entra.password_policies()
    record = await _record(entra, other.app_id)

    assert found.unread is None
    assert found.assignments_known
    assert found.default is not None
    assert found.default.enabled
    (cap,) = found.default.passwords
    assert (cap.kind, cap.max_lifetime) == ("passwordLifetime", timedelta(days=90))
    assert cap.applies_from == since.replace(microsecond=0)
    assert set(found.assigned) == {sender.app.object_id.lower()}
    assert found.assigned[sender.app.object_id.lower()].passwords[0].enabled is False
    assert record.created is not None
    assert abs(record.created - other.app.created) < timedelta(milliseconds=1)
    assert sandbox.state.requests["graph GET /policies/appManagementPolicies/{id}/appliesTo"] == 1


async def test_password_policies_that_graph_refuses_are_named_not_raised(
    sandbox: Sandbox, entra: EntraAdapter
) -> None:
    sandbox.rotator.sp.graph_roles.discard("Policy.Read.All")

    found = await entra.password_policies()

    assert found.default is None
    assert not found.assignments_known
    assert found.unread is not None
    assert "403" in found.unread
    assert "Policy.Read.All and Application.Read.All" in found.unread
