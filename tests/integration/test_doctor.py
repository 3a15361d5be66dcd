"""`doctor` against the sandbox: each check passes on a healthy setup and fails, with its fix
command, when the prerequisite it checks is broken. Doctor never writes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from demo.walkthrough import write_secret
from rotation import doctor
from rotation.doctor import Check, Site, events
from rotation.model import Mode, Outcome, RunOptions
from rotation.permissions import (
    COMMUNICATION_READ,
    COMMUNICATION_WRITE,
    EMAIL_WRITE,
    SENDER_ACTIONS,
    listed,
)
from rotation.service import RotationService
from rotation.settings import load_settings
from sandbox.app_policies import PasswordRestriction, new_policy
from sandbox.server import Sandbox, unreachable_vault_url
from sandbox.state import (
    GRAPH_POLICY_READ_ALL,
    GRAPH_READ_WRITE_ALL,
    SMTP_REQUIRED_ACTIONS,
    SandboxState,
)
from sandbox.web_api import REFS

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def writes(state: SandboxState) -> int:
    """Writes to Graph, Key Vault and ARM, but for a consumer site's Key Vault reference
    refresh, which doctor tries (it changes nothing but when the site re-reads)."""
    return sum(
        n
        for key, n in state.requests.items()
        if key.split()[0] in ("graph", "vault", "arm")
        and key.split()[1] in WRITE_METHODS
        and not key.endswith(REFS + "/refresh")
    )


async def diagnose(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **overrides: object
) -> dict[str, Check]:
    env = sandbox.env(**overrides)
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # DefaultAzureCredential reads AZURE_* here
    checks = await doctor.diagnose(load_settings(env), Site())
    assert writes(sandbox.state) == 0  # a check never writes
    return {c.name: c for c in checks}


def failed(checks: dict[str, Check]) -> list[str]:
    return [name for name, c in checks.items() if c.status == "fail"]


async def test_a_healthy_setup_passes_every_check(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    role_sender = sandbox.add_sender()
    named_sender = sandbox.add_sender(via="smtp-username")
    sandbox.state.add_password(named_sender.app)
    sandbox.add_api_user()  # an operator of the HTTP API, holding its three roles

    checks = await diagnose(sandbox, monkeypatch)

    assert failed(checks) == []
    assert doctor.ok(list(checks.values()))
    assert [c.name for c in checks.values() if c.status == "warn"] == []
    assert "Application.ReadWrite.OwnedBy" in checks["graph roles"].detail
    acs = checks[f"acs {sandbox.default_resource.name}"].detail
    assert named_sender.username in acs
    assert role_sender.app_id in acs
    assert named_sender.app_id in acs
    assert "Contributor" in checks[f"sender role {role_sender.app_id}"].detail
    assert "absent" in checks[f"vault {role_sender.app_id}"].detail
    smtp = checks["smtp"].detail
    assert "STARTTLS TLSv1." in smtp
    assert "AUTH" in smtp
    assert "(not tried)" in smtp
    assert checks["vault access"].status == "ok"


async def test_missing_graph_role_fails_naming_the_grant_script_and_the_delay(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.rotator.sp.graph_roles.clear()

    checks = await diagnose(sandbox, monkeypatch)

    roles = checks["graph roles"]
    assert roles.status == "fail"
    assert "hours" in roles.detail
    assert roles.fix == (
        f"infra/scripts/grant-graph-permission.sh --principal-id {sandbox.rotator.principal_id}"
    )


async def test_application_read_write_all_makes_ownership_unnecessary(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.rotator.sp.graph_roles = {GRAPH_READ_WRITE_ALL}
    stranger = sandbox.add_sender(owned=False)

    checks = await diagnose(sandbox, monkeypatch)

    assert checks[f"owner {stranger.app_id}"].status == "ok"


async def test_sender_without_an_smtp_role_fails_with_the_role_assignment_command(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender(via="smtp-username", role=None)

    checks = await diagnose(sandbox, monkeypatch)

    role = checks[f"sender role {sender.app_id}"]
    assert role.status == "fail"
    assert role.fix == (
        f"az role assignment create --assignee {sender.app_id} --role "
        f'"Communication and Email Service Owner" --scope {sandbox.default_resource.id}'
    )


async def test_a_sending_role_short_of_what_acs_asks_is_named_with_what_it_lacks(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = sandbox.state.add_role_definition(
        "ACS SMTP sender (2023 docs)", [COMMUNICATION_READ, EMAIL_WRITE]
    )
    sender = sandbox.add_sender(role=older)

    checks = await diagnose(sandbox, monkeypatch)

    role = checks[f"sender role {sender.app_id}"]
    assert role.status == "fail"
    assert role.detail.startswith(
        f"ACS SMTP sender (2023 docs) on {sandbox.default_resource.name} lacks {COMMUNICATION_WRITE}"
    )
    assert listed(SENDER_ACTIONS) in role.detail
    assert role.fix is not None
    assert '"Communication and Email Service Owner"' in role.fix


def test_the_sandbox_asks_an_smtp_sender_for_the_actions_the_rotator_checks() -> None:
    assert tuple(SMTP_REQUIRED_ACTIONS) == SENDER_ACTIONS


async def test_unreadable_acs_subscription_fails_with_the_reader_assignment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_sender()
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != sandbox.rotator.principal_id
    ]

    checks = await diagnose(sandbox, monkeypatch)

    assert checks["acs"].status == "fail"
    assert "AuthorizationFailed" in checks["acs"].detail
    assert checks["acs"].fix == (
        f'az role assignment create --assignee {sandbox.rotator.principal_id} --role "Reader" '
        f"--scope /subscriptions/{sandbox.subscription_id}"
    )
    # Without Reader, ARM will not say what the identity may do at the vault either.
    assert checks["vault access"].status == "warn"
    assert "checked at first write" in checks["vault access"].detail


async def test_vault_without_write_permission_fails_without_writing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"get", "list"})

    checks = await diagnose(sandbox, monkeypatch)

    write = checks["vault access"]
    assert write.status == "fail"
    assert "setSecret/action" in write.detail
    assert "update/action" in write.detail
    assert write.fix == (
        f"az role assignment create --assignee {sandbox.rotator.principal_id} --role "
        f'"Key Vault Secrets Officer" --scope {sandbox.state.vault_resource_id}'
    )
    assert checks[f"vault {sender.app_id}"].status == "ok"  # reading still works


async def test_vault_read_refused_fails_per_app(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"set"})

    checks = await diagnose(sandbox, monkeypatch)

    assert checks[f"vault {sender.app_id}"].status == "fail"
    assert "403" in checks[f"vault {sender.app_id}"].detail


async def test_without_the_vault_resource_id_write_is_checked_at_first_write(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = await diagnose(sandbox, monkeypatch, key_vault_resource_id=None)

    write = checks["vault access"]
    assert (write.status, write.detail) == (
        "warn",
        "checked at first write (ROTATION_KEY_VAULT_RESOURCE_ID is not set)",
    )
    assert write.fix == "export ROTATION_KEY_VAULT_RESOURCE_ID=<value>"


async def test_wrong_graph_endpoint_fails_the_token_with_aadsts500011(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = await diagnose(sandbox, monkeypatch, graph_url="https://graph.example.invalid")

    token = checks["token graph"]
    assert token.status == "fail"
    assert "AADSTS500011" in token.detail
    assert "ROTATION_GRAPH_URL" in (token.fix or "")
    assert checks["token arm"].status == "ok"


@pytest.mark.slow
async def test_unreachable_vault_and_smtp_fail_with_their_fixes(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    checks = await diagnose(
        sandbox,
        monkeypatch,
        key_vault_url=unreachable_vault_url(),
        smtp_host="nonexistent.invalid",
    )

    assert checks[f"vault {sender.app_id}"].status == "fail"
    assert "could not reach Key Vault" in checks[f"vault {sender.app_id}"].detail
    assert checks["smtp"].status == "fail"
    assert "cannot resolve" in checks["smtp"].detail
    assert (checks["smtp"].fix or "").startswith("openssl s_client -starttls smtp -connect ")


def test_site_names_the_function_app_in_azure() -> None:
    site = Site.from_environment({"WEBSITE_SITE_NAME": "func-a", "WEBSITE_RESOURCE_GROUP": "rg-a"})

    by_hand = "az functionapp config appsettings set -g rg-a -n func-a --settings "
    at_once = "; or at once, until the next provision: " + by_hand
    assert site.set_setting(["ROTATION_GRACE_HOURS"]) == (
        "azd env set ROTATION_GRACE_HOURS <value> && azd provision"
        f"{at_once}ROTATION_GRACE_HOURS=<value>"
    )
    assert site.set_setting(["ROTATION_TENANT_ID"]) == (
        "azd provision (the deployment sets ROTATION_TENANT_ID itself)"
        f"{at_once}ROTATION_TENANT_ID=<value>"
    )
    assert site.set_setting(["ROTATION_API_CLIENT_ID"]) == (
        "azd env set EXISTING_API_CLIENT_ID <value> && azd provision"
        f"{at_once}ROTATION_API_CLIENT_ID=<value>"
    )
    assert site.set_setting(["ROTATION_LEASE_SECONDS"]) == (
        f"{by_hand}ROTATION_LEASE_SECONDS=<value>"  # no azd variable feeds it
    )
    assert Site.from_environment({}).set_setting(["ROTATION_X"]) == "export ROTATION_X=<value>"


async def test_a_soft_deleted_secret_name_fails_with_the_recover_command(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    name = f"acs-smtp-{sender.app_id}-username"
    sandbox.state.soft_delete_secret(name)

    checks = await diagnose(sandbox, monkeypatch)

    vault = checks[f"vault {sender.app_id}"]
    assert vault.status == "fail"
    assert "deleted but recoverable" in vault.detail
    assert vault.fix is not None
    assert vault.fix.startswith("az keyvault secret recover --vault-name ")
    assert vault.fix.endswith(f"--name {name}")
    assert name in sandbox.state.deleted_secrets  # still deleted: doctor only read


async def test_without_permission_to_read_deleted_secrets_the_name_is_checked_at_first_write(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"list"})

    checks = await diagnose(sandbox, monkeypatch)

    vault = checks[f"vault {sender.app_id}"]
    assert vault.status == "warn"
    assert "checked at first write" in vault.detail


async def test_skipped_senders_are_counted_not_failed(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_sender()
    identity = sandbox.add_managed_identity_holder()

    checks = await diagnose(sandbox, monkeypatch)

    assert "1 managed app(s); 1 sender(s) skipped" in checks["apps"].detail
    assert not [name for name in checks if identity.app_id in name]
    assert failed(checks) == []


async def test_consumer_sites_are_read_and_an_unreadable_one_is_a_warning(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    site = sandbox.add_consumer_site("mailer-web", f"acs-smtp-{sender.app_id}")
    gone = site.id.replace("mailer-web", "mailer-deleted")
    quiet = await diagnose(sandbox, monkeypatch)
    readable = await diagnose(sandbox, monkeypatch, consumers_enabled="true")
    unreadable = await diagnose(
        sandbox, monkeypatch, consumers_enabled="true", consumer_sites=f"{site.id},{gone}"
    )

    assert "consumers" not in quiet  # consumer checks off: nothing to check
    assert readable["consumers"].status == "ok"
    assert "1 site(s) reference" in readable["consumers"].detail
    assert unreadable["consumers"].status == "warn"
    assert "mailer-deleted" in unreadable["consumers"].detail
    assert (unreadable["consumers"].fix or "").startswith("export ROTATION_CONSUMER_SITES=")
    assert failed(unreadable) == []  # a site that is gone is no missing permission


@pytest.mark.slow
async def test_the_lease_store_is_read_without_creating_anything_and_unreachable_fails(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = await diagnose(sandbox, monkeypatch)
    unreachable = await diagnose(
        sandbox, monkeypatch, lease_blob_url="https://127.0.0.1:9/devstoreaccount1"
    )
    fresh_again = await diagnose(sandbox, monkeypatch)

    assert fresh["lease store"].status == "ok"
    assert "is absent (the first run creates it)" in fresh["lease store"].detail
    assert "is absent" in fresh_again["lease store"].detail  # doctor created nothing
    lease = unreachable["lease store"]
    assert lease.status == "fail"
    assert "lease store" in lease.detail
    assert (lease.fix or "").startswith("az role assignment create --assignee ")


async def test_a_function_app_without_a_lease_store_is_warned_with_the_settings_to_set(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in sandbox.env().items() if k != "ROTATION_LEASE_BLOB_URL"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    in_azure = Site("func-rotator", "rg-rotator", True)

    checks = {c.name: c for c in await doctor.diagnose(load_settings(env), in_azure)}
    local = {c.name: c for c in await doctor.diagnose(load_settings(env), Site())}

    lease = checks["lease store"]
    assert lease.status == "warn"
    assert "ROTATION_LEASE_BLOB_URL is not set" in lease.detail
    assert lease.fix == (
        "azd provision (the deployment sets ROTATION_LEASE_BLOB_URL, ROTATION_LEASE_CONTAINER "
        "itself); or at once, until the next provision: az functionapp config appsettings set "
        "-g rg-rotator -n func-rotator "
        "--settings ROTATION_LEASE_BLOB_URL=<value> ROTATION_LEASE_CONTAINER=<value>"
    )
    assert "lease store" not in local  # a lone CLI run needs none


# ----- the states right after a deploy ---------------------------------------------------------


async def test_before_the_graph_grant_doctor_says_what_is_pending_and_when_a_new_token_shows_it(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The most likely state after `azd up`: role holders to look up, and a token without
    the Graph app role. Doctor answers every check (it used to crash on the lookup)."""
    sandbox.add_sender()
    named = sandbox.add_sender(via="smtp-username", role=None)
    sandbox.rotator.sp.graph_roles.clear()

    checks = await diagnose(sandbox, monkeypatch)

    roles = checks["graph roles"]
    assert roles.status == "fail"
    assert roles.detail.startswith("pending: the Graph token carries no app roles")
    assert "this token was issued " in roles.detail
    assert "run doctor again after that" in roles.detail
    assert roles.fix == (
        f"infra/scripts/grant-graph-permission.sh --principal-id {sandbox.rotator.principal_id}"
    )
    assert checks["acs role holders"].status == "fail"
    assert checks["acs role holders"].fix == roles.fix
    assert checks["apps"].status == "fail"
    assert "403" in checks["apps"].detail
    assert checks[f"owner {named.app_id}"].status == "warn"  # follows from the above
    assert checks[f"vault {named.app_id}"].status == "ok"  # Key Vault is not waiting
    assert checks["smtp"].status == "ok"


@pytest.mark.slow
async def test_a_key_vault_role_not_effective_yet_is_pending_then_ok(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    client = sandbox.rotator.client_id.lower()
    sandbox.state.vault_permissions_effective[client] = sandbox.state.clock.now() + timedelta(
        minutes=10
    )

    pending = await diagnose(sandbox, monkeypatch)
    sandbox.state.clock.advance(timedelta(minutes=11))
    effective = await diagnose(sandbox, monkeypatch)

    vault = pending[f"vault {sender.app_id}"]
    assert vault.status == "fail"
    assert vault.detail.startswith("pending: ")
    assert "ARM already shows the identity's role" in vault.detail
    assert "within about 10 minutes" in vault.detail
    assert pending["vault access"].status == "ok"  # assigned: ARM lists it already
    assert effective[f"vault {sender.app_id}"].status == "ok"
    assert failed(effective) == []


async def test_ownership_missing_on_some_apps_names_each_with_its_own_command(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned = sandbox.add_sender()
    strangers = [sandbox.add_sender(owned=False) for _ in range(2)]

    checks = await diagnose(sandbox, monkeypatch)

    assert checks[f"owner {owned.app_id}"].status == "ok"
    assert sorted(failed(checks)) == sorted(f"owner {s.app_id}" for s in strangers)
    for stranger in strangers:
        owner = checks[f"owner {stranger.app_id}"]
        assert owner.detail.startswith(f"pending: {stranger.app.display_name} does not list")
        assert "counts at the next call (no new token needed)" in owner.detail
        assert owner.fix == (
            f"az ad app owner add --id {stranger.app_id} "
            f"--owner-object-id {sandbox.rotator.principal_id}"
        )


async def test_an_app_whose_entra_answer_cannot_be_read_fails_its_owner_line_naming_the_field(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding 14: an app status calls unreadable (Graph's application item has a
    field of the wrong type) was "ok" in doctor, whose owner line read the flagged record
    as any other. Ownership made unnecessary (ReadWrite.All) must not hide it either."""
    good, bad = sandbox.add_sender(), sandbox.add_sender()
    sandbox.state.faults.rewrite(
        "graph GET /applications", {"appId": bad.app_id}, "passwordCredentials", value="x"
    )
    for read_write_all in (False, True):
        if read_write_all:
            sandbox.rotator.sp.graph_roles = {*sandbox.rotator.sp.graph_roles, GRAPH_READ_WRITE_ALL}
        checks = await diagnose(sandbox, monkeypatch)
        assert checks[f"owner {good.app_id}"].status == "ok"
        owner = checks[f"owner {bad.app_id}"]
        assert owner.status == "fail", owner
        assert owner.detail.startswith("what Entra ID answered about the app cannot be read"), owner
        assert "passwordCredentials: should be a valid list" in owner.detail
        assert owner.fix == f"az ad app show --id {bad.app_id}"


async def test_a_hand_written_version_over_the_rotators_fails_the_vault_line_as_drift(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, service: RotationService
) -> None:
    """Review finding 14: an app status calls drift (its current version not the rotator's)
    was "ok" in doctor. A password stored by hand before the rotator ever wrote the secret
    is adoption, not drift: still ok."""
    drifted, adopted = sandbox.add_sender(), sandbox.add_sender()
    report = await service.run(RunOptions(mode=Mode.FORCE, app_ids=(drifted.app_id,)))
    assert [o.outcome for o in report.outcomes] == [Outcome.ROTATED]
    settings = load_settings(sandbox.env())
    version = await write_secret(settings, settings.secret_name(drifted.app_id), "by hand")
    await write_secret(settings, settings.secret_name(adopted.app_id), adopted.password.secret_text)
    sandbox.state.requests.clear()  # doctor's own writes are counted from here

    checks = await diagnose(sandbox, monkeypatch)

    vault = checks[f"vault {drifted.app_id}"]
    assert vault.status == "fail", vault
    assert f"Key Vault's current version {version} " in vault.detail
    assert "was not written by the rotator (drift;" in vault.detail
    assert vault.fix is not None
    assert f'{{"appIds": ["{drifted.app_id}"], "mode": "force"}}' in vault.fix
    assert f"run --app {drifted.app_id} --force" in vault.fix
    assert checks[f"vault {adopted.app_id}"].status == "ok"


async def test_a_broken_check_is_a_failed_line_and_the_others_still_answer(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_sender()

    async def broken(facts: object, clients: object) -> list[Check]:
        raise KeyError("a bug")

    monkeypatch.setattr(
        doctor, "CHECKS", tuple((n, broken if n == "acs" else c) for n, c in doctor.CHECKS)
    )
    checks = await diagnose(sandbox, monkeypatch)

    assert checks["acs"] == Check(
        "acs", "fail", "doctor could not check this: internal error: KeyError"
    )
    assert checks["smtp"].status == "ok"
    assert checks["graph roles"].status == "ok"


# ----- app-management policies --------------------------------------------------------------


@pytest.mark.slow
async def test_the_policies_line_names_a_cap_and_fails_an_app_they_forbid_new_passwords(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    capped = sandbox.add_sender()
    banned = sandbox.add_sender()
    default = sandbox.state.tenants[sandbox.tenant_id]
    default.enabled = True
    default.passwords = [PasswordRestriction("passwordLifetime", timedelta(days=90))]
    sandbox.state.assign_policy(
        banned.app, new_policy("no secrets", PasswordRestriction("passwordAddition"))
    )

    checks = await diagnose(sandbox, monkeypatch)

    head = checks["policies"]
    assert head.status == "ok"
    assert "tenant default policy enabled; 1 app-specific policy(ies)" in head.detail
    assert f"{capped.app_id} (the new secret lasts 90.0 days" in head.detail
    line = checks[f"policy {banned.app_id}"]
    assert line.status == "fail"
    assert "app-management policy 'no secrets'" in line.detail
    assert (line.fix or "").startswith("an administrator exempts it")
    assert f"policy {capped.app_id}" not in checks


async def test_without_the_permission_to_read_policies_doctor_warns_with_the_grant(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_sender()
    sandbox.rotator.sp.graph_roles.discard(GRAPH_POLICY_READ_ALL)

    checks = await diagnose(sandbox, monkeypatch)

    policies = checks["policies"]
    assert policies.status == "warn"
    assert "Policy.Read.All" in policies.detail
    assert policies.fix == (
        f"infra/scripts/grant-graph-permission.sh --principal-id {sandbox.rotator.principal_id}"
    )
    assert failed(checks) == []  # the rotator works without them, and says so


# ----- the HTTP API's app registration -----------------------------------------------------


async def test_the_api_check_names_who_holds_each_role_and_warns_for_a_role_nobody_holds(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = sandbox.state.add_group("rotation operators")
    sandbox.api.assign(group.object_id, "Rotation.Read")
    sandbox.api.assign(
        sandbox.add_api_client(roles=(), name="release-pipeline").sp.object_id, "Rotation.Rotate"
    )

    checks = await diagnose(sandbox, monkeypatch)

    assert checks["api"].status == "ok"
    assert sandbox.api.client_id in checks["api"].detail
    assert (checks["api role Rotation.Read"].status, checks["api role Rotation.Read"].detail) == (
        "ok",
        "held by rotation operators",
    )
    assert checks["api role Rotation.Rotate"].detail == "held by release-pipeline"
    emergency = checks["api role Rotation.Emergency"]
    assert emergency.status == "warn"
    assert "nobody can start emergency rotations over the API" in emergency.detail
    role_id = sandbox.api.role_ids["Rotation.Emergency"]
    assert emergency.fix is not None
    assert f"/servicePrincipals/{sandbox.api.sp.object_id}/appRoleAssignedTo" in emergency.fix
    assert f'"appRoleId": "{role_id}"' in emergency.fix


async def test_the_api_check_fails_without_the_registration_or_its_roles_or_the_setting(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_api_user()
    unset = await diagnose(sandbox, monkeypatch, api_client_id=None)
    assert unset["api"].status == "fail"
    assert "ROTATION_API_CLIENT_ID=<value>" in (unset["api"].fix or "")

    elsewhere = "5e2b0c1d-0000-4000-8000-0000000000ee"  # a client id the tenant does not know
    missing = await diagnose(sandbox, monkeypatch, api_client_id=elsewhere)
    assert (missing["api"].status, "api role Rotation.Read" in missing) == ("fail", False)
    assert elsewhere in missing["api"].detail

    sandbox.api.role_ids.pop("Rotation.Emergency")  # someone deleted the role
    sandbox.api.assignment_required = False
    lost = await diagnose(sandbox, monkeypatch)
    assert lost["api"].status == "fail"
    assert "Rotation.Emergency" in lost["api"].detail
    assert lost["api role Rotation.Emergency"].status == "fail"


async def test_the_api_check_warns_when_it_is_open_to_anyone_in_the_tenant(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_api_user()
    sandbox.api.assignment_required = False
    checks = await diagnose(sandbox, monkeypatch)
    assert checks["api"].status == "warn"
    assert checks["api"].fix == (
        f"az ad sp update --id {sandbox.api.client_id} --set appRoleAssignmentRequired=true"
    )


async def test_an_unreadable_api_registration_is_a_warning_with_the_owner_fix(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_api_user()
    sandbox.state.faults.inject("graph GET /servicePrincipals/{id}/appRoleAssignedTo", status=403)
    checks = await diagnose(sandbox, monkeypatch)
    assert checks["api"].status == "warn"
    assert "could not be read" in checks["api"].detail
    assert f"az ad app owner add --id {sandbox.api.client_id}" in (checks["api"].fix or "")


# ----- Key Vault events (issue 26) ------------------------------------------------------------


async def test_the_key_vault_event_subscription_is_checked_and_each_gap_fails(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscribed and delivering: ok. Then each prerequisite taken away fails with its fix:
    the subscription's filter, the subscription itself, delivery (an event dead-lettered),
    and the Reader role on the topic that lets doctor look."""
    grid = sandbox.event_grid
    assert grid is not None
    check = (await diagnose(sandbox, monkeypatch))["key vault events"]
    assert check.status == "ok", check
    assert "acs-smtp-*" in check.detail

    grid.subscribe("acs-smtp-rotation", "", begins_with="acs-smtp-", included=["x"])
    check = (await diagnose(sandbox, monkeypatch))["key vault events"]
    assert (check.status, check.fix) == ("fail", events.SUBSCRIBE)
    assert "leaves out" in check.detail

    grid.subscribe("acs-smtp-rotation", "", begins_with="other-")
    assert "subject filter" in (await diagnose(sandbox, monkeypatch))["key vault events"].detail

    subscription = grid.subscribe("acs-smtp-rotation", "", begins_with="acs-smtp-")
    subscription.dead_letters.append({"body": [], "attempts": 30, "lastHttpCode": 500})
    check = (await diagnose(sandbox, monkeypatch))["key vault events"]
    assert check.status == "fail"
    assert "1 event(s) were dead-lettered" in check.detail

    del grid.subscriptions["acs-smtp-rotation"]
    check = (await diagnose(sandbox, monkeypatch, key_vault_events=True))["key vault events"]
    assert (check.status, check.fix) == ("fail", events.SUBSCRIBE)
    assert "no event subscription" in check.detail

    grid.subscribe("acs-smtp-rotation", "", begins_with="acs-smtp-")
    me = sandbox.rotator.principal_id  # no role that reads the topic, here or above it
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != me
    ]
    check = (await diagnose(sandbox, monkeypatch))["key vault events"]
    assert check.status == "fail"
    assert "AuthorizationFailed" in check.detail or "Reader" in check.detail


async def test_with_events_off_by_default_no_subscription_is_ok_and_says_they_are_off(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding 10: infra's KEY_VAULT_EVENTS is false by default, so a fresh deployment
    has no subscription; doctor said fail (and GET /api/doctor 503) for an opt-in feature."""
    assert sandbox.event_grid is not None
    sandbox.event_grid.subscriptions.clear()
    check = (await diagnose(sandbox, monkeypatch))["key vault events"]
    assert check.status == "ok", check
    assert check.detail.startswith("off: ROTATION_KEY_VAULT_EVENTS is false")
    on = (await diagnose(sandbox, monkeypatch, key_vault_events=True))["key vault events"]
    assert (on.status, on.fix) == ("fail", events.SUBSCRIBE)


async def test_delivery_metrics_it_cannot_read_are_a_warning_never_none_lost(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding 15: a 404 from the metrics API read as "none dead-lettered" (ok)."""
    assert (await diagnose(sandbox, monkeypatch))["key vault events"].status == "ok"
    (metrics,) = [k for k in sandbox.state.requests if k.endswith("/Microsoft.Insights/metrics")]
    sandbox.state.faults.inject(metrics, status=404)
    check = (await diagnose(sandbox, monkeypatch))["key vault events"]
    assert check.status == "warn", check
    assert "delivery metrics are not readable (no metrics: the metrics API answered 404" in (
        check.detail
    )
    assert "az monitor metrics list --resource" in (check.fix or "")


@pytest.mark.parametrize(
    ("route", "what"),
    [
        ("/eventSubscriptions/{name}", "the Key Vault event subscription /subscriptions/"),
        ("/Microsoft.Insights/metrics", "the delivery metrics of /subscriptions/"),
    ],
)
async def test_an_event_grid_answer_that_is_not_json_fails_naming_what_was_read(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, route: str, what: str
) -> None:
    """Review finding 6: a 200 whose body is not JSON (a gateway's HTML page) escaped ARM's
    error mapping as a bare ValueError ("internal error: JSONDecodeError")."""
    assert (await diagnose(sandbox, monkeypatch))["key vault events"].status == "ok"
    (key,) = [k for k in sandbox.state.requests if k.endswith(route)]
    sandbox.state.faults.inject(key, status=200, page="<html><body>Gateway</body></html>")
    check = (await diagnose(sandbox, monkeypatch))["key vault events"]
    assert check.status == "fail", check
    assert f"Azure Resource Manager answered {what}" in check.detail, check
    assert "with something other than JSON" in check.detail, check


async def test_without_the_vault_resource_id_the_events_are_not_checked(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = await diagnose(sandbox, monkeypatch, key_vault_resource_id=None)
    assert checks["key vault events"].status == "warn"


async def test_the_checks_find_the_same_whatever_order_they_run_in(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check is a function of the facts gathered once (issue 21 item 3): none leaves
    anything for another, so the reverse order finds exactly the same, a failure included."""
    sandbox.add_sender()
    sandbox.add_sender(via="smtp-username", role=None)  # a sender without its ACS role
    sandbox.add_api_user()
    forward = await diagnose(sandbox, monkeypatch)
    assert failed(forward) != []
    monkeypatch.setattr(doctor, "CHECKS", tuple(reversed(doctor.CHECKS)))
    backward = await diagnose(sandbox, monkeypatch)

    assert backward == forward
    assert list(backward) != ["settings"]  # the checks ran
