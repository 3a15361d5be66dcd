"""The JSON answers (rotation/answers.py): the bytes clients receive, and docs/openapi.yaml.

The expected bodies below were recorded from the hand-written ``as_dict`` methods the models
replaced: same names, same order, nulls where there were nulls, members absent where they
were absent, and Python's isoformat for times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from rotation import answers
from rotation.doctor import Check, Site
from rotation.http_api import problem, to_json
from rotation.misconfigured import Misconfigured
from rotation.model import (
    Action,
    AppOutcome,
    ConsumerCheck,
    ConsumerReference,
    Mode,
    Outcome,
    Requester,
    RunReport,
)
from rotation.service import StatusRow
from tests import openapi_doc

T = datetime(2026, 11, 30, 2, 0, 0, 123456, tzinfo=UTC)
SITE = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/web"
RESOLVED = ConsumerReference(
    SITE, "SMTP_PASSWORD", "acs-smtp-a", "Resolved", None, "v2", None, "kv", T
)
PINNED = ConsumerReference(
    SITE, "SMTP_USERNAME", "acs-smtp-a-username", "SecretNotFound", "v1", None, "not found", "kv",
    setting_type="connectionString",
)  # fmt: skip
CONSUMERS = ConsumerCheck("v2", (RESOLVED, PINNED), ("site-x: 403",), "acs-smtp-a")
ROTATED = AppOutcome(
    "a", "acs-smtp-a", Action.ROTATE, "expiring", Outcome.ROTATED, "k2", ["k1"],
    T + timedelta(days=180), 1.23456, None, CONSUMERS, ["x: y"],
)  # fmt: skip
BUSY = AppOutcome("b", "acs-smtp-b", Action.NOTHING, "fine", Outcome.BUSY, held_by="5c0ffee5a1b2")
UNCHANGED = AppOutcome(
    "c", "acs-smtp-c", Action.NOTHING, "fine", Outcome.UNCHANGED, duration_seconds=0.1
)
OPERATOR = Requester("user", "0b1c2d3e-0000-4000-8000-000000000001", "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "ops@contoso.example", "Rotation.Rotate")  # fmt: skip
REPORT = RunReport(
    "run-1", Mode.DUE, False, T, T + timedelta(seconds=3), [ROTATED, BUSY, UNCHANGED, BUSY],
    requested_by=OPERATOR,
)  # fmt: skip
EMPTY_REPORT = RunReport("run-2", Mode.EMERGENCY, True, T)
DUE_ROW = StatusRow(
    "a", "res.a.t", "acs-smtp-a", "k1", T, 12.345, "v1", 2, "due",
    (("res.a.t", "smtp-username"), ("res|a|t", "role")), None, CONSUMERS,
)  # fmt: skip
SKIPPED_ROW = StatusRow(
    "b", "", "", None, None, None, None, 0, "skipped", reason="managed identity"
)
CHECKS = [Check("vault", "ok", "reachable"), Check("smtp", "fail", "no", "az x")]

CONSUMERS_BODY = {
    "version": "v2",
    "confirmed": False,
    "references": [
        {
            "site": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/web",
            "setting": "SMTP_PASSWORD",
            "vaultName": "kv",
            "secretName": "acs-smtp-a",
            "status": "Resolved",
            "pinnedVersion": None,
            "activeVersion": "v2",
            "details": None,
            "confirmed": "2026-11-30T02:00:00.123456+00:00",
            "problem": None,
            "settingType": "appSetting",
        },
        {
            "site": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/web",
            "setting": "SMTP_USERNAME",
            "vaultName": "kv",
            "secretName": "acs-smtp-a-username",
            "status": "SecretNotFound",
            "pinnedVersion": "v1",
            "activeVersion": None,
            "details": "not found",
            "confirmed": None,
            "problem": "pinned to version v1: it never follows a rotation; remove the version from the reference",
            "settingType": "connectionString",
        },
    ],
    "unreachable": ["site-x: 403"],
}
BUSY_BODY = {
    "appId": "b",
    "secretName": "acs-smtp-b",
    "action": "nothing",
    "reason": "fine",
    "outcome": "busy",
    "newKeyId": None,
    "removedKeyIds": [],
    "expires": None,
    "durationSeconds": 0.0,
    "error": None,
    "consumers": None,
    "cleanupFailures": [],
    "heldBy": "5c0ffee5a1b2",
}
RUN = {
    "runId": "run-1",
    "mode": "due",
    "dryRun": False,
    "started": "2026-11-30T02:00:00.123456+00:00",
    "finished": "2026-11-30T02:00:03.123456+00:00",
    "ok": True,
    "counts": {"rotated": 1, "busy": 2, "unchanged": 1},
    "unfinished": [],
    "busy": ["b", "b"],
    "blocked": [],
    "apps": [
        {
            "appId": "a",
            "secretName": "acs-smtp-a",
            "action": "rotate",
            "reason": "expiring",
            "outcome": "rotated",
            "newKeyId": "k2",
            "removedKeyIds": ["k1"],
            "expires": "2027-05-29T02:00:00.123456+00:00",
            "durationSeconds": 1.235,
            "error": None,
            "consumers": CONSUMERS_BODY,
            "cleanupFailures": ["x: y"],
            "heldBy": None,
        },
        BUSY_BODY,
        {
            "appId": "c",
            "secretName": "acs-smtp-c",
            "action": "nothing",
            "reason": "fine",
            "outcome": "unchanged",
            "newKeyId": None,
            "removedKeyIds": [],
            "expires": None,
            "durationSeconds": 0.1,
            "error": None,
            "consumers": None,
            "cleanupFailures": [],
            "heldBy": None,
        },
        BUSY_BODY,
    ],
    "requestedBy": {
        "type": "user",
        "objectId": "0b1c2d3e-0000-4000-8000-000000000001",
        "appId": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "name": "ops@contoso.example",
        "role": "Rotation.Rotate",
    },
    "skippedItems": [],
}
EMPTY_RUN = {
    "runId": "run-2",
    "mode": "emergency",
    "dryRun": True,
    "started": "2026-11-30T02:00:00.123456+00:00",
    "finished": None,
    "ok": True,
    "counts": {},
    "unfinished": [],
    "busy": [],
    "blocked": [],
    "apps": [],
    "requestedBy": None,
    "skippedItems": [],
}
STATUS = {
    "apps": [
        {
            "appId": "a",
            "smtpUsername": "res.a.t",
            "smtpUsernameSource": "smtp-username",
            "usernames": [
                {"username": "res.a.t", "source": "smtp-username"},
                {"username": "res|a|t", "source": "role"},
            ],
            "secretName": "acs-smtp-a",
            "keyId": "k1",
            "expires": "2026-11-30T02:00:00.123456+00:00",
            "daysLeft": 12.3,
            "vaultVersion": "v1",
            "credentials": 2,
            "state": "due",
            "reason": None,
            "consumers": CONSUMERS_BODY,
        },
        {
            "appId": "b",
            "smtpUsername": "",
            "smtpUsernameSource": None,
            "usernames": [],
            "secretName": "",
            "keyId": None,
            "expires": None,
            "daysLeft": None,
            "vaultVersion": None,
            "credentials": 0,
            "state": "skipped",
            "reason": "managed identity",
            "consumers": None,
        },
    ]
}
DOCTOR = {
    "ok": False,
    "checks": [
        {"check": "vault", "status": "ok", "detail": "reachable", "fix": None},
        {"check": "smtp", "status": "fail", "detail": "no", "fix": "az x"},
    ],
}
BUSY_409 = {
    "error": {
        "code": "rotation_in_progress",
        "message": "busy",
        "appIds": ["b"],
        "report": EMPTY_RUN,
    }
}
DUPLICATE_KEY = {"error": {"code": "duplicate_key", "message": "dup", "key": "mode"}}
INVALID_FIELD = {"error": {"code": "invalid_request", "message": "f: bad", "field": "f"}}
UPSTREAM = {"error": {"code": "upstream_failed", "message": "x"}}


def same_bytes(body: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Equal, key order included: what `to_json` writes is compared, not just the values."""
    return to_json(body) == to_json(expected)


def test_a_run_report_keeps_its_wire_form() -> None:
    assert same_bytes(answers.RunReport.of(REPORT).body(), RUN)
    assert same_bytes(answers.RunReport.of(EMPTY_REPORT).body(), EMPTY_RUN)


def test_status_keeps_its_wire_form() -> None:
    assert same_bytes(answers.Status.of([DUE_ROW, SKIPPED_ROW]).body(), STATUS)


def test_doctor_keeps_its_wire_form() -> None:
    assert same_bytes(answers.DoctorReport.of(CHECKS).body(), DOCTOR)


def test_error_bodies_carry_only_the_members_they_were_given() -> None:
    assert same_bytes(
        problem(409, "rotation_in_progress", "busy", app_ids=["b"], report=EMPTY_REPORT)[1],
        BUSY_409,
    )
    assert same_bytes(problem(400, "duplicate_key", "dup", key="mode")[1], DUPLICATE_KEY)
    assert same_bytes(problem(400, "invalid_request", "f: bad", field="f")[1], INVALID_FIELD)
    assert same_bytes(problem(502, "upstream_failed", "x")[1], UPSTREAM)


async def test_the_misconfigured_answers_keep_their_wire_form() -> None:
    line = "invalid settings: ROTATION_TENANT_ID: not a GUID"
    error = {"code": "invalid_settings", "message": line}
    fix = (
        "azd provision (the deployment sets ROTATION_TENANT_ID itself); or at once, until the "
        "next provision: az functionapp config appsettings set -g rg-x -n func-x --settings "
        "ROTATION_TENANT_ID=<value>"
    )
    app = Misconfigured(line, Site("func-x", "rg-x", True))
    assert same_bytes(app.health()[1], {"status": "misconfigured", "error": error})
    check = {"check": "settings", "status": "fail", "detail": line, "fix": fix}
    doctor = {"ok": False, "checks": [check], "error": error}
    assert same_bytes((await app.doctor({}))[1], doctor)
    assert same_bytes((await app.status({}))[1], {"error": error})


def test_times_are_written_as_isoformat_not_pydantics_z_form() -> None:
    body = answers.AppOutcome.of(ROTATED).body()
    assert body["expires"] == "2027-05-29T02:00:00.123456+00:00"


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (answers.RunReport, RUN),
        (answers.RunReport, EMPTY_RUN),
        (answers.Status, STATUS),
        (answers.DoctorReport, DOCTOR),
        (answers.Problem, BUSY_409),
        (answers.Problem, DUPLICATE_KEY),
        (answers.Problem, UPSTREAM),
    ],
)
def test_each_answer_fits_the_schema_its_model_publishes(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    """What the docs are generated from describes what is sent: every member required
    there is present, every type and enum holds, absent members are not required."""
    schema = model.model_json_schema(mode="serialization")
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
    assert errors == []


def test_a_body_missing_a_member_does_not_fit_the_schema() -> None:
    """The check above can fail: an answer without `finished` is refused."""
    body = {k: v for k, v in EMPTY_RUN.items() if k != "finished"}
    schema = answers.RunReport.model_json_schema(mode="serialization")
    assert not Draft202012Validator(schema).is_valid(body)


def test_openapi_schemas_are_the_ones_the_models_generate() -> None:
    assert openapi_doc.checked_in() == openapi_doc.block(), (
        "docs/openapi.yaml is out of date: regenerate with `python -m tests.openapi_doc --write`"
    )


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_every_reference_in_openapi_resolves_and_every_schema_is_used() -> None:
    doc = yaml.safe_load(openapi_doc.DOC.read_text(encoding="utf-8"))
    refs = _refs(doc)
    defined = {
        f"#/components/{kind}/{name}"
        for kind in ("schemas", "responses")
        for name in doc["components"][kind]
    }
    assert refs <= defined, refs - defined
    assert defined <= refs, defined - refs


def test_the_doc_lists_every_answer_model() -> None:
    """A new answer model is documented too (or the generator's list is wrong)."""
    models = {
        name
        for name, value in vars(answers).items()
        if isinstance(value, type)
        and issubclass(value, answers.AnswerModel)
        and value is not answers.AnswerModel
    }
    assert models <= set(openapi_doc.schemas())
