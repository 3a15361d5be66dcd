"""Plain data passed between the parts of the rotator.

Adapters turn SDK objects into these types, the policy reads them, the engine
writes reports out of them. None of them ever holds a secret value: the one
place a password lives is `NewSecret`, whose value is a `SecretStr` that prints
as stars.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import SecretStr

from rotation.telemetry.skipped_items import SkippedItem

#: Every credential this service creates carries this display-name prefix, so that
#: orphans from a crashed run can be told apart from credentials made by people.
CREDENTIAL_PREFIX = "acs-smtp-rotation"
#: The `managed-by` tag of every Key Vault version the rotator writes (with `key-id`).
MANAGED_BY = "acs-smtp-rotation"
#: Tags the rotator adds to a hand-written version it caught (drift): when it saw it, and
#: whether SMTP AUTH accepted its password (SmtpCheck). Key Vault keeps them with the version,
#: so every instance, run and `status` reads the same state (see rotation/core/drift.py).
DRIFT_SEEN_TAG = "drift-seen"
DRIFT_SMTP_TAG = "drift-smtp"

#: How discovery found an app or a username (rotation/run/discovery.py's SOURCE_* names).
UsernameSource = Literal["smtp-username", "role", "allow-list"]
#: What `status` says of an app: policy.app_state's answer, or skipped by discovery.
AppState = Literal["ok", "due", "no-password", "app-not-found", "skipped", "drift", "unreadable"]
#: Who asked for a run (Requester.type; the run report's requestedBy.type says the same).
RequesterType = Literal["user", "app", "timer", "cli", "event"]


class Mode(enum.StrEnum):
    """How eager a run is."""

    DUE = "due"  # rotate only what policy says is due
    FORCE = "force"  # rotate every selected app now; old secrets keep their grace
    EMERGENCY = "emergency"  # rotate now and remove every other secret at once


class Action(enum.StrEnum):
    NOTHING = "nothing"
    ROTATE = "rotate"
    RETIRE = "retire"


#: How an unfinished app that never started begins its error (rotation/run/app_run.py), which
#: tells it from one cut short (RunReport.starved).
NOT_STARTED = "not started: no time left in this run"


class Outcome(enum.StrEnum):
    UNCHANGED = "unchanged"
    PLANNED = "planned"  # dry run: what would have happened
    ROTATED = "rotated"
    RETIRED = "retired"
    FAILED = "failed"
    UNFINISHED = "unfinished"  # ran out of time; the next run completes it
    BUSY = "busy"  # another run (here or on another instance) holds the app's lease
    SKIPPED = "skipped"  # not ours to rotate (managed identity, another tenant's app); never alerts
    BLOCKED = "blocked"  # an operator must act first (e.g. a soft-deleted Key Vault name)


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings the decisions depend on (built from Settings by `Settings.rules`, so
    the pure policy stays free of any settings library)."""

    rotate_before: timedelta
    lifetime: timedelta
    grace: timedelta
    verify_window: timedelta


#: The companion secret `<name>-username` that lets an App Service reference read the username.
USERNAME_SUFFIX = "-username"

#: Time an app needs beyond SMTP verification: Graph and Key Vault calls, with retries.
STEP_MARGIN_SECONDS = 60.0


def longest_app_seconds(
    verify_timeout: float, confirm_timeout: float | None, margin: float = STEP_MARGIN_SECONDS
) -> float:
    """The longest one app may take: SMTP verification, then Graph and Key Vault calls, and
    the consumers' confirmation when they are checked (`confirm_timeout` None: not). A timer
    run starts an app only while this still fits, so host.json's functionTimeout must leave
    room for it (rotation/timebudget.py refuses one that does not)."""
    return verify_timeout + margin + (confirm_timeout or 0.0)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What the engine runs with besides its ports (built from Settings by
    `Settings.run_config`, as `Rules` is for the policy): the engine never sees Settings."""

    rules: Rules
    key_vault_url: str  # named in a soft-deleted name's fix
    smtp_host: str  # written on each promoted version's tags
    smtp_port: int
    max_concurrency: int = 16
    verify_timeout_seconds: float = 300.0
    consumer_confirm_timeout_seconds: float = 120.0
    #: App ids (lower case) whose every consumer is a site we find; {"all"}: every app.
    fully_covered: frozenset[str] = frozenset()
    #: Time an app needs beyond verification (tests scaled down in time shorten it).
    step_margin: float = STEP_MARGIN_SECONDS
    #: The timer's NCRONTAB schedule: how many runs an app has been due for is counted on it.
    schedule: str = "0 0 3 * * *"

    def covers(self, app_id: str) -> bool:
        """The operator declared that every consumer of this app is a site we find, so its
        old secrets may go once all of them confirmed the new version."""
        return self.fully_covered == {"all"} or app_id.lower() in self.fully_covered


@dataclass(frozen=True, slots=True)
class ManagedApp:
    """An Entra application whose client secrets are ACS SMTP passwords."""

    app_id: str
    tenant_id: str
    secret_name: str
    usernames: tuple[str, ...]
    acs_resource_ids: tuple[str, ...] = ()
    sources: tuple[UsernameSource, ...] = ()  # how discovery found it
    username_sources: tuple[
        UsernameSource, ...
    ] = ()  # where each of `usernames` came from, in order

    @property
    def smtp_username(self) -> str:
        """The username the rotator proves the new secret with (and consumers get)."""
        return self.usernames[0]


@dataclass(frozen=True, slots=True)
class PrincipalEntry:
    """A service principal as discovery needs it (Microsoft Graph's servicePrincipal).

    `kind` is Graph's servicePrincipalType: ``Application``, ``ManagedIdentity``,
    ``Legacy`` or ``SocialIdp``; `owner_tenant_id` its appOwnerOrganizationId, the tenant
    where the application is registered (Graph fills it for application-backed principals).
    """

    object_id: str
    app_id: str
    kind: str
    owner_tenant_id: str | None
    #: Why Graph's answer for it cannot be used (a field missing or of the wrong type):
    #: discovery then shows the role holder as skipped with this reason.
    problem: str | None = None


# ----- Azure Resource Manager: what discovery and doctor read about ACS ----------------------
# The ACS reader (rotation/azure/acs.py) turns SDK objects into these; discovery depends on them
# and on the AcsReader port (rotation/core/ports.py), never on the adapter.


@dataclass(frozen=True, slots=True)
class AcsResource:
    id: str
    name: str
    resource_group: str
    subscription_id: str


@dataclass(frozen=True, slots=True)
class SmtpUsernameEntry:
    """An ACS SMTP Username resource: a custom username bound to an Entra app."""

    resource_id: str
    username: str
    app_id: str
    tenant_id: str


@dataclass(frozen=True, slots=True)
class RoleAssignmentEntry:
    scope: str
    principal_id: str
    principal_type: str
    role_definition_id: str


@dataclass(frozen=True, slots=True)
class RoleDefinitionEntry:
    id: str
    role_name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PermissionEntry:
    """One entry of what ARM says the caller may do at a scope (its permissions API)."""

    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    data_actions: tuple[str, ...]
    not_data_actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Credential:
    """One password credential of an Entra application (no secret text)."""

    key_id: str
    display_name: str | None
    start: datetime | None
    end: datetime | None
    hint: str | None = None

    @property
    def made_by_us(self) -> bool:
        return (self.display_name or "").startswith(CREDENTIAL_PREFIX)


@dataclass(frozen=True, slots=True)
class AppRecord:
    """What Microsoft Graph says about an application."""

    object_id: str
    app_id: str
    display_name: str
    credentials: tuple[Credential, ...]
    #: createdDateTime: an app-management restriction may apply only to apps created after a date.
    created: datetime | None = None
    #: Why Graph's answer for this app cannot be used (a field missing, null or of the wrong
    #: type, named): the app is flagged in status and failed by a run, with no write.
    problem: str | None = None

    def credential(self, key_id: str | None) -> Credential | None:
        return next((c for c in self.credentials if c.key_id == key_id), None)


# ----- Entra app-management policies: what they say about adding a password ---------------------
# Graph's tenantAppManagementPolicy (applicationRestrictions) and appManagementPolicy
# (restrictions): "Microsoft Entra application authentication methods API overview".


@dataclass(frozen=True, slots=True)
class PasswordRestriction:
    """One passwordCredentialConfiguration of a policy."""

    kind: str  # restrictionType: passwordAddition, passwordLifetime, customPasswordAddition, ...
    max_lifetime: timedelta | None = None  # maxLifetime, for passwordLifetime
    #: restrictForAppsCreatedAfterDateTime: it applies to apps created then or later (None: all).
    applies_from: datetime | None = None
    enabled: bool = True  # state (newer policies): "disabled" restrictions are not evaluated

    def applies_to(self, record: AppRecord) -> bool:
        if not self.enabled:
            return False
        if self.applies_from is None:
            return True
        # An app of unknown age is taken as new: the restriction then applies (the safe side).
        return record.created is None or record.created >= self.applies_from


@dataclass(frozen=True, slots=True)
class AppManagementPolicy:
    """The tenant default policy or an app-specific one, as far as passwords go."""

    id: str
    name: str
    enabled: bool
    passwords: tuple[PasswordRestriction, ...] = ()


@dataclass(frozen=True, slots=True)
class PasswordPolicies:
    """The tenant's app-management policies that bear on adding a password.

    An app with a policy assigned follows it alone; every other app follows the tenant
    default ("When both the tenant default policy and an app management policy exist, the
    app management policy takes precedence"). `unread` says what could not be read (the
    Graph permission is missing): what is known is then used, and the rest is not assumed.
    """

    default: AppManagementPolicy | None = None
    #: Application object id (lower-case) -> the policy assigned to it.
    assigned: Mapping[str, AppManagementPolicy] = field(default_factory=dict)
    #: False when the assignments could not be read: an app may then be exempt from the
    #: tenant default without our knowing, so nothing is blocked on the default's word.
    assignments_known: bool = True
    unread: str | None = None


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why an app cannot be rotated until an operator acts, and what they do."""

    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.fix}"


@dataclass(frozen=True, slots=True)
class PasswordRule:
    """What the policies say about a new password for one app."""

    source: str  # "the tenant default policy" or "app management policy '<name>' (<id>)"
    blocked: bool = False
    max_lifetime: timedelta | None = None
    #: False: the tenant default's word for an app that may have a policy of its own.
    certain: bool = True


@dataclass(frozen=True, slots=True)
class VaultVersion:
    version: str
    key_id: str | None
    created: datetime
    enabled: bool
    expires: datetime | None = None
    smtp_username: str | None = None  # from the smtp-username tag
    # The rotation that made this version finished: every older credential removed and
    # every version of one disabled (a tag the engine writes last; see policy.settled).
    settled: bool = False
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: Set on a vault listing's item that could not be read (why): the app's versions are
    #: then read one by one instead (policy.needs_versions), never planned from it.
    unreadable: str | None = None

    @property
    def tagged_by_rotator(self) -> bool:
        """Its tags claim a promotion of ours: it names its credential (`key-id`) and, when
        the writer said, the rotator (`managed-by`). A version set by a person or another
        tool names no credential, or another writer, unless it copied a promotion's tags:
        VaultEntry.written_by_rotator tells the two apart."""
        return self.key_id is not None and self.tags.get("managed-by", MANAGED_BY) == MANAGED_BY


class SmtpCheck(enum.StrEnum):
    """What SMTP AUTH said of a hand-written version's password (read-only check)."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    UNVERIFIED = "unverified"  # not checked yet, or the SMTP endpoint could not be reached


@dataclass(frozen=True, slots=True)
class Drift:
    """A current Key Vault version the rotator did not write: nobody proved it by SMTP AUTH
    before consumers got it, and the Entra credential it holds is unknown to the rotator."""

    version: str
    appeared: datetime  # the version's created time
    seen: datetime | None  # when the rotator caught and checked it; None: not yet
    smtp: SmtpCheck


@dataclass(frozen=True, slots=True)
class EventSubscriptionEntry:
    """The rotator's Key Vault event subscription, as Event Grid describes it (doctor)."""

    id: str
    topic_id: str
    state: str  # provisioningState
    endpoint_type: str
    destination: str  # the function's resource id (AzureFunction) or the webhook's base URL
    event_types: tuple[str, ...]
    subject_begins_with: str
    subject_ends_with: str
    dead_letter: bool


@dataclass(frozen=True, slots=True)
class EventDeliveries:
    """What the system topic delivered over the last `days` (its Azure Monitor metrics)."""

    days: int
    delivered: int
    dead_lettered: int
    dropped: int


@dataclass(frozen=True, slots=True)
class VaultEntry:
    """The versions of one app's SMTP password secret, newest first."""

    name: str
    versions: tuple[VaultVersion, ...]

    @property
    def current(self) -> VaultVersion | None:
        """The version a consumer reading "latest" gets; Key Vault serves the newest."""
        return self.versions[0] if self.versions else None

    @property
    def known_key_ids(self) -> frozenset[str]:
        return frozenset(v.key_id for v in self.versions if v.key_id)

    def written_by_rotator(self, version: VaultVersion) -> bool:
        """`version` (one of this entry's) is a promotion of ours, not a copy of one.

        Each rotation promotes a new credential, so the rotator never writes a key id that
        an older version of the secret already names, except when it sends the same write
        again: azure-core re-sends a PUT whose answer was lost or a 5xx (its RetryPolicy
        retries PUT), and Key Vault then keeps both (review finding 4). A re-send has the
        same expiry, is written within RESEND_WINDOW, and no other version came between the
        two. Any other later version naming the same credential copied its tags (a script
        setting a new value with the old version's tags): it is not the rotator's, whatever
        its tags say."""
        if not version.tagged_by_rotator:
            return False
        if version.settled:  # marked by the rotator, who judged it its own: a copy made
            return True  # by hand cannot carry its own new version id in its tags
        at = next((i for i, v in enumerate(self.versions) if v is version), len(self.versions))
        older = self.versions[at + 1 :]
        first = next((v for v in older if v.key_id == version.key_id), None)
        if first is None:
            return True
        # Whole seconds: versions of one second may be listed in any order (key_vault.read).
        between = any(first.created < v.created < version.created for v in older)
        return _resent(first, version) and not between


#: How long after a promotion its PUT may land again: azure-core's RetryPolicy makes up to
#: six attempts (RETRY in rotation/azure/errors.py), each waiting up to its read timeout
#: (300 s, azure-core's default), with backoffs of at most 30 s: under 33 minutes.
RESEND_WINDOW = timedelta(hours=1)


def _resent(first: VaultVersion, again: VaultVersion) -> bool:
    """`again` is `first`'s write sent again (the same password, tags and expiry)."""
    return again.expires == first.expires and (
        timedelta(0) <= again.created - first.created <= RESEND_WINDOW
    )


@dataclass(frozen=True, slots=True)
class DeletedName:
    """A Key Vault secret name held by a soft-deleted secret: recoverable, not writable."""

    name: str
    deleted: datetime | None
    purge_on: datetime | None


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A freshly created credential and its secret text, held only in memory."""

    credential: Credential
    value: SecretStr


#: ResolveStatus of a Key Vault reference that App Service resolved (Web RP, ApiKVReference).
RESOLVED = "Resolved"
#: The status recorded when App Service's answer has none: Microsoft's published example
#: of the configreferences answer has neither ``status`` nor ``activeVersion``.
UNREPORTED = ""
#: Where a site holds a Key Vault reference: an app setting or a connection string (App
#: Service resolves both; the Web RP lists each under its own ``configreferences`` path).
SettingType = Literal["appSetting", "connectionString"]


@dataclass(frozen=True, slots=True)
class ConsumerReference:
    """One app setting or connection string of an App Service / Functions site (or slot)
    that references one of our secrets, as App Service reports it (ApiKVReference). No
    secret value: App Service never returns one here."""

    site_id: str
    setting: str
    secret_name: str
    status: str  # Azure's ResolveStatus: Resolved, SecretNotFound, ...; UNREPORTED: none given
    pinned_version: str | None  # the reference names a version: it never follows rotation
    active_version: str | None  # the version the site resolved (None: not reported)
    details: str | None  # App Service's own words about the resolution
    vault_name: str = ""  # the vault the reference points at (vaultName)
    confirmed_at: datetime | None = None  # when it was seen resolving the current version
    setting_type: SettingType = "appSetting"  # `setting` is an app setting or a connection string

    @property
    def resolved(self) -> bool:
        return self.status == RESOLVED

    def resolves(self, version: str | None) -> bool:
        """True when the site serves exactly `version` through this reference."""
        return (
            self.resolved
            and self.pinned_version is None
            and version is not None
            and (self.active_version or "").lower() == version.lower()
        )

    @property
    def problem(self) -> str | None:
        """Why this reference holds an early retirement back for good (until grace ends)."""
        if self.pinned_version is not None:
            return (
                f"pinned to version {self.pinned_version}: it never follows a rotation; "
                "remove the version from the reference"
            )
        if self.status == UNREPORTED:
            return (
                "App Service reported no status for this reference (Microsoft's published "
                "example of this answer has none): whether the site resolves it is not known, "
                "so the grace period is kept"
            )
        if not self.resolved:
            return f"{self.status}: {self.details or 'no details given'}"
        return None


#: Why a password reference that resolves, but without a version, holds retirement back.
NO_ACTIVE_VERSION = (
    "App Service reported no activeVersion for this reference (Microsoft's published example "
    "of this answer has none): which version the site serves is not known, so the grace "
    "period is kept"
)


def reference_problem(ref: ConsumerReference, password_secret: str) -> str | None:
    """Why `ref` holds an early retirement back: its own problem, or, for a reference to
    the password (`password_secret`), that App Service did not say which version the site
    serves (the username's versions are not the password's: any that resolves will do)."""
    if ref.problem is not None:
        return ref.problem
    if ref.secret_name.lower() == password_secret.lower() and not ref.active_version:
        return NO_ACTIVE_VERSION
    return None


@dataclass(frozen=True, slots=True)
class ConsumerCheck:
    """What the consumers of one app resolve, against the version Key Vault serves now."""

    version: str | None  # the current Key Vault version of the app's password
    references: tuple[ConsumerReference, ...] = ()
    unreachable: tuple[str, ...] = ()  # "<site id>: <why>" for sites we could not read
    password_secret: str = ""  # which of the references' secrets is the password

    @property
    def password_references(self) -> tuple[ConsumerReference, ...]:
        return tuple(
            r for r in self.references if r.secret_name.lower() == self.password_secret.lower()
        )

    def problem_of(self, ref: ConsumerReference) -> str | None:
        """Why `ref` holds an early retirement back (`reference_problem`)."""
        return reference_problem(ref, self.password_secret)

    @property
    def confirmed(self) -> bool:
        """Every consumer reads the current password, every reference resolves, every site
        answered, and there is at least one consumer to speak of."""
        passwords = self.password_references
        return (
            not self.unreachable
            and bool(passwords)
            and all(r.resolves(self.version) for r in passwords)
            and all(r.problem is None for r in self.references)
        )


@dataclass(frozen=True, slots=True)
class Retirement:
    credential: Credential
    reason: str
    #: The enabled Key Vault versions that hold this credential: disabled once it is gone.
    #: Required, so no Retirement can forget them (policy._retire finds them).
    versions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rotate:
    """The policy's plan: a new secret now (the four steps)."""

    app: ManagedApp
    reason: str
    #: Emergency: after the promotion every other secret goes at once. Which ones is
    #: decided again on the state after promotion (`policy.retirement_plan`).
    emergency: bool = False
    #: How long the new secret lasts: the configured lifetime, or less when an
    #: app-management policy caps it (the reason then says so).
    lifetime: timedelta | None = None
    #: Why no new secret may be added (an app-management policy forbids it, or caps its life
    #: below ROTATION_ROTATE_BEFORE_DAYS): the app is blocked, and nothing is written.
    blocked: Blocked | None = None

    @property
    def action(self) -> Action:
        return Action.ROTATE


@dataclass(frozen=True, slots=True)
class Retire:
    """The policy's plan: remove old credentials and disable the Key Vault versions that
    held them (step 4 alone)."""

    app: ManagedApp
    reason: str
    retire: tuple[Retirement, ...] = ()
    disable: tuple[str, ...] = ()  # Key Vault versions whose credential is already gone

    @property
    def action(self) -> Action:
        return Action.RETIRE

    def versions_to_disable(self, removed: Collection[str]) -> tuple[str, ...]:
        """The versions to disable once the credentials `removed` are gone: those that held
        them (a removal that failed keeps its version), and those already orphaned."""
        held = (v for r in self.retire if r.credential.key_id in removed for v in r.versions)
        return tuple(dict.fromkeys((*held, *self.disable)))


@dataclass(frozen=True, slots=True)
class Keep:
    """The policy's plan: nothing to do; `reason` says why."""

    app: ManagedApp
    reason: str

    @property
    def action(self) -> Action:
        return Action.NOTHING


#: What the policy decided for one app, with reasons a person can read.
AppPlan = Rotate | Retire | Keep


@dataclass(slots=True)
class AppOutcome:
    app_id: str
    secret_name: str
    action: Action
    reason: str
    outcome: Outcome
    new_key_id: str | None = None
    removed_key_ids: list[str] = field(default_factory=list)
    expires: datetime | None = None
    duration_seconds: float = 0.0
    error: str | None = None
    consumers: ConsumerCheck | None = None  # only when consumer tracking is on
    #: Removals that failed (rollback of the new credential, retirement of old ones).
    cleanup_failures: list[str] = field(default_factory=list)
    #: Busy: the run holding the app (its run id), when known.
    held_by: str | None = None


@dataclass(frozen=True, slots=True)
class ApiRoles:
    """The HTTP API's registration as its service principal shows it: whether Entra requires
    an app role to issue a token for it, the role values it defines, and who holds each
    (the holders' display names, or their object ids)."""

    client_id: str
    object_id: str  # the service principal's
    display_name: str
    assignment_required: bool
    role_ids: Mapping[str, str]  # role value -> app role id, for each enabled role it defines
    holders: Mapping[str, tuple[str, ...]]  # role value -> who holds it


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked for a run: a caller of the HTTP API (a user, or a workload with an app-only
    token) with the app role the request used, the timer, or an operator's command line.
    Ids and a sign-in name only: what the audit (logs, report, workbook) records."""

    type: RequesterType
    object_id: str | None = None  # Entra object id of the user or service principal
    app_id: str | None = None  # the client application the token was issued to (azp)
    name: str | None = None  # the user's sign-in name; for the CLI, user@host
    role: str | None = None  # the app role the request needed and held

    def log_fields(self) -> dict[str, str]:
        """``caller_*`` log fields (docs/events.md), the absent ones left out."""
        fields = {
            "caller_type": self.type,
            "caller_object_id": self.object_id,
            "caller_app_id": self.app_id,
            "caller_name": self.name,
            "caller_role": self.role,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(slots=True)
class RunReport:
    run_id: str
    mode: Mode
    dry_run: bool
    started: datetime
    finished: datetime | None = None
    outcomes: list[AppOutcome] = field(default_factory=list)
    requested_by: Requester | None = None
    #: Items of upstream answers that belong to no app and could not be read: left out.
    skipped_items: list[SkippedItem] = field(default_factory=list)

    @property
    def failed(self) -> list[AppOutcome]:
        return [o for o in self.outcomes if o.outcome is Outcome.FAILED]

    @property
    def unfinished(self) -> list[AppOutcome]:
        return [o for o in self.outcomes if o.outcome is Outcome.UNFINISHED]

    @property
    def blocked(self) -> list[AppOutcome]:
        """Apps an operator must act on first (the fix is in each one's error)."""
        return [o for o in self.outcomes if o.outcome is Outcome.BLOCKED]

    @property
    def busy(self) -> list[AppOutcome]:
        """Apps another run held: left to it, not failed."""
        return [o for o in self.outcomes if o.outcome is Outcome.BUSY]

    @property
    def starved(self) -> bool:
        """Apps were due and the run started none: its budget fitted no app (discovery ate
        it, or the time left was too short), and the next run is likely no better. A failure,
        so that the timer invocation fails and the alerts fire."""
        waiting = [o for o in self.unfinished if (o.error or "").startswith(NOT_STARTED)]
        worked = {Outcome.ROTATED, Outcome.RETIRED, Outcome.FAILED, Outcome.UNFINISHED}
        started = [o for o in self.outcomes if o.outcome in worked and o not in waiting]
        return bool(waiting) and not started

    @property
    def ok(self) -> bool:
        return not self.failed and not self.starved

    @property
    def counts(self) -> dict[str, int]:
        """How many apps ended with each outcome, in the order outcomes first appear."""
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome.value] = counts.get(o.outcome.value, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What a run is asked to do, as the edges (HTTP, CLI, timer) ask it.

    `app_ids` empty: every managed app. `verify_timeout` None: the configured one.
    `budget_seconds` bounds the whole run, discovery included. `whole_apps` (the timer
    run): an app starts only while all of its time still fits in the budget. `all_apps`
    confirms an emergency over every app (leaving out the ids is never enough).
    """

    app_ids: tuple[str, ...] = ()
    mode: Mode = Mode.DUE
    dry_run: bool = False
    verify_timeout: float | None = None
    budget_seconds: float | None = None
    whole_apps: bool = False
    all_apps: bool = False
    #: Who asked (the run's report carries it); None: not said.
    requested_by: Requester | None = None
    #: Why a Key Vault event started this run (the plan's reason); None: a person or the timer.
    because: str | None = None

    def resolves_drift(self, app_id: str) -> bool:
        """Whether this run may rotate over a hand-written version of the app (drift): only
        a forced run that names the app and that a person, not an event, started."""
        named = app_id.lower() in {a.lower() for a in self.app_ids}
        return named and self.mode is not Mode.DUE and self.because is None
