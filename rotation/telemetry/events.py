"""The rotator's log events: the one list of names and fields that everything reading the
logs relies on (the workbook, the alert rules, the tests, docs/events.md).

In Azure every line is one JSON object (rotation/telemetry/logs.py) in the `message` column of
Application Insights' `traces` table. Queries take the object from its first `{` on,
then read `body.event` and the fields below. Renaming an event or a field here without
the workbook and the alerts would empty a panel or silence an alert without an error,
so tests/infra/test_log_contract.py holds the product, this list and every query
together. Log calls name their event as a literal string (no constants to keep in step);
tests/infra/test_workbook.py reads those names from the code and fails when the code and
this catalogue disagree, either way. A new outcome needs no new event: `app.finished` carries every outcome.

Field kinds are JSON kinds: "string", "int", "number" (int or float), "bool", "object".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["string", "int", "number", "bool", "object"]

#: On every line: structlog's event name, level, logger and ISO 8601 UTC time.
COMMON: Mapping[str, Kind] = {
    "event": "string",
    "level": "string",
    "logger": "string",
    "timestamp": "string",
}
#: Who asked (model.Requester.log_fields): on every line of an authorized API request and of
#: its run, of a scheduled run (`timer`) and of a command-line run (`cli`). A user or an app
#: of the API: its Entra object id, the client app id the token was issued to, the user's
#: sign-in name, and the app role the request used.
CALLER: Mapping[str, Kind] = {
    "caller_type": "string",
    "caller_object_id": "string",
    "caller_app_id": "string",
    "caller_name": "string",
    "caller_role": "string",
}
#: On the lines logged inside a context: `run_id` inside a run, `app_id` inside one app's
#: work, `step` (create, verify, promote, retire, observe) once an app's step has begun,
#: `trigger` ("timer") on the lines of a scheduled run, and the CALLER fields.
CONTEXT: Mapping[str, Kind] = {
    "run_id": "string",
    "app_id": "string",
    "step": "string",
    "trigger": "string",
    **CALLER,
}


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    meaning: str
    fields: Mapping[str, Kind]
    #: Fields a line may leave out, or write as null (for example no expiry known).
    optional: frozenset[str] = frozenset()
    #: Named for a part being built in parallel: lines may not carry it yet (readers show
    #: an empty state); once they do, they are held to it like any other event.
    planned: bool = False
    #: Fields that are context values but always present on this event.
    context: frozenset[str] = field(default_factory=frozenset)

    def allowed(self) -> frozenset[str]:
        return frozenset({*COMMON, *CONTEXT, *self.fields})

    def required(self) -> frozenset[str]:
        return frozenset({*COMMON, *self.context, *self.fields}) - self.optional


def _event(
    name: str,
    meaning: str,
    fields: Mapping[str, Kind],
    *,
    optional: tuple[str, ...] = (),
    context: tuple[str, ...] = (),
    planned: bool = False,
) -> Event:
    return Event(name, meaning, fields, frozenset(optional), planned, frozenset(context))


#: Every event, in the order docs/events.md lists them. Log calls name events by their
#: literal `noun.verb` string; tests/infra/test_workbook.py reads those names from the code
#: and holds them and this catalogue together, both ways.
EVENTS: tuple[Event, ...] = (
    # ----- a run --------------------------------------------------------------------------------
    _event(
        "run.started",
        "A run began: its mode, whether it is a dry run, how many apps it covers.",
        {"mode": "string", "dry_run": "bool", "apps": "int"},
        context=("run_id",),
    ),
    _event(
        "run.finished",
        "A run ended. `counts` maps each outcome (rotated, retired, unchanged, planned, failed, "
        "unfinished, busy, skipped, blocked) to its number of apps; absent outcomes are left out. "
        "`starved`: apps were due and the run started none (a failure, which alerts).",
        {
            "mode": "string",
            "dry_run": "bool",
            "duration_seconds": "number",
            "failed": "int",
            "rotated": "int",
            "unfinished": "int",
            "starved": "bool",
            "counts": "object",
        },
        context=("run_id",),
    ),
    # ----- one app in a run ---------------------------------------------------------------------
    _event(
        "app.planned",
        "What the policy decided for an app it acts on (rotate, retire) and why. An app with "
        "nothing to do has no such line (at 10,000 apps they were a third of a plan's time): "
        "its `app.finished` says `nothing` and why.",
        {"action": "string", "reason": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "app.finished",
        "One line per app per run, whatever happened: its outcome, and the days left on the "
        "secret Key Vault serves after the run (null when there is none, or it never expires).",
        {
            "outcome": "string",
            "action": "string",
            "reason": "string",
            "error": "string",
            "expires": "string",
            "days_left": "number",
            "rotate_before_days": "int",
        },
        optional=("error", "expires", "days_left"),
        context=("run_id", "app_id"),
    ),
    _event(
        "app.failed",
        "The app's rotation failed at `step`; `error` is the operator's message (no secret), or "
        "`internal error: <type>` for a bug, with `where` (innermost frames, no exception text).",
        {"error": "string", "error_type": "string", "where": "string"},
        optional=("error_type", "where"),
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "app.unfinished",
        "The app's deadline cut `step`, or its lease was lost (`error` says how) and its work "
        "stopped before its next write; the next run completes it.",
        {"error": "string"},
        optional=("error",),
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "app.left_unstarted",
        "The run had no time for an app that fell due `runs` scheduled runs ago (at `due_since`) "
        "and is still not rotated: the timer's budget keeps leaving it out. Alerts.",
        {"runs": "int", "due_since": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "app.expiry_near",
        "The app was not rotated in this run although policy says it is due (`reason`: "
        "expiring, expired, its Key Vault version disabled, ...), the same decision as plan "
        "and status.",
        {"key_id": "string", "days_left": "number", "reason": "string"},
        optional=("key_id", "days_left"),
        context=("run_id", "app_id"),
    ),
    # ----- the four steps -----------------------------------------------------------------------
    _event(
        "credential.created",
        "Step 1: a new client secret exists (its key id and end; never its text).",
        {"key_id": "string", "expires": "string"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "smtp.verified",
        "Step 2: SMTP AUTH accepted the new secret after `attempts` tries and `seconds` from "
        "its creation: Entra's propagation as seen in this tenant.",
        {"key_id": "string", "attempts": "int", "seconds": "number"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "vault.promoted",
        "Step 3: the verified secret is the current Key Vault version.",
        {"key_id": "string", "version": "string"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "credential.rolled_back",
        "A new secret that failed verification or promotion was removed again (I3).",
        {"key_id": "string", "why": "string"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "credential.rollback_failed",
        "Removing such a secret failed; the next run removes it as an orphan (I5).",
        {"key_id": "string", "error": "string"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "credential.removed",
        "Step 4: an old secret was removed, and why (grace ended, emergency, orphan).",
        {"key_id": "string", "reason": "string"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "credential.already_gone",
        "A secret to remove was gone already (Graph answered 400 or 404 and a re-read agreed).",
        {"app_id": "string", "key_id": "string"},
    ),
    _event(
        "credential.remove_failed",
        "Step 4: removing an old secret failed; the other removals are still attempted and the "
        "next run tries again.",
        {"key_id": "string", "error": "string"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "vault.read_failed",
        "After a failed promote, Key Vault could not be read to confirm whether it stored the "
        "new secret: the secret is kept (never removed while Key Vault may serve it).",
        {"error": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "vault.versions_disabled",
        "Step 4: Key Vault versions holding removed secrets were disabled.",
        {"versions": "int"},
        context=("run_id", "app_id", "step"),
    ),
    _event(
        "vault.settled",
        "The app's rotation finished (every old secret removed, every version of one disabled): "
        "its current Key Vault version is tagged `settled-version`, and later runs skip its "
        "version history until something changes.",
        {"version": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "vault.settle_failed",
        "Tagging a finished rotation was refused; nothing is wrong, the next run reads the app's "
        "versions again and retries.",
        {"error": "string"},
        context=("run_id", "app_id"),
    ),
    # ----- discovery ----------------------------------------------------------------------------
    _event(
        "discovery.scanned",
        "ACS resources scanned and role holders found on them.",
        {"resources": "int", "role_holders": "int"},
    ),
    _event(
        "discovery.skipped",
        "An app seen on ACS that the rotator leaves alone, and why (another tenant's app, an "
        "excluded id, ...). Shown in the workbook, never alerted on.",
        {"app_id": "string", "reason": "string"},
    ),
    _event(
        "item.skipped",
        "One item of an upstream answer that could not be read and belongs to no app the rotator "
        "can name (a role assignment whose properties are not an object, a service principal "
        "without an id): left out, the rest of the answer used; counted in the run report's "
        "skippedItems. `reason` names the fields, never their values.",
        {"service": "string", "answer": "string", "reason": "string"},
    ),
    _event(
        "discovery.finished",
        "How many apps the rotator manages, and how many senders it skips.",
        {"apps": "int", "skipped": "int"},
        optional=("skipped",),
    ),
    _event(
        "discovery.group_ignored",
        "A role assignment to a group would let its members send through the ACS resource; "
        "groups are not followed, so such apps need the allow-list (`hint`).",
        {"group_id": "string", "resource_id": "string", "role": "string", "hint": "string"},
    ),
    _event(
        "discovery.role_missing",
        "A role assignment names a role definition that no longer exists.",
        {"role_definition_id": "string"},
    ),
    # ----- the HTTP API -------------------------------------------------------------------------
    _event(
        "http.rotation_answered",
        "POST /api/rotations answered with the run's report.",
        {"run_id": "string", "ok": "bool"},
    ),
    _event(
        "http.authorized",
        "A call to the HTTP API passed its token and role checks (rotation/auth.py): the `route`, "
        "and in the caller fields who called and with which app role.",
        {"route": "string"},
        context=("caller_type", "caller_object_id", "caller_app_id", "caller_role"),
    ),
    _event(
        "http.refused",
        "A call to the HTTP API was refused: its `status` (401 no valid token, 403 no role for "
        "it, 4xx a bad request, 409 busy, 503 not configured or Entra's keys unreadable), `code` "
        "and `reason`. The caller's ids when its token passed; `client_ip` as the platform "
        "forwarded it. Never the token.",
        {
            "route": "string",
            "status": "int",
            "code": "string",
            "reason": "string",
            "client_ip": "string",
        },
        optional=("reason", "client_ip"),
    ),
    _event(
        "http.rotation_requested",
        "POST /api/rotations accepted a run: its mode, whether a dry run and its app ids "
        "(comma-separated, or `all`); the caller fields say who asked.",
        {"mode": "string", "dry_run": "bool", "app_ids": "string"},
        context=("caller_type", "caller_object_id", "caller_app_id", "caller_role"),
    ),
    _event(
        "run.requested",
        "`python -m rotation run|plan` began: mode, dry run, app ids, and the operator (`user@host`).",
        {"mode": "string", "dry_run": "bool", "app_ids": "string", "caller": "string"},
    ),
    _event(
        "run.on_outcome_failed",
        "The run's progress callback raised; the run went on.",
        {"error": "string"},
        context=("run_id",),
    ),
    # ----- failures outside a run (the alert rules watch them) ------------------------------------
    _event(
        "run.failed",
        "A scheduled run failed before its report (discovery, an ARM or Graph 403, invalid "
        "settings): no run.finished follows.",
        {"error_type": "string", "error": "string"},
    ),
    _event(
        "settings.invalid",
        "The worker started with invalid settings; `error` names the setting, never its value.",
        {"error": "string"},
    ),
    # ----- outcomes outside rotated, retired and failed: skipped, blocked and busy ------------------
    _event(
        "app.skipped",
        "An app the run leaves alone (a managed identity, another tenant's app), and why.",
        {"reason": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "app.blocked",
        "An app an operator must fix first (a soft-deleted Key Vault name, or an app-management "
        "policy that forbids a new password): `fix` says how.",
        {"secret_name": "string", "fix": "string", "error": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "policy.unread",
        "The tenant's app-management policies could not be (fully) read (the Graph permission "
        "Policy.Read.All, or Application.Read.All for app-specific ones, is missing): lifetimes "
        "are not capped and bans not seen before Graph refuses a new password.",
        {"error": "string"},
        context=("run_id",),
    ),
    _event(
        "vault.deleted_unlisted",
        "Listing the vault's soft-deleted secrets failed; each app about to write a new name "
        "asks about its own names instead.",
        {"error": "string"},
        context=("run_id",),
    ),
    _event(
        "app.busy",
        "Another run holds the app's lease (`holder`: this instance or another run; `held_by`: "
        "that run's id, when known); the app is left to it and reported busy, not failed.",
        {"holder": "string", "held_by": "string"},
        optional=("held_by",),
        context=("run_id", "app_id"),
    ),
    # ----- the per-app lease in the Function App's storage (rotation/azure/blob_lease.py) ---------------------
    _event(
        "lease.container_created",
        "The lease container did not exist in the storage account and was made (first run).",
        {"container": "string"},
    ),
    _event(
        "lease.acquired",
        "The app's lease was taken for `lease_seconds`; it is renewed while the app's steps run.",
        {"lease_seconds": "int"},
        context=("run_id", "app_id"),
    ),
    _event(
        "lease.released",
        "The app's lease was given back at the end of its steps.",
        {},
        context=("run_id", "app_id"),
    ),
    _event(
        "lease.renew_failed",
        "A renewal failed (storage unreachable or erroring); the next one is tried a third of the "
        "lease later, so two may fail before the lease lapses.",
        {"error": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "lease.lost",
        "The app's lease is lost: storage refused a renewal with 409 (it lapsed and was taken, "
        "or was broken), or renewals kept failing until it could have lapsed (`error_code` "
        "lapsed). The app's work stops before its next write; the next run finishes it (I5).",
        {"error_code": "string"},
        optional=("error_code",),
        context=("run_id", "app_id"),
    ),
    _event(
        "lease.release_failed",
        "Giving the lease back failed; it expires by itself within the lease time.",
        {"error": "string"},
        context=("run_id", "app_id"),
    ),
    # ----- consumers (opt-in: ROTATION_CONSUMERS_ENABLED) -----------------------------------------
    _event(
        "consumers.scanned",
        "The run's (or status') look at consumer sites: how many sites and slots were read and "
        "how many reference our vault.",
        {"sites": "int", "consumers": "int"},
    ),
    _event(
        "consumer.unreachable",
        "A consumer site, its slots or a subscription's site list could not be read or "
        "refreshed (`error`, ARM's own words); no app retires early while it lasts.",
        {"site": "string", "error": "string"},
    ),
    _event(
        "consumer.refreshed",
        "After a promotion, a consumer site was asked to resolve its Key Vault references now.",
        {"site": "string"},
        context=("run_id", "app_id"),
    ),
    _event(
        "consumers.checked",
        "After a promotion, whether every consumer site confirmed the new `version` "
        "(`confirmed`), over how many sites, with how many unreachable.",
        {"version": "string", "confirmed": "bool", "sites": "int", "unreachable": "int"},
        context=("run_id", "app_id"),
    ),
    _event(
        "consumer.confirmed",
        "A consumer site's Key Vault reference (`setting`) resolves to the current version "
        "(`active_version`) of the app's secret (`secret_name`).",
        {
            "site": "string",
            "setting": "string",
            "setting_type": "string",
            "secret_name": "string",
            "active_version": "string",
        },
        context=("run_id", "app_id"),
    ),
    _event(
        "consumer.unconfirmed",
        "A consumer site's Key Vault reference does not (yet) resolve to the current version: "
        "its `status` and `problem`; old secrets wait for the grace period.",
        {
            "site": "string",
            "setting": "string",
            "setting_type": "string",
            "status": "string",
            "active_version": "string",
            "problem": "string",
        },
        optional=("active_version", "problem"),
        context=("run_id", "app_id"),
    ),
    # ----- Key Vault events (Event Grid trigger, rotation/vault_watch.py) -------------------------
    _event(
        "event.malformed",
        "An Event Grid delivery that is not a Key Vault secret event of the published schema "
        "(a field missing, null or of the wrong type; `reason` names it): dropped, never retried.",
        {"reason": "string", "event_id": "string"},
        optional=("event_id",),
    ),
    _event(
        "event.ignored",
        "A Key Vault event that asks nothing of the rotator (`reason`): the rotator's own write, a "
        "repeat, a version already superseded, another vault, an event type not handled. An "
        "unmanaged secret's event is logged at debug level only.",
        {
            "reason": "string",
            "event_id": "string",
            "event_type": "string",
            "secret_name": "string",
            "vault_version": "string",
        },
        optional=("event_id", "event_type", "secret_name", "vault_version"),
    ),
    _event(
        "event.received",
        "A Key Vault event for a managed secret, and what it asks (`verdict`: rotate, check_drift).",
        {
            "event_id": "string",
            "event_type": "string",
            "secret_name": "string",
            "vault_version": "string",
            "verdict": "string",
            "reason": "string",
        },
        context=("app_id",),
    ),
    _event(
        "vault.drift_detected",
        "A version of a managed secret the rotator did not write (drift), checked read-only by "
        "SMTP AUTH: `smtp` accepted, refused or unverified (`error` says why). Warning when "
        "accepted, error otherwise. The app is blocked (nothing rotated over it, nothing retired) "
        "until an operator resolves it; alerts. Logged by the Key Vault event handler's check, "
        "and by every run that meets the drift (once per app per run; events may be off): a run "
        "checks nothing, its `smtp` and `marked` are what the version's tags record.",
        {
            "secret_name": "string",
            "vault_version": "string",
            "appeared": "string",
            "smtp": "string",
            "error": "string",
            "marked": "bool",
        },
        optional=("error",),
        context=("app_id",),
    ),
)
BY_NAME: Mapping[str, Event] = {e.name: e for e in EVENTS}
