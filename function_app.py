"""Azure Functions entry point (Python v2 model). It only wires triggers to rotation.http_api.

Settings are read and validated here, at start-up. A bad value no longer stops the worker:
every function still indexes, and each one answers (or, the timer, fails) with one line
naming the bad setting, never its value (rotation/misconfigured.py). What only the timer
needs (host.json's functionTimeout, ROTATION_SCHEDULE in Azure) is refused by the timer,
health and doctor alone: the HTTP routes and Key Vault events keep working.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import azure.functions as func

from rotation.auth import challenge
from rotation.doctor import Site
from rotation.errors import SettingsError
from rotation.http_api import Answer, Api, doctor_format, to_json
from rotation.misconfigured import Misconfigured
from rotation.settings import InvalidSettings, Settings, load_settings
from rotation.telemetry import logs, redaction
from rotation.timebudget import require_schedule, timer_budget

site = Site.from_environment(os.environ)
settings: Settings | None
api: Api | Misconfigured
try:
    settings = load_settings()
except SettingsError as exc:  # served, not raised: every function answers with the line
    settings = None
    logs.configure(
        "json" if site.in_azure else "auto",
        keep_handlers=True,
        known_secrets=redaction.secrets_in(os.environ),
    )
    api = Misconfigured(exc.public if isinstance(exc, InvalidSettings) else str(exc), site)
else:
    # The worker's own log handler carries records to Application Insights: keep it, redacting.
    # Every record is scrubbed when it is made, for any handler added later too (redaction.py); the
    # rotator's own client secret, when it signs in with one, is among what is scrubbed.
    logs.configure(
        settings.log_format,
        level=logging.getLevelName(settings.log_level),
        keep_handlers=True,
        known_secrets=redaction.secrets_in(os.environ),
    )
    budget: float | None = None
    timer_refusal: str | None = None
    try:
        # The timer run stops starting apps in time to end before host.json's functionTimeout,
        # which must leave room for one app's worst case; the host reads the schedule itself.
        budget = timer_budget(Path(__file__).with_name("host.json"), settings)
        require_schedule(settings, site.in_azure)
    except SettingsError as exc:  # the timer's alone: health, doctor and the timer refuse
        timer_refusal = str(exc)
    api = Api(settings, site=site, timer_budget_seconds=budget, timer_refusal=timer_refusal)
# Every HTTP route is anonymous to the Functions host: the host's authLevel only asks for a
# function key (`function`) or the master key (`admin`), and a function key would then be
# needed next to the caller's token while proving nothing about who calls. Who may call is
# decided in the app, from the caller's Entra ID token (rotation/auth.py), on every route but
# health. So function keys authorize nothing here.
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def respond(answer: Answer) -> func.HttpResponse:
    status, body = answer
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    header = challenge(status, code) if isinstance(code, str) else None
    return func.HttpResponse(
        to_json(body),
        status_code=status,
        mimetype="application/json",
        headers={"WWW-Authenticate": header} if header else None,
    )


@app.timer_trigger(
    arg_name="timer", schedule="%ROTATION_SCHEDULE%", run_on_startup=False, use_monitor=True
)
async def rotation_timer(timer: func.TimerRequest) -> None:
    report = await api.timer()
    if not report["ok"]:
        failed = [a["appId"] for a in report["apps"] if a["outcome"] == "failed"]
        if not failed:  # due apps, none started: a failure too (RunReport.starved)
            raise RuntimeError(
                f"rotation run {report['runId']}: {len(report['unfinished'])} app(s) due and "
                "none started: the run's time budget fitted no app"
            )
        raise RuntimeError(f"rotation run {report['runId']}: {len(failed)} app(s) failed: {failed}")


@app.route(route="rotations", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def rotations(req: func.HttpRequest) -> func.HttpResponse:
    return respond(await api.rotations(req.get_body(), dict(req.headers)))


@app.route(route="status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def status(req: func.HttpRequest) -> func.HttpResponse:
    return respond(await api.status(dict(req.headers)))


@app.route(route="doctor", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def doctor(req: func.HttpRequest) -> func.HttpResponse:
    wanted = doctor_format(req.params)
    if not isinstance(wanted, str):  # an unknown format: the 400 naming the known ones
        return respond(wanted)
    if wanted == "text":  # the lines the command line prints (what azd up shows at its end)
        answer = await api.doctor_text(dict(req.headers))
        if isinstance(answer[1], dict):  # refused: the JSON problem, with its challenge
            return respond((answer[0], answer[1]))
        status, text = answer
        return func.HttpResponse(text, status_code=status, mimetype="text/plain", charset="utf-8")
    return respond(await api.doctor(dict(req.headers)))


def event_body(event: func.EventGridEvent) -> dict[str, object]:
    """The delivered event in Event Grid's schema again (the binding split it into fields),
    for rotation/vault_events.py to parse and judge."""
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


# Key Vault's events (near expiry, expired, new version) through the vault's Event Grid
# system topic; infra/modules/eventgrid.bicep subscribes this function by name.
@app.event_grid_trigger(arg_name="event")
async def key_vault_events(event: func.EventGridEvent) -> None:
    await api.vault_event(event_body(event))


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return respond(api.health())
