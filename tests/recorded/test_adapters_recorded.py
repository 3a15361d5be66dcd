"""The product's adapters fed Azure's recorded answers through the real SDKs: a transport
replays the vendored exchanges (tests/recorded/transports.py), so a parser that passes here
passes on the bytes Azure really sent, whatever the sandbox says. No network, no sleeping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from azure.keyvault.secrets.aio import SecretClient
from pydantic import SecretStr

from rotation.azure.acs import ArmReader, parse_resource_id
from rotation.azure.entra import EntraAdapter, graph_client
from rotation.azure.key_vault import VaultAdapter
from rotation.errors import InvalidRequest
from rotation.model import (
    AppRecord,
    Credential,
    DeletedName,
    ManagedApp,
    NewSecret,
    PrincipalEntry,
)
from rotation.settings import Settings, load_settings
from tests.recorded import recording
from tests.recorded.recording import Entry
from tests.recorded.transports import Answers, AzureReplay, HttpxReplay, RecordedToken

VAULT = "https://tb0f745ebb7bfae58.vault.azure.net"
#: The ACS resource of the recorded .NET session (arm-acs-get-list.json).
ACS_ID = (
    "/subscriptions/8443df5e-8e12-4cd9-810e-c525196fecae/resourceGroups/Communication-RG-8888"
    "/providers/Microsoft.Communication/communicationServices/communication-service-9003"
)
A = TypeVar("A", VaultAdapter, ArmReader, EntraAdapter)
#: Key Vault's recorded challenge (for an SDK that probes where the excerpt starts later).
CHALLENGE = recording.load(recording.DATA / "kv-set-get-extended.json").entries[0]


def entries(case: str, *, method: str | None = None, first: int = 1) -> list[Entry]:
    """The exchanges of recording `case` from entry `first` on (1-based, as the table names
    them), only those of `method` when given."""
    rec = recording.load(recording.DATA / f"{case}.json")
    return [e for e in rec.exchanges if e.index >= first and method in (None, e.method)]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        {
            "ROTATION_KEY_VAULT_URL": VAULT,
            "ROTATION_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "ROTATION_SUBSCRIPTION_IDS": "8443df5e-8e12-4cd9-810e-c525196fecae",
        }
    )


class Opened:
    """Adapters over replaying transports, each closed when the test ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.adapters: list[VaultAdapter | ArmReader | EntraAdapter] = []

    def vault(self, answers: Answers, url: str = VAULT) -> VaultAdapter:
        client = SecretClient(url, RecordedToken(), transport=AzureReplay(answers))
        return self._kept(VaultAdapter(client, url))

    def arm(self, answers: Answers) -> ArmReader:
        options = {"transport": AzureReplay(answers)}
        return self._kept(ArmReader(RecordedToken(), "https://management.azure.com", options))

    def entra(self, answers: Answers) -> EntraAdapter:
        client, http = graph_client(self.settings, RecordedToken(), transport=HttpxReplay(answers))
        return self._kept(EntraAdapter(client, http, self.settings.graph_endpoint))

    def _kept(self, adapter: A) -> A:
        self.adapters.append(adapter)
        return adapter


@pytest.fixture
async def opened(settings: Settings) -> AsyncIterator[Opened]:
    adapters = Opened(settings)
    yield adapters
    for adapter in adapters.adapters:
        await adapter.close()


# ----- Key Vault -------------------------------------------------------------------------------


async def test_promote_reads_the_recorded_set_answer(opened: Opened) -> None:
    answers = Answers(entries("kv-set-get-extended", method="PUT"), CHALLENGE)
    adapter = opened.vault(answers)
    app = ManagedApp("app", "tenant", "864555621", ("acs.app.tenant",))
    secret = NewSecret(
        Credential("key", "acs-smtp-rotation x", None, at(1567128012)), SecretStr("v")
    )

    version = await adapter.promote(app, secret, smtp_host="h", smtp_port=587, write_username=False)

    assert version.version == "8ce2990dc1654a2eb043ee9ca010ad64"
    assert version.created == at(1724187438)
    assert version.expires == at(1567128012)
    assert version.enabled is True
    assert version.tags == {"tag1": "value1", "tag2": "value2"}  # what Key Vault answered
    assert [m for m, _ in answers.sent][-1] == "PUT"
    assert not answers.pending


async def test_read_follows_the_recorded_version_pages_to_the_null_next_link(
    opened: Opened,
) -> None:
    answers = Answers(entries("kv-list-versions", method="GET"), CHALLENGE)
    adapter = opened.vault(answers)

    entry = await adapter.read("24924321")

    assert [v.version for v in entry.versions] == [
        "77138229adc64d52878ec334f45b0841",  # created 1724187387
        "829c9ec200544a6186b75f6310f63254",  # 1724187386
        "52e0896f07d647b987cc96d9103dc610",  # 1724187385 (two; Key Vault's order kept)
        "ffcda6419c5442d297eb55b87920bde0",
    ]
    assert all(v.enabled and v.key_id is None for v in entry.versions)
    assert "$skiptoken" in answers.sent[-1][1]
    assert not answers.pending


async def test_an_unknown_secret_reads_as_new_from_its_empty_recorded_listing(
    opened: Opened,
) -> None:
    answers = Answers(entries("kv-list-secrets", method="GET", first=6), CHALLENGE)
    adapter = opened.vault(answers, "https://vaultname.vault.azure.net")

    entry = await adapter.read("secret-name")

    assert entry.versions == ()
    assert not answers.pending


async def test_read_current_lists_every_recorded_page(opened: Opened) -> None:
    pages = [
        e
        for e in entries("kv-list-secrets", method="GET")
        if e.uri.split("?")[0].endswith("/secrets")
    ]
    answers = Answers(pages, CHALLENGE)
    adapter = opened.vault(answers, "https://vaultname.vault.azure.net")

    current = await adapter.read_current()

    assert sorted(current) == [
        "backuprestoresecretname-canbackupasecret-23263220956520536",
        "crudsecretname-canaddasecret-9422068371286293",
        "listsecretname-canlistsecretproperties-67490229132106140",
        "livekvtestsecret0525a38f0",
        "livekvtestsecret3ea0e3673",
        "livekvtestsecret4525a38f0",
    ]
    first = current["livekvtestsecret0525a38f0"]
    assert (first.created, first.enabled, first.settled) == (at(1774471051), True, False)
    assert not answers.pending


async def test_deleted_reads_the_recorded_deleted_secret(opened: Opened) -> None:
    answers = Answers(entries("kv-get-deleted", method="GET"), CHALLENGE)
    adapter = opened.vault(answers)

    found = await adapter.deleted("1884471293")

    assert found == DeletedName("1884471293", at(1724187324), at(1724792124))


async def test_a_recorded_404_of_a_deleted_secret_means_none(opened: Opened) -> None:
    answers = Answers(entries("kv-get-deleted-missing"), CHALLENGE)
    adapter = opened.vault(answers)

    assert await adapter.deleted("1194283417") is None
    assert not answers.pending


async def test_disable_and_mark_settled_accept_the_recorded_update_answers(
    opened: Opened,
) -> None:
    answers = Answers(entries("kv-update-tags", method="PATCH"), CHALLENGE)
    adapter = opened.vault(answers)
    versions = opened.vault(Answers(entries("kv-update-tags", method="PUT"), CHALLENGE))
    current = await versions.promote(
        ManagedApp("app", "tenant", "1290542210", ("u",)),
        NewSecret(Credential("k", None, None, None), SecretStr("test")),
        smtp_host="h",
        smtp_port=587,
        write_username=False,
    )

    await adapter.disable("1290542210", [current.version])
    await adapter.mark_settled("1290542210", current)

    assert [m for m, _ in answers.sent if m == "PATCH"] == ["PATCH", "PATCH"]
    assert all(current.version in url for m, url in answers.sent if m == "PATCH")


# ----- ARM ---------------------------------------------------------------------------------


async def test_a_named_acs_resource_is_read_from_the_recorded_get(opened: Opened) -> None:
    answers = Answers(entries("arm-acs-get-list", first=2)[:1])
    reader = opened.arm(answers)

    found = await reader.acs_resources([], [ACS_ID])

    assert [(r.name, r.resource_group, r.subscription_id) for r in found] == [
        (
            "communication-service-9003",
            "Communication-RG-8888",
            "8443df5e-8e12-4cd9-810e-c525196fecae",
        )
    ]
    assert answers.sent[0][1].split("?")[0].endswith(ACS_ID)


async def test_the_recorded_acs_listing_gives_its_resources(opened: Opened) -> None:
    answers = Answers(entries("arm-acs-get-list", first=3))
    reader = opened.arm(answers)

    found = await reader.acs_resources(["8443df5e-8e12-4cd9-810e-c525196fecae"])

    assert [r.name for r in found] == ["communication-service-9003"]
    assert not answers.pending


async def test_role_assignments_parse_the_recorded_listing(opened: Opened) -> None:
    answers = Answers(entries("arm-role-assignments"))
    reader = opened.arm(answers)
    resource = parse_resource_id(ACS_ID)

    found = await reader.role_assignments(resource)

    assert [(a.scope, a.principal_id, a.principal_type) for a in found] == [
        (
            "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590",
            "5449c3c8-63b4-4145-9379-34f8ccd123fa",
            "ServicePrincipal",
        )
    ]
    assert found[0].role_definition_id.endswith("/b24988ac-6180-42a0-ab88-20f7382dd24c")


# ----- Microsoft Graph -------------------------------------------------------------------------


async def test_read_apps_parses_the_recorded_application(opened: Opened) -> None:
    answers = Answers(entries("graph-app-and-principal", first=3)[:1])
    adapter = opened.entra(answers)

    found = await adapter.read_apps(["FD44BE51-B72E-47A1-B872-DC44A00A8DEE"])

    assert found == {
        "fd44be51-b72e-47a1-b872-dc44a00a8dee": AppRecord(
            "f41b4b60-6ebc-4c13-a28b-516a24734a39",
            "fd44be51-b72e-47a1-b872-dc44a00a8dee",
            "sp75542a0961b",
            (),
            datetime(2023, 7, 24, 2, 30, 42, tzinfo=UTC),
        )
    }


async def test_add_password_reads_graphs_documented_answer(opened: Opened) -> None:
    answers = Answers(entries("graph-add-password"))
    adapter = opened.entra(answers)
    record = AppRecord("{id}", "d2f8b1a0-0000-4000-8000-00000000a001", "documented", ())

    created = await adapter.add_password(record, "Password friendly name", at(1631217029))

    assert created.credential == Credential(
        "f0b0b335-1d71-4883-8f98-567911bfdca6",
        "Password friendly name",
        datetime(2019, 9, 9, 19, 50, 29, 308638, tzinfo=UTC),
        datetime(2021, 9, 9, 19, 50, 29, 308638, tzinfo=UTC),
        "[6g",
    )
    assert created.value.get_secret_value() == "[6gyXA5S20@MN+WRXAJ]I-TO7g1:h2P8"
    assert answers.sent == [
        ("POST", "https://graph.microsoft.com/v1.0/applications/%7Bid%7D/addPassword")
    ]


async def test_deleted_names_follow_the_recorded_empty_pages_to_the_end(
    opened: Opened,
) -> None:
    answers = Answers(entries("kv-list-deleted"), CHALLENGE)
    adapter = opened.vault(answers, "https://vaultname.vault.azure.net")

    found = await adapter.deleted_names()

    assert sorted(found) == [
        "listsecretname-canlistdeletedsecrets-44839414163996950",
        "listsecretname-canlistdeletedsecrets-44839414163996951",
        "listsecretname-canlistdeletedsecretsbypage-11880578813340470",
        "listsecretname-canlistdeletedsecretsbypage-11880578813340471",
        "livekvtestsecret-name50a138e2",
        "livekvtestsecret-namee8553665",
    ]
    assert found["livekvtestsecret-name50a138e2"].deleted == at(1774471047)
    assert found["livekvtestsecret-name50a138e2"].purge_on == at(1782247047)
    assert not answers.pending  # all five pages, the two empty first ones included


async def test_add_password_reads_the_recorded_password_credential(opened: Opened) -> None:
    """Graph's real bytes (the servicePrincipal action's answer: the same passwordCredential
    resource, @odata.context and all)."""
    answers = Answers(entries("graph-sp-add-password"))
    adapter = opened.entra(answers)
    record = AppRecord("b469e51b-0483-4042-8ff3-53c0aa2465fd", "app", "ssp550078c992b", ())

    created = await adapter.add_password(record, "sppass", datetime(2024, 7, 24, tzinfo=UTC))

    assert created.credential == Credential(
        "d8f2597e-c059-4bda-962a-19c13e178dae",
        "sppass",
        datetime(2023, 7, 24, 2, 30, 40, 855203, tzinfo=UTC),
        datetime(2024, 7, 24, 2, 30, 40, 855203, tzinfo=UTC),
        "bzj",
    )
    assert created.value.get_secret_value() == "REDACTED"


async def test_remove_password_accepts_the_documented_204(opened: Opened) -> None:
    answers = Answers(entries("graph-remove-password"))
    adapter = opened.entra(answers)
    record = AppRecord("{id}", "d2f8b1a0-0000-4000-8000-00000000a002", "documented", ())

    removed = await adapter.remove_password(record, "f0b0b335-1d71-4883-8f98-567911bfdca6")

    assert removed is True
    assert answers.sent == [
        ("POST", "https://graph.microsoft.com/v1.0/applications/%7Bid%7D/removePassword")
    ]


async def test_service_principals_parse_the_recorded_listing(opened: Opened) -> None:
    answers = Answers(entries("graph-sp-listing"))
    adapter = opened.entra(answers)

    found = await adapter.service_principals(["B469E51B-0483-4042-8FF3-53C0AA2465FD"])

    assert found == {
        "b469e51b-0483-4042-8ff3-53c0aa2465fd": PrincipalEntry(
            "b469e51b-0483-4042-8ff3-53c0aa2465fd",
            "0e9cd244-989f-463b-9381-bdc90e02570e",
            "Application",
            "54826b22-38d6-4fb2-bad9-b7b93a3e9c5a",
        )
    }
    assert "$filter=id" in answers.sent[0][1]
    assert "$select=" in answers.sent[0][1]


async def test_role_definition_parses_the_recorded_definition(opened: Opened) -> None:
    """The recorded Contributor, listed by name there, served as the GET by id the rotator
    makes (the same RoleDefinition resource; arm-role-definition.json says why)."""
    listing = entries("arm-role-definition")[0]
    by_id = dataclasses.replace(listing, body=listing.body["value"][0])
    answers = Answers([by_id])
    reader = opened.arm(answers)
    definition_id = by_id.body["id"]

    found = await reader.role_definition(definition_id)

    assert (found.id, found.role_name, found.actions) == (definition_id, "Contributor", ("*",))
    assert "Microsoft.Authorization/*/Write" in found.not_actions
    assert len(found.not_actions) == 8
    assert (
        answers.sent[0][1]
        .split("?")[0]
        .endswith("/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c")
    )


async def test_a_disabled_current_version_is_named_as_such_not_as_a_missing_role(
    opened: Opened,
) -> None:
    """Versions created in the same second make the rotator ask Key Vault which one is
    current (kv-versions-tied: five of one recorded secret's thirty shared a second); a
    disabled current version answers that 403 SecretDisabled (kv-get-disabled, recorded
    for another secret). That is not a permission the rotator lacks."""
    tied = entries("kv-versions-tied")
    disabled = entries("kv-get-disabled", method="GET")
    answers = Answers(tied + disabled, CHALLENGE)
    adapter = opened.vault(answers)

    with pytest.raises(InvalidRequest) as caught:
        await adapter.read("24924321")

    message = str(caught.value)
    assert "disabled" in message
    assert "SecretDisabled" in message
    assert "--enabled true" in message
    assert "role" not in message
    assert answers.sent[-1][0] == "GET"
    assert answers.sent[-1][1].split("?")[0].endswith("/secrets/24924321/")
