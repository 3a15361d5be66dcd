"""The sandbox against real Azure sessions: every vendored recording (tests/recorded/data)
is replayed against a fresh sandbox and each answer compared with the recorded one
(recording.differences). A difference must either be fixed in sandbox/ or be listed in
docs/recorded-truth.md with why it cannot hide a product bug; a new one fails here, and so
does a listed one that no longer occurs (the table cannot go stale).
"""

from __future__ import annotations

import dataclasses
import re
import ssl
from pathlib import Path

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential

from sandbox.server import Sandbox
from tests.recorded import recording, replay
from tests.sandbox.conftest import client_secret_credential

TABLE = Path(__file__).parents[2] / "docs" / "recorded-truth.md"
_ROW = re.compile(r"^\| `([^`]+)` \|")
RECORDINGS = [r for r in recording.load_all() if r.replayed]


def listed() -> set[str]:
    """The first column of docs/recorded-truth.md's table."""
    return {m.group(1) for line in TABLE.read_text().splitlines() if (m := _ROW.match(line))}


async def replayed(rec: recording.Recording, sandbox: Sandbox) -> dict[str, str]:
    cred: ClientSecretCredential = client_secret_credential(
        sandbox, sandbox.rotator.client_id, sandbox.rotator.client_secret
    )

    async def token(scope: str) -> str:
        return (await cred.get_token(scope)).token

    trust = ssl.create_default_context(cafile=str(sandbox.ca_path))
    async with cred, httpx.AsyncClient(verify=trust, timeout=10) as http:
        return replay.keyed(rec, await replay.replay(rec, sandbox, http, token))


def verdict(case: str, found: set[str], table: set[str]) -> tuple[list[str], list[str]]:
    """The differences of `case` the table lacks, and those it lists that did not occur."""
    mine = {key for key in table if key.split("#", 1)[0] == case}
    return sorted(found - mine), sorted(mine - found)


@pytest.mark.parametrize("rec", RECORDINGS, ids=[r.case for r in RECORDINGS])
async def test_sandbox_answers_as_the_recording_did(
    rec: recording.Recording, sandbox: Sandbox
) -> None:
    new, gone = verdict(rec.case, set(await replayed(rec, sandbox)), listed())
    assert not new, (
        f"{rec.case} ({rec.source['path']} @ {rec.source['commit'][:12]}): fix the sandbox or "
        f"list in {TABLE.name} with why it cannot hide a product bug:\n" + "\n".join(new)
    )
    assert not gone, f"listed in {TABLE.name} but no longer seen:\n" + "\n".join(gone)


def test_every_listed_difference_names_a_vendored_recording() -> None:
    cases = {r.case for r in RECORDINGS}
    strays = sorted(k for k in listed() if k.split("#", 1)[0] not in cases)
    assert not strays, f"{TABLE.name} lists differences of no recording: {strays}"


async def test_a_recording_the_sandbox_does_not_match_is_caught(sandbox: Sandbox) -> None:
    """The replay itself can fail: a doctored copy of a recording (another error code, a
    Retry-After the sandbox does not send) comes back as exactly those differences."""
    rec = recording.load(recording.DATA / "kv-get-deleted-missing.json")
    challenged, missing = rec.entries
    doctored = dataclasses.replace(
        missing,
        headers={**missing.headers, "retry-after": "1"},
        body={"error": {**missing.body["error"], "code": "SecretGone"}},
    )
    found = await replayed(dataclasses.replace(rec, entries=(challenged, doctored)), sandbox)
    assert sorted(found) == [
        "kv-get-deleted-missing#2 GET: error.code: 'SecretGone' recorded, 'SecretNotFound' here",
        "kv-get-deleted-missing#2 GET: header retry-after: absent here",
    ]


async def test_a_role_definition_reads_as_the_recorded_one(sandbox: Sandbox) -> None:
    """The recorded listing's Contributor (arm-role-definition.json, not replayed: the rotator
    reads definitions by id) against the sandbox's GET of the same definition by id."""
    rec = recording.load(recording.DATA / "arm-role-definition.json")
    listed_item = rec.exchanges[0].body["value"][0]
    cred = client_secret_credential(
        sandbox, sandbox.rotator.client_id, sandbox.rotator.client_secret
    )
    trust = ssl.create_default_context(cafile=str(sandbox.ca_path))
    async with cred, httpx.AsyncClient(verify=trust, timeout=10) as http:
        token = (await cred.get_token(sandbox.arm_url + "/.default")).token
        answer = await http.get(
            f"{sandbox.arm_url}/subscriptions/{sandbox.subscription_id}/providers"
            f"/Microsoft.Authorization/roleDefinitions/{listed_item['name']}?api-version=2022-04-01",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200
    found = recording.shape_differences(
        recording.shape(listed_item), recording.shape(answer.json())
    )
    keys = {f"{rec.case}#1 GET by id: {text}" for text in found}
    new, gone = verdict(rec.case, keys, listed())
    assert not new, f"fix the sandbox or list in {TABLE.name}:\n" + "\n".join(new)
    assert not gone, f"listed in {TABLE.name} but no longer seen:\n" + "\n".join(gone)
