"""The JSON answers of the HTTP API and of the CLI's ``--json``, as pydantic models.

One model per shape a client receives, with camelCase names on the wire. Each is read from
the plain data of `rotation.model` (and the status rows and doctor checks) by pydantic
itself (`from_attributes`: `of` is `model_validate`), so a field is named once, here; only
a name that differs from the model's (a validation alias) or a value shown rounded is
said, by the field. `body()` gives the JSON-ready dict; the CLI's ``--json`` prints the same
models the HTTP API answers with. docs/openapi.yaml's
``components/schemas`` are generated from these models (`python -m tests.openapi_doc`),
and a test fails when the two differ, so a change here is a change to the documented API.

No model holds a secret value: what goes in is what the reports already carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from rotation import doctor, model
from rotation.core.drift import RESOLVE
from rotation.doctor import shared
from rotation.error_codes import ErrorCode
from rotation.model import Action, AppState, Mode, Outcome, RequesterType, UsernameSource
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
        alias_generator=to_camel,
        validate_by_name=True,
        serialize_by_alias=True,
        frozen=True,
        from_attributes=True,
    )

    @classmethod
    def of(cls, source: object) -> Self:
        """The answer read from `source`'s attributes (a dataclass of rotation.model)."""
        return cls.model_validate(source)

    def body(self) -> dict[str, Any]:
        """The JSON-ready dict (strings, numbers, lists, dicts), as clients receive it."""
        return self.model_dump(mode="json")


def _absent_when_none(value: object) -> bool:
    return value is None


def _rounded(digits: int) -> Any:
    """A validator showing a float rounded to `digits` (None stays None)."""

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, digits)

    return rounded


class ConsumerReference(AnswerModel):
    site: str = Field(validation_alias="site_id", description="resource id of the site or slot")
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
    confirmed: Time | None = Field(
        validation_alias="confirmed_at",
        description="when it was seen resolving the current version",
    )
    problem: str | None = Field(
        description="why it holds an early retirement: pinned, not resolved (with the "
        "details), or App Service did not report its status or the version it serves"
    )
    setting_type: model.SettingType = Field(
        description="whether `setting` is an app setting or a connection string of the site"
    )


class ConsumerCheck(AnswerModel):
    """The App Service / Functions sites (slots included) whose app settings or connection
    strings reference the app's secret or its -username companion, against the Key Vault
    version served now."""

    #: Which references are the password's (read first, for `references`' problems; never shown).
    password_secret: SkipJsonSchema[str] = Field(default="", exclude=True)
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

    @field_validator("references", mode="before")
    @classmethod
    def _problems(cls, refs: Any, info: ValidationInfo) -> Any:
        """Each reference with the problem the policy sees in it (model.reference_problem)."""
        password = info.data.get("password_secret", "")
        return [
            ConsumerReference.of(r).model_copy(
                update={"problem": model.reference_problem(r, password)}
            )
            if isinstance(r, model.ConsumerReference)
            else r
            for r in refs
        ]


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
    duration_seconds: Annotated[float, AfterValidator(_rounded(3))]
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


class RequestedBy(AnswerModel):
    """Who asked for the run: ids and a sign-in name, never a token."""

    type: RequesterType = Field(
        description="a user or a workload (app-only token) of the HTTP API, the timer, the "
        "CLI, or a Key Vault event (near expiry, expired)"
    )
    object_id: str | None = Field(description="Entra object id of the user or service principal")
    app_id: str | None = Field(description="client application the token was issued to (azp)")
    name: str | None = Field(description="the user's sign-in name; user@host for the CLI")
    role: str | None = Field(description="the API's app role the request used")


class SkippedItem(AnswerModel):
    """One item of an upstream answer left out: the service, the answer, the fields."""

    service: str
    answer: str
    reason: str


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
    apps: list[AppOutcome] = Field(validation_alias="outcomes")
    requested_by: RequestedBy | None = Field(description="who asked for the run")
    skipped_items: list[SkippedItem] = Field(
        description="Items of upstream answers that could not be read and belong to no app "
        "(each also logged as item.skipped); the rest of each answer was used."
    )

    @field_validator("unfinished", "busy", "blocked", mode="before")
    @classmethod
    def _app_ids(cls, outcomes: Any) -> Any:
        """The report lists these as outcomes; the answer names their apps."""
        return [o.app_id if isinstance(o, model.AppOutcome) else o for o in outcomes]


class Username(AnswerModel):
    username: str
    source: UsernameSource


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class Drift(AnswerModel):
    """A current Key Vault version the rotator did not write (rotation/core/drift.py)."""

    version: str
    appeared: Time = Field(description="when the version was created in Key Vault")
    seen: Time | None = Field(description="when the rotator caught and checked it (its event)")
    smtp: model.SmtpCheck = Field(
        description="whether SMTP AUTH accepted its password (read-only check)"
    )
    fix: str = Field(
        default=RESOLVE,  # the same for every drift: no model attribute carries it
        description="how an operator resolves it",
        json_schema_extra=_no_default,  # always sent: not a default a client could omit
    )

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


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
    days_left: Annotated[float | None, AfterValidator(_rounded(1))]
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

    @field_validator("usernames", mode="before")
    @classmethod
    def _usernames(cls, pairs: Any) -> Any:
        """The row keeps (username, source) pairs."""
        return [Username(username=p[0], source=p[1]) if isinstance(p, tuple) else p for p in pairs]


class Status(AnswerModel):
    """Every managed app, its current key, expiry and Key Vault version."""

    apps: list[StatusRow]

    @classmethod
    def of(cls, rows: Sequence[service.StatusRow]) -> Self:  # type: ignore[override]
        return cls.model_validate({"apps": rows})


class DoctorCheck(AnswerModel):
    check: str = Field(validation_alias="name")
    status: shared.Status
    detail: str
    fix: str | None = Field(description="The command that fixes it (when not ok).")


class DoctorReport(AnswerModel):
    """Every prerequisite checked against the live services; `ok` is false when any failed."""

    ok: bool
    checks: list[DoctorCheck]

    @classmethod
    def of(cls, checks: Sequence[doctor.Check]) -> Self:  # type: ignore[override]
        return cls.model_validate({"ok": doctor.ok(checks), "checks": checks})


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
    def of(  # type: ignore[override]
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
        return cls.model_validate({"ok": doctor.ok(checks), "checks": checks, "error": error})
