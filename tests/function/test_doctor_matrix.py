"""doctor against every prerequisite the rotator uses, each removed alone in the sandbox.

The rotator starts with exactly what a least-privilege `azd up` gives it (the custom roles
of infra/modules/custom-roles.bicep, the Graph app role, ownership of each sender app, the
blob data role) plus the App Service calls the sandbox's Resource Manager checks for the
consumer sites. With all of it, every check is ok. With one thing removed, doctor names
it, with its fix, and fails: the CLI exits 1 and ``GET /api/doctor`` answers 503, each
having run doctor itself.

Every check doctor runs (`doctor.CHECKS`) is the one a case expects to fail, so a check
replaced by one that always says ok fails that case: `test_a_check_that_always_says_ok_is_caught`
does the replacement for each and watches its case fail.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from rich.console import Console

from rotation import cli, doctor
from rotation.doctor import Site
from rotation.resource_ids import system_topic_id
from rotation.settings import load_settings
from sandbox import web_api
from sandbox.app_policies import PasswordRestriction, new_policy
from sandbox.seed import Sender
from sandbox.server import Sandbox
from sandbox.state import RoleDefinition
from sandbox.vault_api import ALL_OPERATIONS, GET, LIST, SET, UPDATE
from tests.function.test_function_app import get, load
from tests.infra import bicep

ROLES = bicep.INFRA / "modules" / "custom-roles.bicep"
READER_ACTIONS: list[str] = bicep.variable(ROLES, "readerActions")
SECRET_WRITER_ACTIONS: list[str] = bicep.variable(ROLES, "secretWriterActions")
#: The App Service calls as the sandbox's Resource Manager checks them (sandbox/web_api.py).
WEB_ACTIONS = [
    web_api.READ_SITES,
    web_api.READ_SLOTS,
    web_api.READ_REFERENCES,
    web_api.SLOT_READ_REFERENCES,
    web_api.READ_CS_REFERENCES,
    web_api.SLOT_READ_CS_REFERENCES,
    web_api.REFRESH_REFERENCES,
    web_api.SLOT_REFRESH_REFERENCES,
]
SECRET = "acs-smtp-{app_id}"


@dataclass
class World:
    sandbox: Sandbox
    sender: Sender
    roles: dict[str, RoleDefinition] = field(default_factory=dict)

    def grant(self, name: str, actions: list[str], scope: str) -> None:
        """Gives the rotator a custom role with `actions` at `scope` (replacing one of that name)."""
        state, rotator = self.sandbox.state, self.sandbox.rotator.sp
        old = self.roles.get(name)
        if old is not None:
            state.role_assignments[:] = [
                a
                for a in state.role_assignments
                if not (a.principal_id == rotator.object_id and a.role_definition_id == old.id)
            ]
        role = state.add_role_definition(f"test {name}", actions)
        state.assign_role(scope, rotator, role)
        self.roles[name] = role

    def without(self, name: str, action: str) -> None:
        role = self.roles[name]
        self.grant(name, [a for a in role.actions if a != action], self._scope(name))

    def _scope(self, name: str) -> str:
        subscription = f"/subscriptions/{self.sandbox.subscription_id}"
        return self.sandbox.state.vault_resource_id or "" if name == "vault" else subscription


def least_privilege(sandbox: Sandbox) -> World:
    """A sender, its consumer site and slot, and the rotator with what `azd up` grants."""
    sender = sandbox.add_sender()
    secret = SECRET.format(app_id=sender.app_id)
    sandbox.add_consumer_site("mailer", secret, grant_rotator=False)
    sandbox.add_consumer_site("mailer", secret, slot="staging", grant_rotator=False)
    state, rotator = sandbox.state, sandbox.rotator
    state.role_assignments[:] = [
        a for a in state.role_assignments if a.principal_id != rotator.sp.object_id
    ]
    world = World(sandbox, sender)
    subscription = f"/subscriptions/{sandbox.subscription_id}"
    world.grant("reader", READER_ACTIONS, subscription)
    world.grant("vault", SECRET_WRITER_ACTIONS, state.vault_resource_id or "")
    world.grant("web", WEB_ACTIONS, subscription)
    state.vault_permissions[rotator.client_id.lower()] = ALL_OPERATIONS
    # Reader on the vault's Event Grid system topic (infra/modules/eventgrid.bicep).
    state.assign_role(system_topic_id(state.vault_resource_id or ""), rotator.sp, "Reader")
    sandbox.add_api_user()  # an operator holding each of the HTTP API's app roles
    return world


@dataclass(frozen=True)
class Case:
    """A prerequisite, how to take it away, and the check that must then fail."""

    name: str
    remove: Callable[[World], None]
    check: Callable[[World], str]  # the name of the check that must fail
    fix: str  # in that check's fix
    producer: str  # the doctor.CHECKS entry that finds it
    env: dict[str, str] = field(default_factory=dict)


def _named(name: str) -> Callable[[World], str]:
    return lambda _: name


def _vault_without(op: str) -> Callable[[World], None]:
    def remove(world: World) -> None:
        client = world.sandbox.rotator.client_id.lower()
        world.sandbox.state.vault_permissions[client] = ALL_OPERATIONS - {op}

    return remove


def _reader_without(action: str) -> Callable[[World], None]:
    return lambda world: world.without("reader", action)


def _web_without(action: str) -> Callable[[World], None]:
    return lambda world: world.without("web", action)


def _resource(world: World) -> str:
    return f"acs {world.sender.resource.name}"


READER_CHECKS = {
    "Microsoft.Communication/CommunicationServices/read": _named("acs"),
    "Microsoft.Communication/CommunicationServices/*/read": _resource,
    "Microsoft.Authorization/roleAssignments/read": _resource,
    "Microsoft.Authorization/roleDefinitions/read": _named("acs roles"),
}
CASES = [
    Case(
        "the Graph app role",
        lambda w: w.sandbox.rotator.sp.graph_roles.clear(),
        _named("graph roles"),
        "grant-graph-permission.sh --principal-id ",
        "graph roles",
    ),
    Case(
        "a token for Graph",
        lambda w: None,
        _named("token graph"),
        "az functionapp identity assign",
        "token",
        {"ROTATION_GRAPH_URL": "https://graph.example.invalid"},
    ),
    Case(
        "ownership of the sender app",
        lambda w: w.sender.app.owners.clear(),
        lambda w: f"owner {w.sender.app_id}",
        "az ad app owner add --id ",
        "apps",
    ),
    *[
        Case(
            f"Key Vault {op}",
            _vault_without(op),
            _named("vault access"),
            '--role "Key Vault Secrets Officer"',
            "vault access",
        )
        for op in (GET, LIST, SET, UPDATE)
    ],
    *[
        Case(
            f"ARM {action}",
            _reader_without(action),
            READER_CHECKS[action],
            '--role "Reader"',
            "acs",
        )
        for action in READER_ACTIONS
    ],
    *[
        Case(
            f"App Service {action}",
            _web_without(action),
            _named("consumers"),
            '--role "Website Contributor"',
            "consumers",
        )
        for action in WEB_ACTIONS
    ],
    Case(
        "a tenant that lets the sender app have a new password",
        lambda w: w.sandbox.state.assign_policy(
            w.sender.app, new_policy("no secrets", PasswordRestriction("passwordAddition"))
        ),
        lambda w: f"policy {w.sender.app_id}",
        "appManagementPolicies/$ref",
        "policies",
    ),
    Case(
        "the blob data role",
        lambda w: w.sandbox.state.storage_refused.add(w.sandbox.rotator.sp.object_id),
        _named("lease store"),
        '--role "Storage Blob Data Owner"',
        "lease store",
    ),
    Case(
        "the HTTP API's app role Rotation.Emergency",
        lambda w: w.sandbox.api.role_ids.pop("Rotation.Emergency"),
        _named("api"),
        "azd provision",
        "api",
    ),
    Case(
        "the Key Vault event subscription",
        lambda w: w.sandbox.event_grid.subscriptions.clear(),  # type: ignore[union-attr]
        _named("key vault events"),
        "azd env set KEY_VAULT_EVENTS true",
        "key vault events",
        {"ROTATION_KEY_VAULT_EVENTS": "true"},  # meant to be on (infra's KEY_VAULT_EVENTS)
    ),
    Case(
        "Reader on the vault's Event Grid system topic",
        lambda w: w.sandbox.state.role_assignments.__setitem__(
            slice(None),
            [a for a in w.sandbox.state.role_assignments if "systemTopics" not in a.scope],
        ),
        _named("key vault events"),
        '--role "Reader"',
        "key vault events",
    ),
    Case(
        "SMTP reachability",
        lambda w: None,
        _named("smtp"),
        "openssl s_client -starttls smtp -connect nonexistent.invalid:",
        "smtp",
        {"ROTATION_SMTP_HOST": "nonexistent.invalid"},
    ),
]


async def through_http(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    module: ModuleType = load(sandbox, monkeypatch, consumers_enabled="true", **env)
    try:
        return await get(module, "doctor")
    finally:
        await module.api.close()


async def through_cli(sandbox: Sandbox, env: dict[str, str]) -> tuple[int, str]:
    """The CLI's doctor as `python -m rotation doctor` runs it, in this process: its
    settings, its diagnosis and its exit code and lines (tests/function/test_cli.py runs
    the real process)."""
    settings = load_settings(sandbox.env(consumers_enabled="true", **env))
    checks = await doctor.diagnose(settings, Site())
    out = io.StringIO()
    code = cli.report_doctor(checks, as_json=False, console=Console(file=out, width=400))
    return code, out.getvalue()


async def both(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None
) -> tuple[tuple[int, dict[str, Any]], tuple[int, str]]:
    env = env or {}
    for key, value in sandbox.env(consumers_enabled="true", **env).items():
        monkeypatch.setenv(key, value)  # DefaultAzureCredential reads AZURE_* here
    http, terminal = await asyncio.gather(
        through_http(sandbox, monkeypatch, env), through_cli(sandbox, env)
    )
    return http, terminal


@pytest.mark.slow
async def test_with_every_prerequisite_every_check_is_ok(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    least_privilege(sandbox)

    (status, body), (code, lines) = await both(sandbox, monkeypatch)

    not_ok = [c for c in body["checks"] if c["status"] != "ok"]
    assert (status, body["ok"], not_ok) == (200, True, [])
    assert code == 0, lines
    produced = {c["check"].split()[0] for c in body["checks"]}
    assert {"settings", "token", "graph", "acs", "apps", "owner", "sender", "vault"} <= produced
    assert {"lease", "consumers", "smtp"} <= produced
    assert "refreshed 2" in next(c["detail"] for c in body["checks"] if c["check"] == "consumers")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_each_prerequisite_removed_alone_is_named_with_its_fix(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    world = least_privilege(sandbox)
    case.remove(world)

    http, terminal = await both(sandbox, monkeypatch, case.env)

    assert_named(case, world, http, terminal)


def assert_named(
    case: Case, world: World, http: tuple[int, dict[str, Any]], terminal: tuple[int, str]
) -> None:
    """Both surfaces fail, and name the check with its fix."""
    (status, body), (code, lines) = http, terminal
    expected = case.check(world)
    by_name = {c["check"]: c for c in body["checks"]}
    assert (status, body["ok"]) == (503, False)
    assert by_name[expected]["status"] == "fail", json.dumps(body, indent=1)
    assert case.fix in (by_name[expected]["fix"] or "")
    assert code == 1
    assert f"fail  {expected}" in lines
    assert f"fix: {by_name[expected]['fix']}" in lines


def test_every_check_doctor_runs_has_a_case_that_needs_it() -> None:
    assert {name for name, _ in doctor.CHECKS} == {case.producer for case in CASES}


@pytest.mark.slow
@pytest.mark.parametrize("producer", [name for name, _ in doctor.CHECKS])
async def test_a_check_that_always_says_ok_is_caught(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, producer: str
) -> None:
    case = next(c for c in CASES if c.producer == producer)
    world = least_privilege(sandbox)
    case.remove(world)

    async def always_ok(facts: object, clients: object) -> list[doctor.Check]:
        return [doctor.Check(case.check(world), "ok", "fine")]

    checks = tuple((n, always_ok if n == producer else c) for n, c in doctor.CHECKS)
    monkeypatch.setattr(doctor, "CHECKS", checks)
    http, terminal = await both(sandbox, monkeypatch, case.env)

    with pytest.raises(AssertionError):
        assert_named(case, world, http, terminal)
