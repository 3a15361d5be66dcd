"""Malformed answers through the real SDKs (issue 23 item 5): one item, one field, wrong.

Hypothesis picks a wire object the product reads (a Graph application or one of its
password credentials, a service principal, a Key Vault listing item, a role assignment, an
SMTP Username), one of the fields the product reads from it, and what is wrong with it:
missing, null, of the wrong type, or a date out of range. The sandbox rewrites that item
of its answer (sandbox.faults.Rewrite) for one of three fresh senders, and the rotator runs
through function_app's HTTP triggers (POST /api/rotations, GET /api/status).

The property: nothing answers 5xx; only the affected sender is failed, flagged or skipped
(or its item counted in skippedItems); the two others are rotated, or left as they are,
and what Key Vault serves them passes SMTP AUTH; no answer holds a secret.

`MALFORMED_ANSWER_EXAMPLES` sets how many cases run (6 in `make test`; `make soak` 150).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.seed import Sender
from sandbox.server import Sandbox
from tests.function.test_function_app import get, load, post

EXAMPLES = int(os.environ.get("MALFORMED_ANSWER_EXAMPLES", "6"))

STR, DATE, EPOCH, LIST, OBJECT, BOOL, GUID = (
    "str",
    "date",
    "epoch",
    "list",
    "object",
    "bool",
    "guid",
)
#: Wrong values for each kind of field: of another JSON type, or a date no service writes.
WRONG: dict[str, list[object]] = {
    STR: [42, [], {}, True],
    GUID: [42, "not-a-guid", [], {}],
    DATE: [42, "soon", "10000-01-01T00:00:00Z", "2026-01-01T00:00:00", [], True],
    EPOCH: ["yesterday", 10**20, -(10**18), 1.5, [], True],
    LIST: ["none", 42, {}],
    OBJECT: ["x", 42, []],
    BOOL: ["yes", 1, [], None],
}


@dataclass(frozen=True)
class Field:
    """One field the product reads: where it is, in which answer, what kind it is."""

    wire: str  # which object
    route: str  # the sandbox route whose answer holds it
    path: str  # dotted path inside the object
    kind: str
    vault: bool = False  # the item exists only once the app's password is in Key Vault
    via: str = "role"


APP, SP = "graph GET /applications", "graph GET /servicePrincipals"
LISTING, ARM = "vault GET /secrets", "arm GET *"
FIELDS = [
    *(Field("application", APP, p, k) for p, k in [
        ("id", STR), ("appId", GUID), ("displayName", STR), ("createdDateTime", DATE),
        ("passwordCredentials", LIST), ("passwordCredentials.0", OBJECT),
        ("passwordCredentials.0.keyId", GUID), ("passwordCredentials.0.displayName", STR),
        ("passwordCredentials.0.startDateTime", DATE), ("passwordCredentials.0.endDateTime", DATE),
        ("passwordCredentials.0.hint", STR),
    ]),
    *(Field("service principal", SP, p, k) for p, k in [
        ("id", STR), ("appId", GUID), ("servicePrincipalType", STR),
        ("appOwnerOrganizationId", GUID),
    ]),
    *(Field("vault item", LISTING, p, k, vault=True) for p, k in [
        ("id", STR), ("attributes", OBJECT), ("attributes.enabled", BOOL),
        ("attributes.created", EPOCH), ("attributes.exp", EPOCH), ("tags", OBJECT),
        ("tags.key-id", STR), ("tags.smtp-username", STR), ("tags.settled-version", STR),
    ]),
    *(Field("role assignment", ARM, p, k) for p, k in [
        ("properties", OBJECT), ("properties.scope", STR), ("properties.principalId", GUID),
        ("properties.principalType", STR), ("properties.roleDefinitionId", STR),
    ]),
    *(Field("smtp username", ARM, p, k, via="both") for p, k in [
        ("properties", OBJECT), ("properties.username", STR),
        ("properties.entraApplicationId", GUID), ("properties.tenantId", GUID),
    ]),
]  # fmt: skip


@st.composite
def cases(draw: st.DrawFn) -> tuple[Field, str, object]:
    """(field, "missing" | "null" | "wrong", the wrong value)."""
    where = draw(st.sampled_from(FIELDS), label="field")
    how = draw(st.sampled_from(["missing", "null", "wrong"]), label="how")
    value = draw(st.sampled_from(WRONG[where.kind]), label="value") if how == "wrong" else None
    return where, how, value


def match(where: Field, sender: Sender) -> dict[str, str]:
    """How the rewrite finds the affected sender's item in its answer."""
    return {
        "application": {"appId": sender.app_id},
        "service principal": {"appId": sender.app_id},
        "vault item": {"tags.app-id": sender.app_id, "contentType": "smtp-password"},
        "role assignment": {"properties.principalId": sender.principal_id},
        "smtp username": {"properties.entraApplicationId": sender.app_id},
    }[where.wire]


@pytest.fixture
async def fa(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModuleType]:
    module = load(sandbox, monkeypatch)
    yield module
    await module.api.close()


def secrets_of(sandbox: Sandbox) -> list[str]:
    return [p.secret_text for a in sandbox.state.applications.values() for p in a.passwords]


def serves_a_working_password(sandbox: Sandbox, sender: Sender) -> bool:
    live = sandbox.state.live_secret(f"acs-smtp-{sender.app_id}")
    return live is not None and sandbox.state.smtp_login(sender.username, live.value).ok


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
async def test_one_malformed_item_is_only_its_apps_problem(
    sandbox: Sandbox, fa: ModuleType, case: tuple[Field, str, object]
) -> None:
    where, how, value = case
    sandbox.state.faults.clear()
    bad = sandbox.add_sender(via=where.via, lifetime=timedelta(days=10))  # type: ignore[arg-type]
    others = [sandbox.add_sender(lifetime=timedelta(days=10)) for _ in range(2)]
    if where.vault:  # the listing item exists once the apps' passwords are in Key Vault
        status, body = await post(fa)
        assert status == 200, body
    edit = sandbox.state.faults.rewrite(
        where.route, match(where, bad), where.path, value=value, delete=how == "missing"
    )
    answers = [await post(fa), await get(fa, "status")]
    # A field to remove may be absent already (settled-version before a run settles it).
    assert edit.edited >= 1 or how == "missing", f"{where} was not in the answer"
    for status, body in answers:
        assert status < 500, body
        text = json.dumps(body)
        assert not any(s in text for s in secrets_of(sandbox)), "a secret in an answer"
    (run_status, report), (status_status, listing) = answers
    assert run_status == 200, report
    assert status_status == 200, listing
    outcomes: dict[str, dict[str, Any]] = {o["appId"]: o for o in report["apps"]}
    affected = {bad.app_id, bad.principal_id.lower()}
    for app_id, outcome in outcomes.items():
        if app_id not in affected:
            assert outcome["outcome"] in ("rotated", "unchanged"), outcome
    for sender in others:
        assert outcomes[sender.app_id]["outcome"] in ("rotated", "unchanged")
        assert serves_a_working_password(sandbox, sender)
    rows = {r["appId"]: r for r in listing["apps"]}
    flagged = {a for a, r in rows.items() if r["state"] not in ("ok", "due", "no-password")}
    assert flagged <= affected, flagged
