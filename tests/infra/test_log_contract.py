"""The log-event contract, checked against lines the product really writes.

One sandbox world goes through what the workbook and the alerts must show: a scheduled
run that rotates, a dry run over HTTP, a forced rotation that retires at once, and the
failure paths (SMTP AUTH refused, Graph refusing addPassword, Key Vault refusing the write,
an allow-listed app Graph does not know, an allow-listed app with no username). Every line
it logs is held against rotation/telemetry/events.py, and every query in the workbook and the alert
rules is held against those lines: the events it filters on are written, and each field it
reads is on them with a value its conversion accepts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from rotation.azure.clients import Overrides
from rotation.doctor import Site
from rotation.errors import RotationError, SettingsError
from rotation.http_api import Api
from rotation.misconfigured import Misconfigured
from rotation.model import Mode, Outcome, RunOptions
from rotation.service import RotationService
from rotation.settings import InvalidSettings, Settings, load_settings
from rotation.telemetry import events
from sandbox.event_grid import NEAR_EXPIRY, NEW_VERSION
from sandbox.server import Sandbox
from sandbox.state import SecretVersion
from tests import leaks
from tests.infra import queries
from tests.infra.log_lines import Line, json_lines, rotator_lines
from tests.integration.conftest import FAST

#: Every test here reads one corpus that real scenarios on a sandbox write (~4 s).
pytestmark = pytest.mark.slow

#: Contract events no scenario here produces, and where they are exercised instead.
NOT_EXERCISED = {
    "app.unfinished": "needs a call that hangs past the app's deadline (tests/reliability)",
    "credential.rollback_failed": "needs removePassword to fail after a failed verification",
    "credential.already_gone": "needs removePassword refused for a secret already gone "
    "(tests/integration/test_entra_adapter.py)",
    "discovery.role_missing": "needs a role assignment whose definition was deleted",
    "vault.deleted_unlisted": "needs the listing of deleted secrets to fail "
    "(tests/integration/test_soft_deleted_names.py)",
    "policy.unread": "needs the Graph permission to read app-management policies missing "
    "(tests/integration/test_app_policies.py)",
    "app.busy": "needs another run holding the app's lease (tests/reliability/test_leases.py)",
    "lease.renew_failed": "needs storage failing while a lease is held",
    "lease.lost": "needs the lease broken meanwhile (tests/integration/test_lease.py)",
    "lease.release_failed": "needs the lease lost meanwhile (tests/integration/test_lease.py)",
    "vault.settle_failed": "needs the tag on a finished rotation refused "
    "(tests/integration/test_vault_listing.py)",
    "credential.remove_failed": "needs a removal to fail (tests/reliability/test_isolation.py)",
    "vault.read_failed": "needs promote and the Key Vault read after it to fail "
    "(tests/unit/test_engine_isolation.py)",
    "run.requested": "logged by the CLI (tests/function/test_cli.py)",
    "run.on_outcome_failed": "needs a progress callback that raises",
}
STEPS = {"observe", "create", "verify", "promote", "retire"}
LIFETIME_DAYS = Settings.model_fields["secret_lifetime_days"].default


async def _world(sandbox: Sandbox) -> None:
    """The scenarios, in order, on one sandbox."""
    unknown = str(uuid.uuid4())  # allow-listed, Graph has no such app: fails at observe
    no_name = str(uuid.uuid4())  # allow-listed without a username: discovery skips it
    base = {"app_ids": f"{no_name},{unknown}=ghost@contoso.example"}

    def open_service(settings: object) -> RotationService:
        return RotationService.open(
            settings, clock=sandbox.state.clock.now, overrides=Overrides(backoff=FAST)
        )  # type: ignore[arg-type]

    def settings(**overrides: object) -> object:
        return load_settings(sandbox.env(**base, **overrides))

    due = sandbox.add_sender(lifetime=timedelta(days=10))
    sandbox.add_sender()  # fresh: unchanged
    sandbox.add_managed_identity_holder()  # skipped in every run, never failed
    member = sandbox.add_sender(role=None, name="via-group")  # sends through a group
    group = sandbox.state.add_group("mail senders", {member.principal_id})
    sandbox.state.assign_role(sandbox.default_resource.id, group, "Contributor")
    for dry_run in (False, True):
        api = Api(settings(), open_service)  # type: ignore[arg-type]
        try:
            if not dry_run:
                await api.timer()  # scheduled: rotates `due` (a secret of 180 days)
            else:
                reader = sandbox.add_api_user(roles=["Rotation.Read"], name="ops@sandbox.example")
                auth = {"Authorization": f"Bearer {sandbox.user_token(reader)}"}
                status, _ = await api.rotations(b'{"dryRun": true}', auth)
                assert status == 200  # `due` planned, with an expiry warning
                status, _ = await api.rotations(b'{"mode": "force"}', auth)
                assert status == 403  # a reader may not rotate: http.refused
                no_token = {"X-Forwarded-For": "203.0.113.7:50123"}
                assert (await api.status(no_token))[0] == 401  # no token: http.refused
        finally:
            await api.close()
        sandbox.state.clock.advance(timedelta(days=170))

    async with open_service(settings(grace_hours=0)) as service:  # type: ignore[arg-type]
        await service.run(
            RunOptions((due.app_id,), mode=Mode.FORCE)
        )  # rotated, old secret retired at once

    refused = sandbox.add_sender(via="smtp-username", role=None)  # SMTP AUTH always 535
    stranger = sandbox.add_sender(owned=False)  # Graph 403 on addPassword
    async with open_service(settings(verify_timeout_seconds=1)) as service:  # type: ignore[arg-type]
        await service.run(RunOptions((refused.app_id, stranger.app_id, unknown)))
    # Consumer sites: one confirms, its slot cannot read the vault, one may not be refreshed.
    watched = sandbox.add_sender(lifetime=timedelta(days=3))
    secret = f"acs-smtp-{watched.app_id}"
    sandbox.add_consumer_site("mailer", secret)
    sandbox.add_consumer_site("mailer", secret, slot="staging").vault_access = False
    sandbox.add_consumer_site("locked", secret, resource_group="rg-locked", grant_rotator=False)
    async with open_service(settings(consumers_enabled="true")) as service:  # type: ignore[arg-type]
        await service.run(RunOptions((watched.app_id,)))
    await _vault_events(sandbox, settings(http_verify_timeout_seconds=1), open_service)
    # An answer's item that belongs to no app (a role assignment whose properties ARM sent
    # as a string): skipped, logged as item.skipped, the rest of the answer used.
    odd = sandbox.add_sender()
    sandbox.state.faults.rewrite(
        "arm GET *", {"properties.principalId": odd.principal_id}, "properties", value="x"
    )
    async with open_service(settings()) as service:  # type: ignore[arg-type]
        await service.status()
    sandbox.state.faults.clear("arm GET *")
    victim = sandbox.add_sender(lifetime=timedelta(days=3))
    blocked = sandbox.add_sender(lifetime=timedelta(days=3))  # its Key Vault name is deleted
    sandbox.state.soft_delete_secret(f"acs-smtp-{blocked.app_id}")
    sandbox.state.faults.inject("vault PUT /secrets/{name}", status=403)
    async with open_service(settings()) as service:  # type: ignore[arg-type]
        await service.run(RunOptions((victim.app_id, blocked.app_id)))

    # A timer run whose budget fits no app: starved, and the apps due for many scheduled runs
    # (their Key Vault secrets end within the rotation window) named as left unstarted.
    api = Api(settings(), open_service, timer_budget_seconds=0.001)  # type: ignore[arg-type]
    try:
        assert (await api.timer())["ok"] is False
    finally:
        await api.close()

    # Failures before a run's report: ARM refuses discovery (the identity lost Reader), and
    # a worker starts with invalid settings (its timer fails with the same line).
    sandbox.state.role_assignments = [
        a for a in sandbox.state.role_assignments if a.principal_id != sandbox.rotator.principal_id
    ]
    api = Api(settings(), open_service)  # type: ignore[arg-type]
    try:
        with pytest.raises(RotationError):
            await api.timer()
    finally:
        await api.close()
    with pytest.raises(InvalidSettings) as invalid:
        settings(grace_hours="soon")
    with pytest.raises(SettingsError):
        await Misconfigured(invalid.value.public, Site()).timer()


async def _vault_events(sandbox: Sandbox, settings: object, open_service: Any) -> None:
    """Key Vault events through the trigger's entry (Api.vault_event): a hand-written
    version caught (SMTP refuses it), its repeat, a malformed event, and near expiry."""
    grid = sandbox.event_grid
    assert grid is not None
    drifted = sandbox.add_sender(lifetime=timedelta(days=20))
    api = Api(settings, open_service)  # type: ignore[arg-type]
    try:
        operator = {"Authorization": f"Bearer {sandbox.user_token(sandbox.add_api_user())}"}
        body = json.dumps({"appIds": [drifted.app_id], "mode": "force"}).encode()
        assert (await api.rotations(body, operator))[0] == 200
        ours = sandbox.state.vault[f"acs-smtp-{drifted.app_id}"][-1]
        await api.vault_event(grid.event(NEAR_EXPIRY, ours))  # rotates it now
        now = sandbox.state.clock.now()
        hand = SecretVersion(
            ours.name, uuid.uuid4().hex, "typed by hand", None, {}, True, None, None, now, now
        )
        sandbox.state.vault[ours.name.lower()].append(hand)
        caught = grid.event(NEW_VERSION, hand)
        await api.vault_event(caught)  # vault.drift_detected (SMTP refuses it)
        await api.vault_event(caught)  # a repeat: event.ignored
        await api.vault_event({"id": "x", "eventType": NEW_VERSION})  # event.malformed
    finally:
        await api.close()


@pytest.fixture(scope="module")
def corpus(request: pytest.FixtureRequest) -> list[Line]:
    """Every line the scenarios logged (module-wide: one world for all the checks)."""

    async def build() -> tuple[list[Line], list[str]]:
        async with Sandbox() as sandbox:
            check: leaks.SuiteLeakCheck = request.config.pluginmanager.get_plugin(leaks.NAME)
            check.states.append(sandbox.state)
            with pytest.MonkeyPatch.context() as patch:
                for key, value in sandbox.env().items():
                    patch.setenv(key, value)  # DefaultAzureCredential reads AZURE_* here
                with json_lines() as lines:
                    await _world(sandbox)
            return lines, list(sandbox.state.issued_secrets)

    lines, secrets = asyncio.run(build())
    text = "\n".join(map(str, lines))
    assert not [s for s in secrets if s in text], "a secret reached a log line (I6)"
    return rotator_lines(lines)


def named(corpus: list[Line], name: str) -> list[Line]:
    return [line for line in corpus if line["event"] == name]


def kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else type(value).__name__


def fits(kind: str, value: object) -> bool:
    got = kind_of(value)
    return got == kind or (kind == "number" and got == "int")


def converts(conversion: str, value: object) -> bool:
    """Whether KQL's `conversion(value)` yields a value (not null) for this JSON value."""
    need = queries.CONVERSION_KIND[conversion]
    if need is None:
        return value is not None
    if need == "datetime":
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            return False
        return True
    return fits(need, value)


def test_every_line_keeps_the_contract(corpus: list[Line]) -> None:
    assert corpus
    for line in corpus:
        event = events.BY_NAME.get(line["event"])
        assert event, (
            f"{line['event']} is logged but not in rotation/telemetry/events.py (and docs)"
        )
        unknown = set(line) - event.allowed()
        assert not unknown, f"{event.name} carries fields the contract lacks: {unknown}"
        kinds = {**events.COMMON, **events.CONTEXT, **event.fields}
        for name in event.required():
            assert line.get(name) is not None, f"{event.name} lacks {name}: {line}"
        for name, value in line.items():
            if value is not None:
                assert fits(kinds[name], value), (event.name, name, value)


def test_every_contract_event_is_written(corpus: list[Line]) -> None:
    seen = {line["event"] for line in corpus}
    expected = {e.name for e in events.EVENTS if not e.planned} - set(NOT_EXERCISED)

    assert expected <= seen, f"never logged: {sorted(expected - seen)}"


def test_failures_name_their_step_and_dry_runs_are_marked(corpus: list[Line]) -> None:
    failed = named(corpus, "app.failed")
    assert {line["step"] for line in failed} == {"observe", "create", "verify", "promote"}
    assert all(line["error"] for line in failed)
    finished = named(corpus, "run.finished")
    assert {line["dry_run"] for line in finished} == {True, False}
    assert any(line.get("trigger") == "timer" for line in finished)
    dry = {line["run_id"] for line in finished if line["dry_run"]}
    planned = [line for line in named(corpus, "app.finished") if line["run_id"] in dry]
    assert {line["outcome"] for line in planned} >= {Outcome.PLANNED.value}
    assert all(line["step"] in STEPS for line in corpus if "step" in line)


def test_every_app_finishes_with_its_days_left(corpus: list[Line]) -> None:
    for run in named(corpus, "run.finished"):
        apps = [line for line in named(corpus, "app.finished") if line["run_id"] == run["run_id"]]
        assert all(isinstance(n, int) for n in run["counts"].values())
        assert set(run["counts"]) <= {o.value for o in Outcome}
        assert sum(run["counts"].values()) == len(apps)
        for line in apps:
            if line["outcome"] in ("rotated", "unchanged", "planned"):
                assert isinstance(line["days_left"], float | int), line
                assert datetime.fromisoformat(line["expires"])
            if line["outcome"] == "rotated":  # the new secret's, not the old one's
                assert line["days_left"] == pytest.approx(LIFETIME_DAYS, abs=0.1)
    verified = named(corpus, "smtp.verified")
    assert verified
    assert all(line["attempts"] >= 1 and line["seconds"] >= 0 for line in verified)


@pytest.mark.parametrize("query", queries.all_queries(), ids=lambda q: q.where)
def test_every_query_reads_what_the_product_writes(
    corpus: list[Line], query: queries.Query
) -> None:
    names = query.events()
    assert names, f"{query.where}: filters on no event"
    read = [events.BY_NAME[n] for n in names if n in events.BY_NAME]
    assert len(read) == len(names), f"{query.where}: unknown events {names - set(events.BY_NAME)}"
    live = [e for e in read if not e.planned]
    lines = [line for line in corpus if line["event"] in {e.name for e in live}]
    if live:
        assert lines, f"{query.where}: the product wrote none of {sorted(names)}"
    for line in lines:  # the query's own parsing finds the object behind the host's prefix
        message = "Host.Function.Console: " + json.dumps(line)
        assert query.parse_pattern().search(message)
    for path, conversion in query.conversions() | {(p, "tostring") for p in query.paths()}:
        field = path[0]
        owners = [e for e in read if field in e.allowed()]
        assert owners, f"{query.where}: body.{field} is in none of {sorted(names)}"
        if not any(not e.planned for e in owners):
            continue  # an empty state until the planned event is logged
        if len(path) > 1:  # a key of an object field: checked against the contract
            path, conversion = path[:1], "tostring"  # (tests/infra/test_workbook.py)
        values = [_at(line, path) for line in lines if line["event"] in {e.name for e in owners}]
        assert any(converts(conversion, v) for v in values), (
            f"{query.where}: {conversion}(body.{'.'.join(path)}) is null on every real line"
        )


def _at(line: Line, path: tuple[str, ...]) -> object:
    value: object = line
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value
