"""Consumers that read the password from Key Vault never notice the rotations (I1, I2, I4).

Each managed app has a consumer that reads its Key Vault secret and authenticates to the
relay about every 100 ms, while forced rotations run back to back under bad weather:
Graph 429/503 (with Retry-After), Key Vault 500/503, dropped SMTP connections and a
propagation delay on every new secret. A monitor checks every 5 ms that the password in
Key Vault works.

grace > 0: a superseded credential is removed only after the grace period, and every
consumer re-reads far more often than that, so not one AUTH may fail. (The grace counts
from the Key Vault version's `created`, which is whole seconds: a 3 s grace here is at
least 2 s in effect, still several times the longest a consumer holds a password.)

grace = 0: the unavoidable window. The old credential is removed right after the new
version is promoted, in the same run. A consumer that read the old value before the
promotion and presents it after that removal gets one 535; its next read returns the new
password, which works (it passed AUTH before it was promoted). So a rejection is allowed
only if (a) the credential it used was removed between the consumer's read and its AUTH,
(b) Key Vault already served another credential at that moment, and (c) it happens at
most once per consumer and credential. Nothing else may fail. The count and the length
of these windows are measured and reported.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from rotation import answers
from rotation.model import Mode, Outcome, RunOptions, RunReport
from sandbox.faults import Fault
from sandbox.server import Sandbox
from sandbox.state import SandboxState
from tests.reliability.consumer import (
    AppServiceConsumer,
    Consumer,
    ConsumerIdentity,
    ConsumerStats,
)
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import (
    EngineEvents,
    MakeWorld,
    VaultWatch,
    World,
    set_propagation_delay,
    wait_until,
)

APPS = 8
ROTATIONS = int(os.environ.get("RELIABILITY_ROTATIONS", "100"))  # `make soak`: 1000
SCALE = max(1, ROTATIONS // 100)  # injected fault counts grow with the rotations
PROPAGATION = 0.25
GRACE_SECONDS = (
    3.0  # in effect >= 2 s: twice what a consumer on a loaded 2-core loop was seen to hold (1.2 s)
)
#: Key Vault's `created` is whole seconds, so up to 1 s of the grace is lost to rounding.
GRACE_IN_EFFECT = GRACE_SECONDS - 1


def bad_weather(state: SandboxState) -> list[Fault]:
    """Faults with Retry-After where the real services send it; capped so that the run
    stays short (each Graph retry waits the whole second Retry-After allows; Key Vault
    5xx without Retry-After are retried at once by azure-core, then with backoff)."""
    inject = state.faults.inject
    return [
        inject("graph POST /applications/{id}/addPassword", status=429, retry_after=1, probability=0.05, times=2 * SCALE),
        inject("graph POST /applications/{id}/removePassword", status=503, retry_after=1, probability=0.05, times=2 * SCALE),
        inject("graph GET /applications", status=429, retry_after=1, probability=0.1, times=1 * SCALE),
        inject("vault PUT /secrets/{name}", status=500, probability=0.1, times=8 * SCALE),
        inject("vault PUT /secrets/{name}", status=503, probability=0.05, times=4 * SCALE),
        inject("vault PATCH /secrets/{name}/{version}", status=500, probability=0.1, times=6 * SCALE),
        inject("vault GET /secrets/{name}/versions", status=503, probability=0.05, times=4 * SCALE),
        inject("vault GET /secrets/{name}", status=503, retry_after=1, probability=0.02, times=4 * SCALE),
        inject("smtp AUTH", drop=True, probability=0.03),
        inject("smtp EHLO", drop=True, probability=0.01),
    ]  # fmt: skip


@dataclass
class Outcomes:
    rotated: int = 0
    retired: int = 0
    failed: int = 0
    runs: int = 0

    def add(self, report: RunReport, evidence: LeakScan) -> None:
        evidence.add(f"run report {report.run_id}", str(answers.RunReport.of(report).body()))
        self.runs += 1
        for o in report.outcomes:
            self.rotated += o.outcome is Outcome.ROTATED
            self.retired += len(o.removed_key_ids)
            self.failed += o.outcome is Outcome.FAILED


RotateLoop = Callable[[World, Outcomes, LeakScan], Awaitable[None]]


@dataclass
class Scene:
    world: World
    consumers: list[Consumer]
    watch: VaultWatch
    faults: list[Fault]
    events: EngineEvents


async def run_scene(
    sandbox: Sandbox,
    make_world: MakeWorld,
    evidence: LeakScan,
    grace_hours: float,
    rotate: RotateLoop,
) -> tuple[Scene, Outcomes, ConsumerStats]:
    set_propagation_delay(sandbox, PROPAGATION)
    world = make_world(APPS, grace_hours=grace_hours)
    identity = ConsumerIdentity(world)
    clients = [identity.client() for _ in world.senders]
    first = await world.service.run()  # every app gets its first password
    assert [o.outcome for o in first.outcomes] == [Outcome.ROTATED] * APPS
    consumers = [Consumer(world, s, c) for s, (c, _) in zip(world.senders, clients, strict=True)]
    scene = Scene(world, consumers, VaultWatch(world, world.senders), [], EngineEvents())
    stop = asyncio.Event()
    outcomes = Outcomes()
    with scene.events.attached():
        background: list[asyncio.Task[object]] = [
            asyncio.create_task(c.run(stop)) for c in consumers
        ]
        background.append(asyncio.create_task(scene.watch.run(stop)))
        scene.faults = bad_weather(world.state)
        try:
            await rotate(world, outcomes, evidence)
        finally:
            stop.set()
            await asyncio.gather(*background)
            world.state.faults.clear()
            for client, credential in clients:
                await client.close()
                await credential.close()
    totals = ConsumerStats()
    for consumer in consumers:
        totals.merge(consumer.stats)
    evidence.add("consumer exception texts", "\n".join(totals.errors))
    return scene, outcomes, totals


async def force_until_done(world: World, outcomes: Outcomes, evidence: LeakScan) -> None:
    """grace 0: forced runs back to back; each promotes and then removes the old secret."""
    while outcomes.rotated < ROTATIONS:
        outcomes.add(await world.service.run(RunOptions(mode=Mode.FORCE)), evidence)


async def force_then_retire(world: World, outcomes: Outcomes, evidence: LeakScan) -> None:
    """grace > 0: a forced run, then (once the grace since its promotions has passed, a
    condition on the sandbox clock) a due run that removes what it superseded."""
    grace = timedelta(seconds=GRACE_SECONDS)
    while outcomes.rotated < ROTATIONS:
        outcomes.add(await world.service.run(RunOptions(mode=Mode.FORCE)), evidence)
        # The grace counts from `created` as Key Vault reports it: whole seconds.
        newest = max(v.created for vs in world.state.vault.values() for v in vs)
        ends = newest.replace(microsecond=0) + grace
        await wait_until(lambda e=ends: world.state.clock.now() >= e, "grace to pass")  # type: ignore[misc]
        outcomes.add(await world.service.run(RunOptions(mode=Mode.DUE)), evidence)


def fault_hits(scene: Scene) -> str:
    by_kind: dict[str, int] = {}
    for fault in scene.faults:
        service = fault.route.split(" ")[0]
        kind = f"{service} {'drop' if fault.drop else fault.status}"
        by_kind[kind] = by_kind.get(kind, 0) + fault.hits
    return ", ".join(f"{k}: {n}" for k, n in sorted(by_kind.items()))


def assert_no_unexplained(scene: Scene, totals: ConsumerStats) -> None:
    assert scene.watch.violations == [], scene.watch.violations[:5]
    assert totals.served_dead == [], "Key Vault served a password whose credential was gone"
    assert totals.read_errors == 0
    unexplained = [r for r in totals.rejections if not r.explained]
    assert unexplained == [], f"{len(unexplained)} AUTH failures not explained by a removal"


def promote_to_remove_gaps(events: EngineEvents) -> list[float]:
    """Per superseded credential: seconds from its successor's promotion to its removal."""
    promoted = {str(e.fields.get("key_id")): e.at for e in events.named("vault.promoted")}
    gaps = []
    for removed in events.named("credential.removed"):
        reason = str(removed.fields.get("reason", ""))
        successor = reason.removeprefix("superseded by ").split(";")[0]
        if successor in promoted:
            gaps.append(removed.at - promoted[successor])
    return gaps


@pytest.mark.slow
async def test_grace_zero_consumers_fail_only_inside_the_unavoidable_window(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    scene, outcomes, totals = await run_scene(sandbox, make_world, evidence, 0, force_until_done)

    assert outcomes.rotated >= ROTATIONS
    assert_no_unexplained(scene, totals)
    for consumer in scene.consumers:
        keys = [r.key_id for r in consumer.stats.rejections]
        assert len(keys) == len(set(keys)), "a consumer failed twice on one credential"
    assert totals.ok > 0
    assert totals.attempts > 10 * outcomes.runs
    gaps = promote_to_remove_gaps(scene.events)
    assert len(gaps) >= outcomes.rotated - APPS  # every rotation removed its predecessor
    held = [r.held * 1000 for r in totals.rejections]
    exposure = statistics.median(1000 * h for c in scene.consumers for h in c.stats.helds)
    pairs = outcomes.rotated  # each rotation of an app meets that app's one consumer
    window = (
        f"{len(held)} AUTH failures in {pairs} (rotation, consumer) pairs, all explained: "
        f"the consumer had read the old password {statistics.median(held):.0f} ms (median; "
        f"max {max(held):.0f} ms) before its 535, and its credential was removed in between"
        if held
        else f"0 AUTH failures in {pairs} (rotation, consumer) pairs"
    )
    ledger.record(
        "consumer continuity, grace 0 (force mode)",
        f"{outcomes.rotated} rotations in {outcomes.runs} runs over {APPS} apps; "
        f"{totals.attempts} consumer read+AUTH attempts; {scene.watch.samples} I1 samples; "
        f"faults hit: {fault_hits(scene)}; {totals.transient} consumer attempts cut by drops",
        "0 unexplained failures; 0 I1 violations. The unavoidable window: a consumer that "
        "read Key Vault before the promotion and presents that password after the old "
        f"credential's removal ({1000 * statistics.median(gaps):.0f} ms median after the "
        f"promotion). Per rotation it is as long as the consumer's read-to-AUTH time "
        f"({exposure:.0f} ms median on this loaded loop). Measured: {window}; no consumer "
        "failed twice on one password",
        ok=True,
    )


@pytest.mark.slow
async def test_grace_positive_consumers_never_fail(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    scene, outcomes, totals = await run_scene(
        sandbox, make_world, evidence, GRACE_SECONDS / 3600, force_then_retire
    )

    assert outcomes.rotated >= ROTATIONS
    assert outcomes.retired >= outcomes.rotated - APPS, "old secrets were not removed"
    assert_no_unexplained(scene, totals)
    assert totals.rejections == [], "a consumer's AUTH failed although grace > 0"
    assert totals.max_held_ok < GRACE_IN_EFFECT, "the test's consumers were too slow for its grace"
    ledger.record(
        f"consumer continuity, grace {GRACE_SECONDS:g} s (force + due runs)",
        f"{outcomes.rotated} rotations and {outcomes.retired} removals in {outcomes.runs} runs "
        f"over {APPS} apps; {totals.attempts} consumer read+AUTH attempts; "
        f"{scene.watch.samples} I1 samples; faults hit: {fault_hits(scene)}; "
        f"{totals.transient} consumer attempts cut by drops",
        f"0 consumer AUTH failures; 0 I1 violations; consumers held a password at most "
        f"{1000 * totals.max_held_ok:.0f} ms before using it (grace {GRACE_SECONDS:g} s, at "
        f"least {GRACE_IN_EFFECT:g} s in effect: Key Vault's times are whole seconds)",
    )


# ----- App Service consumers: Key Vault references cached for 24 hours -------------------
#
# Each app has an App Service site and its staging slot whose app settings reference its
# password and username; their code reads what App Service resolved and cached, which is
# refetched only every 24 hours (sandbox clock) or on a refresh. The clock moves in 6 h
# steps; at each step a due run retires what it may, then every site sends with what it
# holds.

APP_SERVICE_APPS = 3
CYCLES = int(os.environ.get("RELIABILITY_APP_SERVICE_CYCLES", "3"))  # forced rotations per app
STEP = timedelta(hours=6)


@dataclass
class AppServiceScene:
    world: World
    consumers: list[AppServiceConsumer]
    outcomes: Outcomes
    early: int = 0  # old credentials removed in the run that promoted their successor

    async def send(self) -> None:
        await asyncio.gather(*(c.once() for c in self.consumers))

    @property
    def totals(self) -> ConsumerStats:
        totals = ConsumerStats()
        for consumer in self.consumers:
            totals.merge(consumer.stats)
        return totals


async def app_service_scene(
    sandbox: Sandbox,
    make_world: MakeWorld,
    evidence: LeakScan,
    *,
    hours: float,
    locked_site: bool = False,
    **settings: object,
) -> AppServiceScene:
    """`CYCLES` forced rotations of every app, each followed by `hours` of 6 h steps.
    With `locked_site`, each app also has a site the rotator may not refresh."""
    set_propagation_delay(sandbox, PROPAGATION)
    senders = [sandbox.add_sender() for _ in range(APP_SERVICE_APPS)]
    world = make_world(senders, **settings)
    sites = []
    for number, sender in enumerate(senders):
        name = world.secret_name(sender)
        sites.append((sender, sandbox.add_consumer_site(f"mailer-{number}", name)))
        slot = sandbox.add_consumer_site(f"mailer-{number}", name, form="name", slot="staging")
        sites.append((sender, slot))
        if locked_site:
            locked = sandbox.add_consumer_site(
                f"locked-{number}", name, resource_group="rg-locked", grant_rotator=False
            )
            sites.append((sender, locked))
    scene = AppServiceScene(
        world, [AppServiceConsumer(world, s, site) for s, site in sites], Outcomes()
    )
    scene.outcomes.add(await world.service.run(), evidence)  # every app's first password
    state = world.state
    for _, site in sites:  # deployed after it: the sites start with it
        site.resolutions(state.vault, state.vault_name, state.clock.now(), refresh=True)
    for _ in range(CYCLES):
        forced = await world.service.run(RunOptions(mode=Mode.FORCE))
        scene.outcomes.add(forced, evidence)
        scene.early += sum(len(o.removed_key_ids) for o in forced.outcomes)
        await scene.send()
        elapsed = timedelta(0)
        while elapsed < timedelta(hours=hours):
            state.clock.advance(STEP)
            elapsed += STEP
            scene.outcomes.add(await world.service.run(), evidence)
            await scene.send()  # right after a removal is when a stale site would fail
    evidence.add("app service consumer exception texts", "\n".join(scene.totals.errors))
    return scene


def app_service_summary(scene: AppServiceScene) -> str:
    totals = scene.totals
    return (
        f"{scene.outcomes.rotated} rotations and {scene.outcomes.retired} removals in "
        f"{scene.outcomes.runs} runs over {APP_SERVICE_APPS} apps, each read by a site and "
        f"its slot through Key Vault references cached 24 h; {totals.attempts} sends "
        f"({totals.transient} cut by drops)"
    )


@pytest.mark.slow
async def test_app_service_consumers_never_fail_with_the_default_grace(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    scene = await app_service_scene(sandbox, make_world, evidence, hours=48, grace_hours=48)

    totals = scene.totals
    assert scene.outcomes.failed == 0
    assert scene.outcomes.rotated == APP_SERVICE_APPS * (CYCLES + 1)
    assert scene.outcomes.retired >= APP_SERVICE_APPS * CYCLES, "old secrets were not removed"
    assert scene.early == 0  # consumer tracking is off: only the grace retires
    assert totals.rejections == [], "a site sent a password whose credential was gone"
    assert totals.ok > 0
    ledger.record(
        "App Service consumers (24 h cache), default grace 48 h",
        app_service_summary(scene),
        "0 AUTH failures: every site refetched within 24 h, before the grace ended",
    )


@pytest.mark.slow
async def test_app_service_consumers_do_fail_when_the_grace_is_shorter_than_their_cache(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan
) -> None:
    """The control: the same sites, a 12 h grace and no consumer checks. The check above
    can fail, and this is how."""
    scene = await app_service_scene(sandbox, make_world, evidence, hours=24, grace_hours=12)

    assert scene.totals.rejections, "sites on a 24 h cache outlived a 12 h grace unharmed"
    assert all(r.removed for r in scene.totals.rejections)


@pytest.mark.slow
async def test_confirmed_consumers_let_a_fully_covered_app_retire_at_once(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    scene = await app_service_scene(
        sandbox,
        make_world,
        evidence,
        hours=24,
        grace_hours=48,
        consumers_enabled="true",
        consumers_fully_covered="all",
    )

    assert scene.outcomes.failed == 0
    assert scene.early == APP_SERVICE_APPS * CYCLES  # each removed in its successor's run
    assert scene.totals.rejections == []
    ledger.record(
        "App Service consumers, consumer checks on, apps declared fully covered",
        app_service_summary(scene),
        f"0 AUTH failures; all {scene.early} superseded credentials removed in the run that "
        "promoted their successor, right after every site and slot confirmed the new version",
    )


@pytest.mark.slow
async def test_an_unreachable_consumer_site_keeps_the_grace_and_nobody_fails(
    sandbox: Sandbox, make_world: MakeWorld, evidence: LeakScan, ledger: Ledger
) -> None:
    scene = await app_service_scene(
        sandbox,
        make_world,
        evidence,
        hours=48,
        locked_site=True,
        grace_hours=48,
        consumers_enabled="true",
        consumers_fully_covered="all",
    )

    assert scene.outcomes.failed == 0
    assert scene.early == 0, "a site the rotator could not refresh allowed an early removal"
    assert scene.outcomes.retired >= APP_SERVICE_APPS * CYCLES
    assert scene.totals.rejections == []
    ledger.record(
        "App Service consumers, one site per app the rotator may not refresh",
        app_service_summary(scene) + "; a third site per app denies the refresh (403)",
        "0 early removals (the unreachable site holds every app to its grace); 0 AUTH failures",
    )
