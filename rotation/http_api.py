"""The HTTP API's rules, free of azure.functions so they can be tested and fuzzed directly.

`Api` answers each route with (status, JSON body). A request is validated completely
before anything runs: malformed JSON, unknown fields, ids that are not GUIDs, ids outside
the managed set and unknown modes get a 4xx that names the problem, and nothing rotates.
Answers must beat the Azure front end's 230 s limit, so the HTTP path caps verification
and the run; what it could not finish is listed, and the next timer run completes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import structlog
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from rotation import answers
from rotation.auth import Caller, Refusal, Role, TokenCheck, client_address
from rotation.doctor import Check, Site, diagnose, ok, settings_failed
from rotation.doctor import text as doctor_lines
from rotation.error_codes import CODES, ErrorCode
from rotation.errors import LeaseStoreUnavailable, RotationError, SettingsError, describe
from rotation.model import AppOutcome, Mode, Requester, RunOptions, RunReport
from rotation.service import RotationService, UnknownApps
from rotation.settings import Settings, canonical_guid
from rotation.telemetry import logs, redaction
from rotation.telemetry.redaction import echo

MAX_BODY_BYTES = 64 * 1024
#: Seconds an HTTP-triggered run may take; the front end cuts connections at 230 s.
HTTP_RUN_BUDGET_SECONDS = 200.0

Answer = tuple[int, dict[str, Any]]
#: (status, plain text): ``GET /api/doctor?format=text``, the lines `doctor` prints.
TextAnswer = tuple[int, str]
#: What ``GET /api/doctor`` answers in (``format``): JSON unless asked for text.
DOCTOR_FORMATS = ("json", "text")
#: How docs/openapi.yaml describes an app id (the validator below accepts GUIDs only).
UUID = WithJsonSchema({"type": "string", "format": "uuid"})
log = logs.get_logger("rotation.http")


class RotationRequest(BaseModel):
    """Body of POST /api/rotations. Every field is optional; {} means every due app. Keys
    may not repeat (400 duplicate_key). mode emergency needs a non-empty appIds (400
    emergency_needs_app_ids): an emergency over every app is CLI-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_ids: Annotated[list[Annotated[str, UUID]], Field(alias="appIds", max_length=1000)] = []
    mode: Mode = Mode.DUE
    dry_run: Annotated[bool, Field(alias="dryRun", strict=True)] = False

    @field_validator("app_ids")
    @classmethod
    def _guids(cls, values: list[str]) -> list[str]:
        guids = [canonical_guid(v) for v in values]
        bad = [v for v, guid in zip(values, guids, strict=True) if guid is None]
        if bad:
            raise ValueError(f"not GUIDs: {', '.join(echo(b) for b in bad[:5])}")
        return [guid for guid in guids if guid is not None]


def doctor_format(params: Mapping[str, str]) -> str | Answer:
    """The ``format`` a doctor request asks for, or the 400 naming the ones there are."""
    wanted = params.get("format", "json").lower()
    if wanted in DOCTOR_FORMATS:
        return wanted
    return problem(
        400,
        "invalid_request",
        f"format: {echo(wanted)} is not one of {', '.join(DOCTOR_FORMATS)}",
        field="format",
    )


def problem(
    status: int,
    code: ErrorCode,
    message: str,
    *,
    field: str | None = None,
    key: str | None = None,
    app_ids: list[str] | None = None,
    report: RunReport | None = None,
) -> Answer:
    detail = answers.ProblemDetail.of(
        code, message, field=field, key=key, app_ids=app_ids, report=report
    )
    return status, answers.Problem(error=detail).body()


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NotJson(ValueError):
    """NaN, Infinity and -Infinity: Python's json reads them, RFC 8259 does not allow them."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys silently: {"mode": "due", "mode": "force"}
    # would run a forced rotation. RFC 8259 leaves duplicates' meaning open; refuse them.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _reject_constant(name: str) -> Any:
    raise _NotJson(name)


def _load_json(body: bytes) -> Any | Answer:
    """The parsed body, or the 400 saying why it cannot be read. No input raises: deep
    nesting (RecursionError), integer literals past Python's 4,300-digit limit
    (ValueError) and the rest are all answered."""
    try:
        return json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        return problem(
            400,
            "duplicate_key",
            f"the key {echo(exc.key)} appears twice in one object",
            key=echo(exc.key, quoted=False),
        )
    except _NotJson as exc:
        return problem(400, "malformed_json", f"the body is not valid JSON: {exc} is not JSON")
    except RecursionError:
        return problem(400, "malformed_json", "the body is not valid JSON: nested too deeply")
    except UnicodeDecodeError:
        return problem(400, "malformed_json", "the body is not valid JSON: it is not UTF-8")
    except json.JSONDecodeError as exc:
        return problem(400, "malformed_json", f"the body is not valid JSON: {exc}")
    except ValueError:  # int("9" * 5000): Python refuses integer literals past 4,300 digits
        return problem(400, "malformed_json", "the body is not valid JSON: a number is too long")


def parse_rotation_request(body: bytes) -> RotationRequest | Answer:
    """The validated request, or the 4xx answer explaining why it is refused."""
    if len(body) > MAX_BODY_BYTES:
        return problem(413, "body_too_large", f"the body may be at most {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return RotationRequest()
    data = _load_json(body)
    if isinstance(data, tuple):
        return data
    if not isinstance(data, dict):
        return problem(400, "invalid_request", "the body must be a JSON object")
    try:
        request = RotationRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # The location may be the caller's own key (an unknown field): shown cut, like
        # every echoed name (rotation/telemetry/redaction.py's echo).
        field = echo(".".join(str(p) for p in first["loc"]), quoted=False) or "body"
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field (allowed: appIds, mode, dryRun)"
        if first["type"] == "enum":
            message = "unknown mode (allowed: due, force, emergency)"
        return problem(400, "invalid_request", f"{field}: {redaction.scrub(message)}", field=field)
    if request.mode is Mode.EMERGENCY and not request.app_ids:
        return problem(
            400,
            "emergency_needs_app_ids",
            "mode emergency removes every other secret of each app at once, so it must name "
            "its apps: give a non-empty appIds. An emergency rotation of every app is only "
            "possible from the command line (python -m rotation run --emergency --all-apps).",
            field="appIds",
        )
    return request


def role_for(request: RotationRequest) -> Role:
    """The app role a run needs: a dry run reads only; an emergency removes old secrets at
    once, so it has a role of its own."""
    if request.dry_run:
        return Role.READ
    return Role.EMERGENCY if request.mode is Mode.EMERGENCY else Role.ROTATE


class Api:
    """The routes, over one RotationService made on first use and kept for the process.

    Every route but health first checks the caller's Entra ID token (rotation/auth.py): 401
    without a valid one, 403 without the role the request needs. The caller's ids and the
    role used are bound to every log line the request writes, its run's included, and the
    run's report names them (`requestedBy`)."""

    def __init__(
        self,
        settings: Settings,
        open_service: Callable[[Settings], RotationService] = RotationService.open,
        *,
        timer_budget_seconds: float | None = None,
        timer_refusal: str | None = None,
        site: Site | None = None,
        tokens: TokenCheck | None = None,
    ) -> None:
        """`timer_budget_seconds`: how long the timer run may take (function_app.py
        derives it from host.json's functionTimeout; None: no limit). `timer_refusal`: why
        no timer run can work (a functionTimeout too short for one app, ROTATION_SCHEDULE
        unset in Azure), or None. Only the timer, health and doctor refuse with it: the
        other routes and Key Vault events have their own budgets, and an emergency never
        waits for the timer to be mended. `tokens`: how callers' tokens are checked
        (default: against ROTATION_TENANT_ID's published keys, for ROTATION_API_CLIENT_ID)."""
        self.settings = settings
        self.timer_budget_seconds = timer_budget_seconds
        self.timer_refusal = timer_refusal
        self.site = site or Site()
        self._open_service = open_service
        self._service: RotationService | None = None
        self._tokens = tokens

    @property
    def service(self) -> RotationService:
        if self._service is None:
            self._service = self._open_service(self.settings)
        return self._service

    @property
    def tokens(self) -> TokenCheck | None:
        """None while ROTATION_API_CLIENT_ID is unset: then nobody can be authorized."""
        if self._tokens is None and self.settings.api_client_id is not None:
            from rotation.azure.signing_keys import SigningKeys

            self._tokens = TokenCheck(
                SigningKeys.from_settings(self.settings),
                audience=self.settings.api_client_id,
                tenant_id=self.settings.tenant_id,
            )
        return self._tokens

    async def close(self) -> None:
        if self._service is not None:
            await self._service.aclose()
            self._service = None

    def health(self) -> Answer:
        if self.timer_refusal is not None:  # up, but the schedule would silently do nothing
            error = answers.ProblemDetail.of("invalid_settings", self.timer_refusal)
            return 503, answers.Misconfigured(status="misconfigured", error=error).body()
        return 200, answers.Health(status="up").body()

    async def _diagnose(self) -> list[Check]:
        """Doctor's checks, the settings line failed with the timer's refusal if there is one."""
        checks = await diagnose(self.settings, self.site)
        if self.timer_refusal is None:
            return checks
        refused = settings_failed(self.timer_refusal, self.site)
        return [refused if c.name == "settings" else c for c in checks]

    async def _caller(self, route: str, headers: Mapping[str, str]) -> Caller | Answer:
        """The caller whose token passed, or the refusal (logged with its reason)."""
        tokens = self.tokens
        try:
            if tokens is None:
                raise Refusal(
                    503,
                    "api_not_configured",
                    "ROTATION_API_CLIENT_ID is not set, so no caller can be authorized: set it "
                    "to the client id of the API's app registration (azd up does)",
                )
            return await tokens.caller(headers)
        except Refusal as refusal:
            return _refused(route, refusal, headers)

    async def _reader(self, route: str, headers: Mapping[str, str]) -> Requester | Answer:
        """The caller, if their token passed and holds Rotation.Read; else the refusal."""
        caller = await self._caller(route, headers)
        if isinstance(caller, tuple):
            return caller
        try:
            return caller.acting_as(Role.READ)
        except Refusal as refusal:
            return _refused(route, refusal, headers, caller)

    async def status(self, headers: Mapping[str, str]) -> Answer:
        requester = await self._reader("status", headers)
        if isinstance(requester, tuple):
            return requester
        with _audited("status", requester):
            try:
                rows = await self.service.status()
            except RotationError as exc:
                return problem(502, "upstream_failed", describe(exc))
            return 200, answers.Status.of(rows).body()

    async def rotations(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Token (401), body (4xx), the role the run's mode needs (403), then busy (409)."""
        caller = await self._caller("rotations", headers)
        if isinstance(caller, tuple):
            return caller
        parsed = parse_rotation_request(body)
        if not isinstance(parsed, RotationRequest):
            refusal = Refusal(parsed[0], _code(parsed), str(parsed[1]["error"]["message"]))
            _refused("rotations", refusal, headers, caller)
            return parsed
        try:
            requester = caller.acting_as(role_for(parsed))
        except Refusal as refusal:
            return _refused("rotations", refusal, headers, caller)
        with _audited("rotations", requester):
            # No run refuses another as a whole: each app's lease (and, within this instance,
            # its busy mark) decides who works on it, so an emergency never waits behind a
            # timer run over other apps. Apps another run holds come back busy, named in the
            # 409 of `_run`.
            log.info(
                "http.rotation_requested",
                mode=parsed.mode.value,
                dry_run=parsed.dry_run,
                app_ids=",".join(parsed.app_ids) or "all",
            )
            return await self._run(parsed, requester)

    async def _run(self, request: RotationRequest, requester: Requester) -> Answer:
        try:
            options = RunOptions(
                tuple(request.app_ids),
                request.mode,
                request.dry_run,
                verify_timeout=self.settings.http_verify_timeout_seconds,
                budget_seconds=HTTP_RUN_BUDGET_SECONDS,
                requested_by=requester,
            )
            report = await self.service.run(options)
        except UnknownApps as exc:
            return problem(404, "unknown_apps", describe(exc), app_ids=exc.app_ids)
        except LeaseStoreUnavailable as exc:
            return problem(503, "lease_store_unavailable", describe(exc))
        except RotationError as exc:
            return problem(502, "upstream_failed", describe(exc))
        log.info("http.rotation_answered", run_id=report.run_id, ok=report.ok)
        if report.busy:
            # Another run (here or on another instance) holds these apps' leases; the
            # report says what this request did with the others.
            return problem(
                409,
                "rotation_in_progress",
                f"{len(report.busy)} of these apps are held by another run ("
                f"{_held(report.busy)}); retry once it has ended",
                app_ids=[o.app_id for o in report.busy],
                report=report,
            )
        return 200, answers.RunReport.of(report).body()

    async def doctor(self, headers: Mapping[str, str]) -> Answer:
        """Every prerequisite checked against the live services: 200 when none failed, 503
        (the rotator is not ready to rotate) with the same report when any did."""
        requester = await self._reader("doctor", headers)
        if isinstance(requester, tuple):
            return requester
        with _audited("doctor", requester):
            checks = await self._diagnose()
            return (200 if ok(checks) else 503), answers.DoctorReport.of(checks).body()

    async def doctor_text(self, headers: Mapping[str, str]) -> TextAnswer | Answer:
        """The same checks and status, as the lines `python -m rotation doctor` prints (a
        refusal stays the JSON problem answer)."""
        requester = await self._reader("doctor", headers)
        if isinstance(requester, tuple):
            return requester
        with _audited("doctor", requester):
            checks = await self._diagnose()
            return (200 if ok(checks) else 503), doctor_lines(checks)

    async def timer(self) -> dict[str, Any]:
        """The scheduled run: every due app, with the full verify timeout. Within its
        budget it starts only apps it can finish; the rest are reported unfinished and
        the next scheduled run takes them (a first run over thousands of apps spreads
        over several), so the host never kills it. A run that fails before its report
        (discovery, an ARM or Graph 403) logs `run.failed`, so the alerts hear of it at
        once instead of through two days of silence."""
        if self.timer_refusal is not None:  # a failed invocation, which the alerts watch
            log.error("run.failed", error_type="SettingsError", error=self.timer_refusal)
            raise SettingsError(self.timer_refusal)
        timer = Requester(type="timer")
        try:
            # Tags the run's lines: the workbook's last-run mark reads scheduled runs only.
            with structlog.contextvars.bound_contextvars(trigger="timer", **timer.log_fields()):
                options = RunOptions(
                    budget_seconds=self.timer_budget_seconds, whole_apps=True, requested_by=timer
                )
                report = await self.service.run(options)
        except Exception as exc:
            log.error("run.failed", error_type=type(exc).__name__, error=describe(exc))
            raise
        return answers.RunReport.of(report).body()

    async def vault_event(self, raw: Any) -> None:
        """One Key Vault event from Event Grid (rotation/vault_watch.py), which logs what
        became of it. A malformed event is dropped, never raised; an Azure failure raises,
        so Event Grid delivers the event again later."""
        from rotation.vault_watch import VaultWatch

        try:
            await VaultWatch(self.service).handle(raw)
        except Exception as exc:
            log.error("run.failed", error_type=type(exc).__name__, error=describe(exc))
            raise


def _held(busy: list[AppOutcome]) -> str:
    """Which run holds which busy apps: "run 3f9a0c...: a, b; unnamed: c" (a holder is
    unnamed when the lease store could not say)."""
    by_run: dict[str | None, list[str]] = {}
    for outcome in busy:
        by_run.setdefault(outcome.held_by, []).append(outcome.app_id)
    return "; ".join(
        f"{f'run {run}' if run else 'unnamed'}: {', '.join(apps)}" for run, apps in by_run.items()
    )


@contextmanager
def _audited(route: str, requester: Requester) -> Iterator[None]:
    """The caller's ids and role on every line the request logs, its run's included."""
    with structlog.contextvars.bound_contextvars(**requester.log_fields()):
        log.info("http.authorized", route=route)
        yield


def _refused(
    route: str, refusal: Refusal, headers: Mapping[str, str], caller: Caller | None = None
) -> Answer:
    """Logs a refused call (its reason, the caller's ids when its token passed, the client's
    address as the platform forwarded it) and answers it."""
    known = {}
    if caller is not None:
        known = {
            "caller_type": caller.type,
            "caller_object_id": caller.object_id,
            "caller_app_id": caller.app_id,
        } | ({"caller_name": caller.name} if caller.name else {})
    log.warning(
        "http.refused",
        route=route,
        status=refusal.status,
        code=refusal.code,
        reason=redaction.scrub(refusal.message),
        **client_address(headers),
        **known,
    )
    return problem(refusal.status, refusal.code, refusal.message)


def _code(answer: Answer) -> ErrorCode:
    code = answer[1].get("error", {}).get("code")
    return code if code in CODES else "invalid_request"  # always one: our own 4xx answers


def to_json(body: dict[str, Any]) -> str:
    """The wire form of an answer, scrubbed once more as a last line of defence (I6)."""
    return redaction.scrub(json.dumps(body, default=str))
