"""`python -m demo` (`make demo`): a real rotation against the local sandbox, step by step.

Nothing here is simulated on the rotator's side: the same RotationService the Function
App uses talks to the sandbox's Entra, Graph, Key Vault, ARM and SMTP relay through the
real SDKs and a real SMTP client. Only the sandbox's clock is moved forward, to show the
grace period ending without waiting two days.

Consumer checks are on: billing-app, declared fully covered, has an App Service site and
slot reading its password through Key Vault references; they confirm the new version
after the refresh and billing-app's old secret goes at once. reports-app's Functions app
confirms too, but reports-app is not declared fully covered, so it keeps its grace.

Then `doctor`, after a sender the rotator does not own has appeared: one failed check, with
the command that fixes it. Last, the HTTP API through function_app's triggers: no token gets
401, an operator holding Rotation.Read may dry-run but not rotate (403), one holding
Rotation.Rotate rotates, and the report names them (`requestedBy`). Last, a person pastes
a password into Key Vault by hand: Key Vault's event reaches the Event Grid trigger, which
tries it by SMTP AUTH, reports it, and the app is blocked until an operator resolves it.

It lives outside `rotation/` because it starts the sandbox, which is never deployed.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta

import aiosmtplib
from azure.keyvault.secrets.aio import SecretClient
from rich.console import Console
from rich.rule import Rule

from rotation import doctor
from rotation.azure.identity import build_credential
from rotation.azure.trust import connection_options, trusted_ssl_context
from rotation.model import RunOptions, RunReport
from rotation.render import consumers_table, report_table, status_table
from rotation.service import RotationService
from rotation.settings import Settings, load_settings
from rotation.telemetry import logs, redaction
from sandbox.api_app import User
from sandbox.demo import SENDER_ADDRESS, seed_demo
from sandbox.seed import Principal
from sandbox.server import Sandbox

PROPAGATION_DELAY = timedelta(seconds=3)


async def run_demo(console: Console) -> int:
    async with Sandbox(propagation_delay=PROPAGATION_DELAY) as sandbox:
        billing = seed_demo(sandbox, unowned=False)[0]
        env = sandbox.env(consumers_enabled="true", consumers_fully_covered=billing.client_id)
        os.environ.update(env)  # DefaultAzureCredential reads AZURE_* from the environment
        settings = load_settings(env)
        logs.configure("console", known_secrets=[env["AZURE_CLIENT_SECRET"]])
        logging.getLogger("sandbox").setLevel(logging.WARNING)  # the stand-in's own chatter
        console.print(Rule("sandbox"))
        console.print(
            f"Entra {sandbox.login_url}  Graph {sandbox.graph_url}  Key Vault {sandbox.vault_url}"
        )
        console.print(
            f"ARM {sandbox.arm_url}  SMTP {sandbox.smtp_host}:{sandbox.smtp_port}  CA {sandbox.ca_path}"
        )
        console.print(
            f"Storage (Azurite, per-app leases) {sandbox.lease_blob_url}/{sandbox.lease_container}"
        )
        console.print(
            f"new secrets start working {PROPAGATION_DELAY.seconds} s after creation, as in Entra"
        )

        async with RotationService.open(settings, clock=sandbox.state.clock.now) as service:
            console.print(Rule("1. discovery: ACS-enabled apps"))
            console.print(status_table(await service.status()))

            console.print(Rule("2. rotation: create -> verify (SMTP AUTH) -> promote (Key Vault)"))
            first = await service.run()
            console.print(report_table(first))
            console.print(
                Rule("2b. consumer sites refreshed: each confirms the new version it resolves")
            )
            console.print(
                consumers_table([(o.app_id, o.consumers) for o in first.outcomes if o.consumers])
            )
            early = next(o for o in first.outcomes if o.app_id == billing.client_id)
            console.print(
                f"billing-app is declared fully covered (ROTATION_CONSUMERS_FULLY_COVERED) and "
                f"every consumer confirmed: its old secret went at once "
                f"(removed {', '.join(k[:8] for k in early.removed_key_ids)}); the other apps "
                f"keep their {settings.grace_hours:g} h grace"
            )

            console.print(Rule("3. a consumer reads Key Vault and sends mail"))
            for app in (await service.survey()).apps:
                await _send_with_vault_password(settings, app.secret_name, console)

            console.print(Rule("4. 49 hours later: the grace period is over, old secrets go"))
            sandbox.state.clock.advance(timedelta(hours=settings.grace_hours + 1))
            second = await service.run()
            console.print(report_table(second))

            console.print(Rule("5. one more run right away changes nothing"))
            writes_before = _writes(sandbox.state.requests)
            third = await service.run()
            writes = _writes(sandbox.state.requests) - writes_before
            console.print(report_table(third))
            console.print(f"write requests to Graph and Key Vault in that run: {writes}")

            console.print(Rule("status"))
            rows = await service.status()
            console.print(status_table(rows))
            console.print(consumers_table([(r.app_id, r.consumers) for r in rows if r.consumers]))

            console.print(Rule("6. doctor, after someone adds a sender the rotator does not own"))
            resource = sandbox.state.resource_by_name("acs-contoso")
            legacy = sandbox.add_sender(resource, name="legacy-app", owned=False)
            checks = await doctor.diagnose(settings)
            doctor.render(checks, console)

            console.print(Rule("7. the HTTP API: operators sign in with Entra ID"))
            api_ok = await _call_the_api(sandbox, billing.client_id, console)

            console.print(Rule("8. someone pastes a password into Key Vault by hand: caught"))
            caught = await _hand_written_version(sandbox, settings, service, billing, console)
    confirmed_early = bool(early.consumers and early.consumers.confirmed) and (
        early.removed_key_ids == [billing.password.key_id]
    )
    failures = [c for c in checks if c.status == "fail"]
    doctor_ok = [c.name for c in failures] == [f"owner {legacy.app_id}"] and bool(failures[0].fix)
    ok = (
        all(r.ok for r in (first, second, third))
        and writes == 0
        and _rotated(first) == 3
        and confirmed_early
        and doctor_ok
        and api_ok
        and caught
    )
    console.print("[bold green]demo passed[/]" if ok else "[bold red]demo failed[/]")
    return 0 if ok else 1


async def _call_the_api(sandbox: Sandbox, app_id: str, console: Console) -> bool:
    """POST /api/rotations and GET /api/status through function_app's triggers, with the
    tokens Azure CLI would print for two operators (one holding Rotation.Read only)."""
    import azure.functions as func

    os.environ["ROTATION_LOG_FORMAT"] = "console"  # the demo's terminal, not Azure's JSON
    import function_app  # reads the settings from the environment, as the Functions host

    api = function_app.api
    handlers = {
        f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()
    }
    console.print(
        f"the API's application ID URI: {sandbox.api.identifier_uri} (its roles: "
        "Rotation.Read, Rotation.Rotate, Rotation.Emergency; assignment required)"
    )
    console.print(
        'in Azure: AUTH="Authorization: Bearer $(az account get-access-token --resource '
        f"{sandbox.api.identifier_uri} --query accessToken -o tsv)\"; here the sandbox's "
        "Entra issues the same token"
    )
    reader = sandbox.add_api_user(roles=["Rotation.Read"], name="reader@contoso.example")
    rotator = sandbox.add_api_user(roles=["Rotation.Rotate"], name="oncall@contoso.example")
    calls = [
        ("no token", "status", {}, None, 401),
        ("reader", "rotations", _auth(sandbox, reader), {"dryRun": True}, 200),
        ("reader", "rotations", _auth(sandbox, reader), {"appIds": [app_id], "mode": "force"}, 403),
        (
            "oncall",
            "rotations",
            _auth(sandbox, rotator),
            {"appIds": [app_id], "mode": "force"},
            200,
        ),
    ]
    ok = True
    try:
        for who, route, headers, body, expected in calls:
            data = json.dumps(body).encode() if body is not None else b""
            method = "POST" if route == "rotations" else "GET"
            request = func.HttpRequest(method, f"/api/{route}", body=data, headers=headers)
            response = await handlers[route](request)
            answer = json.loads(response.get_body())
            said = answer.get("error", {}).get("code") or f"requestedBy {answer.get('requestedBy')}"
            console.print(
                f"{who:>8}: {method} /api/{route} {json.dumps(body) if body else ''} -> "
                f"{response.status_code} {said}"
            )
            ok = ok and response.status_code == expected
    finally:
        await api.close()
    return ok


async def _hand_written_version(
    sandbox: Sandbox,
    settings: Settings,
    service: RotationService,
    sender: Principal,
    console: Console,
) -> bool:
    """A person adds a client secret in the portal and sets it in Key Vault. Key Vault's
    Event Grid event reaches function_app's key_vault_events trigger: the version is tried
    by SMTP AUTH (read-only), reported, and the app is blocked, nothing retired, until an
    operator resolves it."""
    import azure.functions as func

    import function_app

    name = settings.secret_name(sender.client_id)
    by_hand = sandbox.state.add_password(sender.app, display_name="added in the portal")
    version = await write_secret(settings, name, by_hand.secret_text)
    console.print(f"a person set version {version[:12]} of {name} (a secret made in the portal)")
    grid = sandbox.event_grid
    assert grid is not None
    (event,) = [e for e in grid.published if e["data"]["Version"] == version]
    binding = func.EventGridEvent(
        id=event["id"],
        data=event["data"],
        topic=event["topic"],
        subject=event["subject"],
        event_type=event["eventType"],
        event_time=None,
        data_version=event["dataVersion"],
    )
    try:
        # What the Functions host does with Event Grid's delivery: the trigger, called.
        await function_app.key_vault_events(binding)
    finally:
        await function_app.api.close()
    rows = await service.status([sender.client_id])
    console.print(status_table(rows))
    sandbox.state.clock.advance(timedelta(hours=settings.grace_hours + 1))
    keys = {p.key_id for p in sender.app.passwords}
    report = await service.run(RunOptions((sender.client_id,)))  # its next run, named
    console.print(report_table(report))
    outcome = next(o for o in report.outcomes if o.app_id == sender.client_id)
    kept = keys <= {p.key_id for p in sender.app.passwords}
    console.print(
        f"{sender.client_id[:8]}: {outcome.outcome.value}; every credential kept: {kept}. "
        "Resolve: python -m rotation run --app <app id> --force"
    )
    drift = rows[0].drift
    return (
        drift is not None
        and drift.smtp.value == "accepted"
        and outcome.outcome.value == "blocked"
        and kept
    )


async def write_secret(settings: Settings, name: str, value: str) -> str:
    """`az keyvault secret set`, as a person would run it (the real SDK, a new version)."""
    credential = build_credential(settings)
    async with (
        credential,
        SecretClient(settings.key_vault_url, credential, **connection_options(settings)) as client,
    ):
        secret = await client.set_secret(name, value, content_type="text/plain")
    return secret.properties.version or ""


def _auth(sandbox: Sandbox, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.user_token(user)}"}


async def _send_with_vault_password(settings: Settings, secret_name: str, console: Console) -> None:
    """What a consumer does: read username and password from Key Vault, then send."""
    username = await _read_secret(settings, f"{secret_name}-username")
    password = await _read_secret(settings, secret_name)
    message = f"From: {SENDER_ADDRESS}\r\nTo: ops@example.com\r\nSubject: demo\r\n\r\nhello\r\n"
    await aiosmtplib.send(
        message,
        sender=SENDER_ADDRESS,
        recipients=["ops@example.com"],
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        start_tls=True,
        tls_context=trusted_ssl_context(settings),
        username=username,
        password=password,
    )
    console.print(
        f"sent as [bold]{username}[/] with the password from Key Vault secret {secret_name}"
    )


async def _read_secret(settings: Settings, name: str) -> str:
    """The latest value of a Key Vault secret, as a consumer's own SDK client reads it (the
    rotator never reads a value). It joins the log redaction before anything can log it."""
    credential = build_credential(settings)
    async with (
        credential,
        SecretClient(settings.key_vault_url, credential, **connection_options(settings)) as client,
    ):
        value = (await client.get_secret(name)).value or ""
    redaction.register_secret(value)
    return value


def _writes(requests: dict[str, int]) -> int:
    return sum(
        n
        for key, n in requests.items()
        if key.split()[0] in ("graph", "vault")
        and key.split()[1] in ("POST", "PUT", "PATCH", "DELETE")
    )


def _rotated(report: RunReport) -> int:
    return sum(o.outcome.value == "rotated" for o in report.outcomes)
