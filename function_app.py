"""Azure Functions entry point (Python v2 model). It only wires triggers to rotation.http_api.

Settings are read and validated here, at start-up: a bad value stops the worker with one
line naming the setting, before any trigger can run.
"""

from __future__ import annotations

from pathlib import Path

import azure.functions as func

from rotation import logs
from rotation.http_api import Answer, Api, to_json
from rotation.settings import load_settings
from rotation.timebudget import load_timer_budget

settings = load_settings()
# The worker's own log handler carries records to Application Insights: keep it, redacting.
logs.configure(settings.log_format, keep_handlers=True)
# The timer run stops starting apps in time to end before host.json's functionTimeout.
api = Api(settings, timer_budget_seconds=load_timer_budget(Path(__file__).with_name("host.json")))
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
    return respond(await api.rotations(req.get_body()))


@app.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def status(req: func.HttpRequest) -> func.HttpResponse:
    return respond(await api.status())


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return respond(api.health())
