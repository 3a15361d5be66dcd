"""Azure Functions entry point (Python v2 model). It only wires triggers to rotation.http_api.

Settings are read and validated here, at start-up. A bad value no longer stops the worker:
every function still indexes, and each one answers (or, the timer, fails) with one line
naming the bad setting, never its value (rotation/misconfigured.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import azure.functions as func

from rotation.doctor import Site
from rotation.errors import SettingsError
from rotation.http_api import Answer, Api, doctor_format, to_json
from rotation.misconfigured import Misconfigured
from rotation.settings import InvalidSettings, Settings, load_settings
from rotation.telemetry import logs, redaction
from rotation.timebudget import load_timer_budget

site = Site.from_environment(os.environ)
settings: Settings | None
api: Api | Misconfigured
try:
    settings = load_settings()
    # The timer run stops starting apps in time to end before host.json's functionTimeout.
    budget = load_timer_budget(Path(__file__).with_name("host.json"))
except SettingsError as exc:  # settings, or host.json's functionTimeout: served, not raised
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
    api = Api(settings, site=site, timer_budget_seconds=budget)
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def respond(answer: Answer) -> func.HttpResponse:
    status, body = answer
    return func.HttpResponse(to_json(body), status_code=status, mimetype="application/json")


@app.timer_trigger(
    arg_name="timer", schedule="%ROTATION_SCHEDULE%", run_on_startup=False, use_monitor=True
)
async def rotation_timer(timer: func.TimerRequest) -> None:
    report = await api.timer()
    if not report["ok"]:
        failed = [a["appId"] for a in report["apps"] if a["outcome"] == "failed"]
        raise RuntimeError(f"rotation run {report['runId']}: {len(failed)} app(s) failed: {failed}")


@app.route(route="rotations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def rotations(req: func.HttpRequest) -> func.HttpResponse:
    # Headers and query name the caller in the log (never the key itself: rotation/caller.py).
    return respond(await api.rotations(req.get_body(), dict(req.headers), dict(req.params)))


@app.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def status(req: func.HttpRequest) -> func.HttpResponse:
    return respond(await api.status())


@app.route(route="doctor", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def doctor(req: func.HttpRequest) -> func.HttpResponse:
    wanted = doctor_format(req.params)
    if not isinstance(wanted, str):  # an unknown format: the 400 naming the known ones
        return respond(wanted)
    if wanted == "text":  # the lines the command line prints (what azd up shows at its end)
        status, text = await api.doctor_text()
        return func.HttpResponse(text, status_code=status, mimetype="text/plain", charset="utf-8")
    return respond(await api.doctor())


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return respond(api.health())
