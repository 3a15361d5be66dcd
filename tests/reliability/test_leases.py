"""One rotation per app across processes and instances: the blob lease (rotation/azure/blob_lease.py)
in Azurite, the sandbox's storage, reached with the rotator's identity.

- two rotator processes forced on the same apps: each app is rotated exactly once, and the
  run that finds an app held reports it busy (not failed);
- a rotator killed while it holds a lease: the next run finds the app busy, then proceeds
  once the lease has expired by itself (15 s, the shortest lease Azure gives); before the
  kill, the lease outlived its own duration because the holder renewed it;
- two Function App instances: an HTTP request for apps the other instance is rotating gets
  409 listing them, and a timer run there reports them busy without failing;
- the lease store down: the run fails closed naming the storage account; nothing rotates.

Each overlap is made certain by a condition, not by timing: the first rotator's new secrets
do not propagate (SMTP AUTH keeps refusing them) until the second run has answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from asyncio.subprocess import Process
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from rotation.errors import LeaseStoreUnavailable, LeaseTaken
from rotation.http_api import Api
from rotation.model import Mode, Outcome, RunOptions
from sandbox.azurite import ACCOUNT
from sandbox.server import Sandbox, unreachable_vault_url
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import (
    REPO,
    MakeWorld,
    World,
    function_handlers,
    load_function_app,
    open_service,
    set_propagation_delay,
    wait_until,
)

#: Azure's shortest lease ("Lease Blob": x-ms-lease-duration 15-60 s, or infinite).
SHORTEST_LEASE = 15
NEVER = 3600  # seconds: new secrets that never propagate while the test looks


async def rotator(world: World, *args: str) -> Process:
    env = {**os.environ, **world.env, "PYTHONPATH": REPO}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rotation", "run", "--force", "--json", *args,
        env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def report_of(process: Process, evidence: LeakScan) -> dict[str, Any]:
    out, err = await process.communicate()
    evidence.add("rotator stdout", out.decode())
    evidence.add("rotator stderr", err.decode())
    assert process.returncode == 0, err.decode()[-2000:]
    report: dict[str, Any] = json.loads(out)
    return report


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {a["appId"]: a["outcome"] for a in report["apps"]}


def versions(world: World) -> dict[str, int]:
    return {s.app_id: len(world.state.vault[world.secret_name(s).lower()]) for s in world.senders}


async def creating_everywhere(world: World, before: dict[str, set[str]], what: str) -> None:
    """Until each app has a new credential of ours: its rotation (and lease) is under way."""
    await wait_until(
        lambda: all(world.our_key_ids(s) - before[s.app_id] for s in world.senders),
        what,
        timeout=60,
    )


@pytest.mark.slow
async def test_two_processes_forced_on_the_same_apps_rotate_each_app_once(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    world = make_world(3, verify_timeout_seconds=120)
    await world.service.run()  # every app has a password in Key Vault
    ours = {s.app_id: world.our_key_ids(s) for s in world.senders}
    kv_before = versions(world)
    set_propagation_delay(sandbox, NEVER)

    first = await rotator(world)
    await creating_everywhere(world, ours, "the first process to be verifying every app")
    second = await report_of(await rotator(world), evidence)
    set_propagation_delay(sandbox, 0)  # now the first process's secrets pass SMTP AUTH
    first_report = await report_of(first, evidence)

    ids = {s.app_id for s in world.senders}
    assert outcomes(second) == dict.fromkeys(ids, Outcome.BUSY.value)
    assert second["ok"] is True
    assert set(second["busy"]) == ids
    assert outcomes(first_report) == dict.fromkeys(ids, Outcome.ROTATED.value)
    for sender in world.senders:
        assert len(world.our_key_ids(sender) - ours[sender.app_id]) == 1, "rotated twice"
        assert versions(world)[sender.app_id] == kv_before[sender.app_id] + 1
        assert world.password_works(sender)
    ledger.record(
        "two rotator processes forced on the same apps (blob lease in Azurite)",
        "process 1 `run --force` over 3 apps, held in verification; process 2 `run --force` "
        "over the same apps meanwhile",
        "each app rotated exactly once (one new credential, one new Key Vault version); "
        "process 2 reported all 3 busy, exit 0, nothing failed",
    )


@pytest.mark.slow
async def test_a_killed_holders_lease_expires_by_itself_and_the_next_run_proceeds(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    world = make_world(1, lease_seconds=SHORTEST_LEASE, verify_timeout_seconds=120)
    sender = world.senders[0]
    await world.service.run()
    ours = {sender.app_id: world.our_key_ids(sender)}
    set_propagation_delay(sandbox, NEVER)
    process = await rotator(world)
    await creating_everywhere(world, ours, "the rotator to hold the app's lease")
    held_since = time.monotonic()
    # Held for longer than the lease lasts: only renewals keep it.
    await wait_until(
        lambda: time.monotonic() - held_since > SHORTEST_LEASE + 2,
        "one lease duration to pass",
        timeout=SHORTEST_LEASE + 5,
    )
    (renewed,) = (await world.service.run(RunOptions(mode=Mode.FORCE))).outcomes
    assert renewed.outcome is Outcome.BUSY, renewed
    assert process.returncode is None, "the holder finished early"

    process.kill()
    await process.communicate()
    killed = time.monotonic()
    set_propagation_delay(sandbox, 0)
    (right_after,) = (await world.service.run(RunOptions(mode=Mode.FORCE))).outcomes
    assert right_after.outcome is Outcome.BUSY  # a dead holder releases nothing
    leases = world.service.clients.leases
    assert leases is not None

    async def expired() -> None:
        while True:
            try:
                async with leases.hold(sender.app_id):
                    return
            except LeaseTaken:
                await asyncio.sleep(0.5)

    await asyncio.wait_for(expired(), timeout=SHORTEST_LEASE + 15)
    waited = time.monotonic() - killed
    (after,) = (await world.service.run(RunOptions(mode=Mode.FORCE))).outcomes
    assert after.outcome is Outcome.ROTATED, after
    assert world.password_works(sender)
    ledger.record(
        "a rotator killed (SIGKILL) while it holds an app's lease",
        f"lease {SHORTEST_LEASE} s; holder verifying for {SHORTEST_LEASE + 2} s (renewing), "
        "then killed; runs right after, then once the lease is free",
        f"busy while renewed and right after the kill; free {waited:.0f} s after the kill "
        "(expired by itself); the next run rotated",
    )


async def test_two_instances_http_409_lists_busy_apps_and_the_timer_reports_them_busy(
    sandbox: Sandbox,
    make_world: MakeWorld,
    monkeypatch: pytest.MonkeyPatch,
    evidence: LeakScan,
    ledger: Ledger,
) -> None:
    world = make_world(2, grace_hours=0, verify_timeout_seconds=120)
    await world.service.run()
    for sender in world.senders:  # due, so that the timer wants them too
        for password in sender.app.passwords:
            password.end = world.state.clock.now() + timedelta(days=10)
    ours = {s.app_id: world.our_key_ids(s) for s in world.senders}
    ids = sorted(s.app_id for s in world.senders)
    instance_a = Api(world.settings, lambda s: open_service(world.sandbox, s))
    module_b = load_function_app(monkeypatch, world)
    instance_b = function_handlers(module_b)
    set_propagation_delay(sandbox, NEVER)

    body = json.dumps({"appIds": ids, "mode": "force"}).encode()
    running = asyncio.ensure_future(instance_a.rotations(body, world.auth))
    await creating_everywhere(world, ours, "instance A to be verifying both apps")
    request = func.HttpRequest("POST", "/api/rotations", body=body, headers=world.auth)
    answer = await instance_b["rotations"](request)
    evidence.add("HTTP answer", answer.get_body().decode())
    await instance_b["rotation_timer"](TimerRequest(past_due=False))  # raises if any failed
    set_propagation_delay(sandbox, 0)
    status, report = await running
    await instance_a.close()
    await module_b.api.close()

    error = json.loads(answer.get_body())["error"]
    assert answer.status_code == 409
    assert error["code"] == "rotation_in_progress"
    assert sorted(error["appIds"]) == ids
    assert error["report"]["busy"] == error["appIds"]
    assert f"run {report['runId']}: " in error["message"], "the holder is named"
    assert {a["heldBy"] for a in error["report"]["apps"]} == {report["runId"]}
    assert status == 200
    assert outcomes(report) == dict.fromkeys(ids, Outcome.ROTATED.value)
    for sender in world.senders:
        assert len(world.our_key_ids(sender) - ours[sender.app_id]) == 1, "rotated twice"
    ledger.record(
        "two Function App instances (HTTP on A; HTTP and timer on B)",
        "A rotating 2 apps (held in verification); B: POST /api/rotations for them, then "
        "its timer run",
        "B answered 409 listing both apps and naming A's run (read from the lease blob); "
        "B's timer reported them busy and did not fail; A rotated each once",
    )


@pytest.mark.slow
async def test_lease_store_down_fails_the_run_closed_and_nothing_rotates(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    down = f"{unreachable_vault_url()}/{ACCOUNT}"
    world = make_world(2, lease_blob_url=down)
    api = Api(world.settings, lambda s: open_service(world.sandbox, s))
    writes = world.writes()

    status, answer = await api.rotations(json.dumps({"mode": "force"}).encode(), world.auth)
    with pytest.raises(LeaseStoreUnavailable, match=f"storage account {ACCOUNT}") as caught:
        await api.timer()
    await api.close()
    evidence.add("HTTP answer", answer)
    evidence.add_exception("timer run", caught.value)

    assert status == 503
    assert answer["error"]["code"] == "lease_store_unavailable"
    assert f"storage account {ACCOUNT} ({down})" in answer["error"]["message"]
    assert world.writes() == writes == 0
    for sender in world.senders:
        assert world.our_key_ids(sender) == set()
    ledger.record(
        "lease store (the Function App's storage) unreachable",
        "POST /api/rotations force, then a timer run, with the blob endpoint on a closed port",
        "HTTP 503 naming the storage account; the timer run failed with the same error; "
        "0 writes to Graph or Key Vault",
    )
