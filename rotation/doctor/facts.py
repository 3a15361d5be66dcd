"""The facts doctor gathers before any check runs: the identity's tokens, what discovery
found (its scans, role holders and the reads it could not make), and what ARM says the
identity may do at the vault. All read at once; nothing here raises."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rotation.azure.errors import reason
from rotation.doctor.shared import ARM, GRAPH, KEYVAULT, Clients, Facts, Site, Token
from rotation.errors import RotationError, internal_error
from rotation.model import AppRecord
from rotation.permissions import VAULT_DATA_ACTIONS
from rotation.run.discovery import Inventory, Survey, Unread, action_allowed, explore
from rotation.settings import Settings


async def gather(settings: Settings, site: Site, clients: Clients) -> Facts:
    tokens, (survey, records), vault_actions = await asyncio.gather(
        asyncio.gather(*(_token(clients, *t) for t in _token_resources(settings))),
        _survey_and_records(settings, clients),
        _vault_actions(settings, clients),
    )
    return Facts(settings, site, tuple(tokens), survey, vault_actions, records)


async def _survey_and_records(
    settings: Settings, clients: Clients
) -> tuple[Survey, Mapping[str, AppRecord] | RotationError]:
    """What discovery finds, then the managed apps' Entra records (or why Graph refused)."""
    survey = await _survey(settings, clients)
    apps = [a.app_id for a in survey.inventory.apps]
    try:
        records = await clients.entra.read_apps(apps) if apps else {}
    except Exception as exc:  # the apps check reports it
        return survey, exc if isinstance(exc, RotationError) else RotationError(internal_error(exc))
    return survey, records


def _token_resources(settings: Settings) -> list[tuple[str, str, str]]:
    return [
        (GRAPH, settings.graph_endpoint, "ROTATION_CLOUD / ROTATION_GRAPH_URL"),
        (ARM, settings.arm_endpoint, "ROTATION_CLOUD / ROTATION_ARM_URL"),
        (KEYVAULT, vault_audience(settings.key_vault_url), "ROTATION_KEY_VAULT_URL"),
    ]


async def _token(clients: Clients, service: str, resource: str, setting: str) -> Token:
    try:
        token = await clients.credential.get_token(f"{resource}/.default")
    except Exception as exc:  # any credential failure is this token's finding
        return Token(service, resource, setting, error=reason(exc))
    return Token(service, resource, setting, claims=token_claims(token.token))


async def _survey(settings: Settings, clients: Clients) -> Survey:
    """Discovery's findings; a bug in it becomes one unread scope, never doctor's crash."""
    try:
        return await explore(settings, clients.arm, clients.entra)
    except Exception as exc:  # reported by the ACS check as what could not be read
        error = RotationError(internal_error(exc))
        return Survey(Inventory([]), unread=(Unread("acs resources", "discovery", error),))


async def _vault_actions(
    settings: Settings, clients: Clients
) -> frozenset[str] | RotationError | None:
    """The vault data actions ARM's permissions API says the identity holds at the vault."""
    resource_id = settings.key_vault_resource_id
    if resource_id is None:
        return None
    try:
        entries = await clients.arm.my_permissions(resource_id)
    except Exception as exc:  # the vault check says what ARM would not tell
        return exc if isinstance(exc, RotationError) else RotationError(internal_error(exc))
    return frozenset(
        action
        for action in VAULT_DATA_ACTIONS
        if any(action_allowed(action, e.data_actions, e.not_data_actions) for e in entries)
    )


def vault_audience(vault_url: str) -> str:
    """Key Vault's token resource: its host minus the vault's own label (vault.azure.net)."""
    parts = urlsplit(vault_url)
    host = parts.hostname or ""
    domain = host.partition(".")[2] or host
    port = f":{parts.port}" if parts.port and parts.port != 443 else ""
    return f"https://{domain}{port}"


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: the rotator reads its own token's claims only."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return decoded if isinstance(decoded, dict) else {}
