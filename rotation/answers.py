"""The JSON answers of the HTTP API and of the CLI's ``--json``, as pydantic models.

One model per shape a client receives, with camelCase names on the wire. Each is built
from the plain data of `rotation.model` (and the status rows, doctor checks and error
bodies) by its `of` method, and `body()` gives the JSON-ready dict. docs/openapi.yaml's
``components/schemas`` are generated from these models (`python -m tests.openapi_doc`),
and a test fails when the two differ, so a change here is a change to the documented API.

No model holds a secret value: what goes in is what the reports already carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from rotation import doctor, model
from rotation.core.drift import RESOLVE
from rotation.doctor import shared
from rotation.error_codes import ErrorCode
from rotation.model import Action, AppState, Mode, Outcome, UsernameSource
from rotation.telemetry import redaction

if TYPE_CHECKING:
    from rotation import service

#: A UTC time on the wire as Python's isoformat writes it ("...+00:00", microseconds when
#: there are any): what clients have always received, rather than pydantic's "Z" form.
Time = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class AnswerModel(BaseModel):
    """camelCase on the wire, snake_case in Python; immutable once built."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True, frozen=True
    )

    def body(self) -> dict[str, Any]:
        """The JSON-ready dict (strings, numbers, lists, dicts), as clients receive it."""
        return self.model_dump(mode="json")


def _absent_when_none(value: object) -> bool:
    return value is None


class ConsumerReference(AnswerModel):
    site: str = Field(description="resource id of the site or slot")
    setting: str = Field(
        description="the app setting (or connection string: see settingType) holding the reference"
    )
    vault_name: str
    secret_name: str
    status: str = Field(
        description="App Service's ResolveStatus: Resolved, SecretNotFound, "
        "AccessToKeyVaultDenied, ...; empty when App Service reported none"
    )
    pinned_version: str | None = Field(
        description="the version the reference names; such a reference never follows a rotation"
    )
    active_version: str | None = Field(description="the version the site resolved")
    details: str | None = Field(description="App Service's own details text")
    confirmed: Time | None = Field(description="when it was seen resolving the current version")
    problem: str | None = Field(
        description="why it holds an early retirement: pinned, not resolved (with the "
        "details), or App Service did not report its status or the version it serves"
    )
    setting_type: model.SettingType = Field(
        description="whether `setting` is an app setting or a connection string of the site"
    )

    @classmethod
    def of(cls, ref: model.ConsumerReference, problem: str | None) -> ConsumerReference:
        return cls(
            site=ref.site_id,
            setting=ref.setting,
            vault_name=ref.vault_name,
            secret_name=ref.secret_name,
            status=ref.status,
            pinned_version=ref.pinned_version,
            active_version=ref.active_version,
            details=ref.details,
            confirmed=ref.confirmed_at,
            problem=problem,
            setting_type=ref.setting_type,
        )


class ConsumerCheck(AnswerModel):
    """The App Service / Functions sites (slots included) whose app settings or connection
    strings reference the app's secret or its -username companion, against the Key Vault
    version served now."""

    version: str | None = Field(description="current Key Vault version of the password")
    confirmed: bool = Field(
        description="Every site answered, every reference resolved, none is pinned, at least "
        "one references the password and each of those resolves `version`. Only then may a "
        "fully covered app's old secrets go before the grace period ends."
    )
    references: list[ConsumerReference]
    unreachable: list[str] = Field(
        description="<site or subscription>: <why> for each that could not be read or refreshed"
    )

    @classmethod
    def of(cls, check: model.ConsumerCheck | None) -> ConsumerCheck | None:
        if check is None:
            return None
        return cls(
            version=check.version,
            confirmed=check.confirmed,
            references=[ConsumerReference.of(r, check.problem_of(r)) for r in check.references],
            unreachable=list(check.unreachable),
        )


class AppOutcome(AnswerModel):
    """What a run did with one app, and why."""

    app_id: str
    secret_name: str
    action: Action
    reason: str
    outcome: Outcome
    new_key_id: str | None
    removed_key_ids: list[str]
    expires: Time | None
    duration_seconds: float
    error: str | None
    consumers: ConsumerCheck | None = Field(
        description="Only with ROTATION_CONSUMERS_ENABLED. After a promotion: what each "
        "consumer site resolved once refreshed; otherwise what the run's scan saw."
    )
    cleanup_failures: list[str] = Field(
        description="Removals that failed (a rollback of the new credential, a retirement of "
        "an old one), each with its reason; the next run tries again (orphans: I5)."
    )
    held_by: str | None = Field(
        description="Busy: the run id of the run holding the app, when known (null: the "
        "holder did not say, or the app is not busy)."
    )

    @classmethod
    def of(cls, o: model.AppOutcome) -> AppOutcome:
        return cls(
            app_id=o.app_id,
            secret_name=o.secret_name,
            action=o.action,
            reason=o.reason,
            outcome=o.outcome,
            new_key_id=o.new_key_id,
            removed_key_ids=list(o.removed_key_ids),
            expires=o.expires,
            duration_seconds=round(o.duration_seconds, 3),
            error=o.error,
            consumers=ConsumerCheck.of(o.consumers),
            cleanup_failures=list(o.cleanup_failures),
            held_by=o.held_by,
        )


class RequestedBy(AnswerModel):
    """Who asked for the run: ids and a sign-in name, never a token."""

    type: Literal["user", "app", "timer", "cli", "event"] = Field(
        description="a user or a workload (app-only token) of the HTTP API, the timer, the "
        "CLI, or a Key Vault event (near expiry, expired)"
    )
    object_id: str | None = Field(description="Entra object id of the user or service principal")
    app_id: str | None = Field(description="client application the token was issued to (azp)")
    name: str | None = Field(description="the user's sign-in name; user@host for the CLI")
    role: str | None = Field(description="the API's app role the request used")

    @classmethod
    def of(cls, requester: model.Requester | None) -> RequestedBy | None:
        if requester is None:
            return None
        return cls(
            type=requester.type,
            object_id=requester.object_id,
            app_id=requester.app_id,
            name=requester.name,
            role=requester.role,
        )


class RunReport(AnswerModel):
    """One run's report (no secret values): each app's outcome, and the apps to look at."""

    run_id: str
    mode: Mode
    dry_run: bool
    started: Time
    finished: Time | None
    ok: bool = Field(
        description="false when any app failed, or when apps were due and the run started "
        "none of them (its time budget fitted no app)"
    )
    counts: dict[str, int] = Field(description="how many apps ended with each outcome")
    unfinished: list[str] = Field(
        description="Apps the run had no time for; the next run takes them."
    )
    busy: list[str] = Field(description="Apps another run held; left to it.")
    blocked: list[str] = Field(
        description="Apps an operator must act on first; the fix is in each app's error."
    )
    apps: list[AppOutcome]
    requested_by: RequestedBy | None = Field(description="who asked for the run")

    @classmethod
    def of(cls, report: model.RunReport) -> RunReport:
        return cls(
            run_id=report.run_id,
            mode=report.mode,
            dry_run=report.dry_run,
            started=report.started,
            finished=report.finished,
            ok=report.ok,
            counts=report.counts,
            unfinished=[o.app_id for o in report.unfinished],
            busy=[o.app_id for o in report.busy],
            blocked=[o.app_id for o in report.blocked],
            apps=[AppOutcome.of(o) for o in report.outcomes],
            requested_by=RequestedBy.of(report.requested_by),
        )


class Username(AnswerModel):
    username: str
    source: UsernameSource


class Drift(AnswerModel):
    """A current Key Vault version the rotator did not write (rotation/core/drift.py)."""

    version: str
    appeared: Time = Field(description="when the version was created in Key Vault")
    seen: Time | None = Field(description="when the rotator caught and checked it (its event)")
    smtp: model.SmtpCheck = Field(
        description="whether SMTP AUTH accepted its password (read-only check)"
    )
    fix: str = Field(description="how an operator resolves it")

    @classmethod
    def of(cls, found: model.Drift | None) -> Drift | None:
        if found is None:
            return None
        return cls(
            version=found.version,
            appeared=found.appeared,
            seen=found.seen,
            smtp=found.smtp,
            fix=RESOLVE,
        )


class StatusRow(AnswerModel):
    """One managed app (or a skipped sender) as `status` shows it."""

    app_id: str
    smtp_username: str = Field(
        description="the username new secrets are proven with (empty for a skipped sender)"
    )
    smtp_username_source: UsernameSource | None
    usernames: list[Username] = Field(
        description="every username the app is known by, the proven one first, with where "
        "it came from"
    )
    secret_name: str
    key_id: str | None
    expires: Time | None
    days_left: float | None
    vault_version: str | None
    credentials: int
    state: AppState
    reason: str | None = Field(
        description="why a sender is skipped (a managed identity, another tenant's app)"
    )
    consumers: ConsumerCheck | None = Field(
        description="Only with ROTATION_CONSUMERS_ENABLED; what each consumer site resolves now."
    )
    drift: Drift | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="Only with state drift: the hand-written version, and its SMTP check.",
    )

    @classmethod
    def of(cls, row: service.StatusRow) -> StatusRow:
        return cls(
            app_id=row.app_id,
            smtp_username=row.smtp_username,
            smtp_username_source=row.usernames[0][1] if row.usernames else None,
            usernames=[Username(username=u, source=source) for u, source in row.usernames],
            secret_name=row.secret_name,
            key_id=row.key_id,
            expires=row.expires,
            days_left=None if row.days_left is None else round(row.days_left, 1),
            vault_version=row.vault_version,
            credentials=row.credentials,
            state=row.state,
            reason=row.reason,
            consumers=ConsumerCheck.of(row.consumers),
            drift=Drift.of(row.drift),
        )


class Status(AnswerModel):
    """Every managed app, its current key, expiry and Key Vault version."""

    apps: list[StatusRow]

    @classmethod
    def of(cls, rows: Sequence[service.StatusRow]) -> Status:
        return cls(apps=[StatusRow.of(r) for r in rows])


class DoctorCheck(AnswerModel):
    check: str
    status: shared.Status
    detail: str
    fix: str | None = Field(description="The command that fixes it (when not ok).")

    @classmethod
    def of(cls, check: doctor.Check) -> DoctorCheck:
        return cls(check=check.name, status=check.status, detail=check.detail, fix=check.fix)


class DoctorReport(AnswerModel):
    """Every prerequisite checked against the live services; `ok` is false when any failed."""

    ok: bool
    checks: list[DoctorCheck]

    @classmethod
    def of(cls, checks: Sequence[doctor.Check]) -> DoctorReport:
        return cls(ok=doctor.ok(checks), checks=[DoctorCheck.of(c) for c in checks])


class ProblemDetail(AnswerModel):
    """The optional members appear only in the answers that have them."""

    code: ErrorCode = Field(
        description="for programs: each code's status and routes are in rotation/error_codes.py"
    )
    message: str
    # Absent rather than null when not given: SkipJsonSchema keeps None out of the schema.
    field: str | SkipJsonSchema[None] = Field(default=None, exclude_if=_absent_when_none)
    key: str | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="the duplicated key (duplicate_key)",
    )
    app_ids: list[str] | SkipJsonSchema[None] = Field(default=None, exclude_if=_absent_when_none)
    report: RunReport | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="With 409 after a run, what this request did with the apps that were not busy.",
    )

    @classmethod
    def of(
        cls,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        key: str | None = None,
        app_ids: list[str] | None = None,
        report: model.RunReport | None = None,
    ) -> ProblemDetail:
        """`code` for programs, `message` for people: scrubbed once more here (I6)."""
        return cls(
            code=code,
            message=redaction.scrub(message),
            field=field,
            key=key,
            app_ids=app_ids,
            report=None if report is None else RunReport.of(report),
        )


class Problem(AnswerModel):
    """What was wrong (`error.code` says what, for programs). Nothing was changed, except
    with 409 rotation_in_progress after a run: its `error.report` says what it did."""

    error: ProblemDetail


class Health(AnswerModel):
    status: Literal["up"]


class Misconfigured(AnswerModel):
    """The settings are invalid; the message names each one, never its value."""

    status: Literal["misconfigured"]
    error: ProblemDetail


class DoctorMisconfigured(DoctorReport):
    """The settings are invalid; the one check is `settings`, failed."""

    error: ProblemDetail

    @classmethod
    def refusing(cls, checks: Sequence[doctor.Check], error: ProblemDetail) -> DoctorMisconfigured:
        return cls(ok=doctor.ok(checks), checks=[DoctorCheck.of(c) for c in checks], error=error)
