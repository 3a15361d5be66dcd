"""Key Vault's SecretItem (GetSecrets and GetSecretVersions items), read item by item.

The shape is azure-rest-api-specs' keyvault secrets.json SecretItem: ``id``
(``{vault}/secrets/{name}`` in the vault listing, ``.../{name}/{version}`` among a secret's
versions), ``attributes`` (``enabled``, ``created`` and ``exp`` as NumericDate seconds),
``tags`` (string to string) and ``contentType``. Only the fields below are read.

- A listing item whose name can be read but nothing else is that secret's problem: its
  current version is marked `unreadable`, and the app it belongs to has its versions read
  one by one instead (policy.needs_versions), so it is never planned from a bad item.
- A listing item without a readable id belongs to no secret: skipped, logged, counted.
- A version item that cannot be read fails the read of its secret (`MalformedAnswer`,
  naming the field): the app it belongs to is failed, the others go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import field_validator

from rotation.azure.wire import EpochTime, Id, Problem, StrictBool, Wire, parse
from rotation.errors import MalformedAnswer
from rotation.model import VaultVersion
from rotation.telemetry.skipped_items import skip

KEY_VAULT = "Key Vault"
#: Written on the current version once its rotation has finished (policy.settled); its
#: value is that version's id, which the vault-wide listing does not otherwise give.
SETTLED_TAG = "settled-version"
#: The tags the rotator reads back (the others are kept as they are, for a rewrite).
READ_TAGS = ("key-id", "smtp-username", SETTLED_TAG)
_EPOCH = datetime.fromtimestamp(0, UTC)


class _Id(Wire):
    id: Id


class _Attributes(Wire):
    enabled: StrictBool
    created: EpochTime
    exp: EpochTime | None = None


class _Item(_Id):
    attributes: _Attributes
    tags: dict[str, Any] | None = None

    @field_validator("tags")
    @classmethod
    def _read_tags_are_text(cls, tags: dict[str, Any] | None) -> dict[str, Any] | None:
        for name in READ_TAGS:
            if tags is not None and name in tags and not isinstance(tags[name], str):
                raise ValueError(f"tag '{name}' should be text")
        return tags


def listed(item: object, answer: str) -> tuple[str, VaultVersion] | None:
    """A GetSecrets item as (name, its current version); an unreadable one of a known name
    as a version marked `unreadable`; None (skipped) when not even its name can be read."""
    who = parse(_Id, item)
    if isinstance(who, Problem):
        skip(KEY_VAULT, answer, f"a secret: {who}")
        return None
    name = who.id.rstrip("/").rsplit("/", 1)[-1]
    found = parse(_Item, item)
    if isinstance(found, Problem):
        why = f"{KEY_VAULT} listed secret '{name}' unreadably ({found})"
        return name, VaultVersion("", None, _EPOCH, enabled=False, unreadable=why)
    return name, _version(found, version=None)


def version(item: object, name: str) -> VaultVersion:
    """A GetSecretVersions item of secret `name`; raises MalformedAnswer naming the field."""
    found = parse(_Item, item)
    if isinstance(found, Problem):
        raise MalformedAnswer(
            f"{KEY_VAULT} listed a version of secret '{name}' unreadably ({found}); the app "
            "is left as it is until Key Vault answers it readably"
        )
    return _version(found, version=found.id.rstrip("/").rsplit("/", 1)[-1])


def _version(item: _Item, *, version: str | None) -> VaultVersion:
    """`version` None: a listing item, whose version only the settled mark names."""
    tags = _tags(item.tags or {})
    mark = tags.get(SETTLED_TAG)
    return VaultVersion(
        version=(mark or "") if version is None else version,
        key_id=tags.get("key-id"),
        created=item.attributes.created,
        enabled=item.attributes.enabled,
        expires=item.attributes.exp,
        smtp_username=tags.get("smtp-username"),
        settled=mark is not None and (version is None or mark == version),
        tags=tags,
    )


def _tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in tags.items()}
