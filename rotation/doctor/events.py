"""doctor's look at Key Vault events (issue 26): the vault's Event Grid subscription exists,
delivers to this app's `key_vault_events` function, filters the event types the rotator
handles, and is delivering: nothing dead-lettered or dropped in the last week (the system
topic's metrics). Without it near expiry and hand-written versions wait for the next timer
run, and drift (rotation/core/drift.py) is only caught there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rotation.azure import event_grid
from rotation.azure.wire import Problem
from rotation.doctor.shared import Check, Clients, Facts
from rotation.errors import PermissionDenied, describe
from rotation.model import EventSubscriptionEntry
from rotation.resource_ids import system_topic_id
from rotation.vault_events import EventKind

NAME = "key vault events"
FUNCTION = "key_vault_events"
WINDOW_DAYS = 7
EVENT_TYPES = tuple(kind.value for kind in EventKind)  # the ones the handler parses (finding 21)
SUBSCRIBE = "azd env set KEY_VAULT_EVENTS true && azd provision   # after the code is deployed"


async def key_vault_events(facts: Facts, clients: Clients) -> list[Check]:
    vault_id = facts.settings.key_vault_resource_id
    if not vault_id:
        return [Check(NAME, "warn", "not checked: ROTATION_KEY_VAULT_RESOURCE_ID is not set")]
    topic_id = system_topic_id(vault_id)
    try:
        found = await event_grid.subscription(clients.arm, vault_id)
    except PermissionDenied as exc:
        return [
            Check(
                NAME,
                "fail",
                f"cannot read the Key Vault event subscription: {describe(exc)}",
                f'az role assignment create --assignee {facts.me} --role "Reader" '
                f"--scope {topic_id}",
            )
        ]
    if found is None and not facts.settings.key_vault_events:  # off, infra's default
        return [
            Check(
                NAME,
                "ok",
                "off: ROTATION_KEY_VAULT_EVENTS is false (infra's KEY_VAULT_EVENTS, false by "
                "default) and no subscription exists; near expiry and hand-written versions wait "
                f"for the next timer run (to turn them on: {SUBSCRIBE.split('   #')[0]})",
            )
        ]
    if found is None:
        return [
            Check(
                NAME,
                "fail",
                f"no event subscription {event_grid.SUBSCRIPTION_NAME} on {topic_id}: near expiry "
                "and hand-written versions of the managed secrets wait for the next timer run",
                SUBSCRIBE,
            )
        ]
    if isinstance(found, Problem):  # it exists, but ARM's answer cannot be read
        return [Check(NAME, "fail", f"cannot read the subscription: {found}", SUBSCRIBE)]
    wrong = _misconfigured(found, facts)
    if wrong is not None:
        return [Check(NAME, "fail", f"subscription {found.id}: {wrong}", SUBSCRIBE)]
    seen = await event_grid.deliveries(clients.arm, found.topic_id, datetime.now(UTC), WINDOW_DAYS)
    if isinstance(seen, Problem):  # unread is not "none lost"
        return [
            Check(
                NAME,
                "warn",
                f"subscribed, but its delivery metrics are not readable ({seen}): dead-lettered "
                "or dropped events would go unseen here",
                f"az monitor metrics list --resource {found.topic_id} --metrics "
                f"{' '.join(event_grid.METRICS)} --aggregation Total --offset {WINDOW_DAYS}d",
            )
        ]
    lost = seen.dead_lettered + seen.dropped
    if lost:
        return [
            Check(
                NAME,
                "fail",
                f"not delivering: in {seen.days} days {seen.dead_lettered} event(s) were "
                f"dead-lettered and {seen.dropped} dropped ({seen.delivered} delivered); each "
                "is a near expiry not rotated or a hand-written version not checked",
                "read the blobs of the key-vault-events-deadletter container (they name the "
                "event and the last error), fix what the function answered, then rotate the "
                "apps they name: POST /api/rotations",
            )
        ]
    return [
        Check(
            NAME,
            "ok",
            f"subscribed ({found.subject_begins_with}*{found.subject_ends_with}, "
            f"{len(found.event_types)} event types); {seen.delivered} event(s) delivered in "
            f"{seen.days} days, none dead-lettered or dropped",
        )
    ]


def _misconfigured(found: EventSubscriptionEntry, facts: Facts) -> str | None:
    if found.state.lower() != "succeeded":
        return f"provisioning state {found.state or 'unknown'}, not Succeeded"
    target = found.destination.lower()
    if found.endpoint_type != "AzureFunction" or not target.endswith(f"/functions/{FUNCTION}"):
        return f"it delivers to {found.endpoint_type} {found.destination}, not {FUNCTION}"
    site = facts.site
    if site.in_azure and f"/sites/{site.function_app.lower()}/" not in target:
        return f"it delivers to another Function App ({found.destination})"
    missing = [t for t in EVENT_TYPES if t not in found.event_types]
    if missing:
        return f"it leaves out {', '.join(t.rsplit('.', 1)[-1] for t in missing)}"
    prefix, _, suffix = facts.settings.secret_name_template.partition("{app_id}")
    if (found.subject_begins_with.lower(), found.subject_ends_with.lower()) != (
        prefix.lower(),
        suffix.lower(),
    ):
        return (
            f"its subject filter ({found.subject_begins_with}*{found.subject_ends_with}) is not "
            f"the secret name template's ({prefix}*{suffix})"
        )
    if not found.dead_letter:
        return "it has no dead-letter destination: undeliverable events would be lost unseen"
    return None
