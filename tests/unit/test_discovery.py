"""Discovery's decisions, as pure functions: which apps are senders and by which usernames."""

from __future__ import annotations

import uuid

import pytest

from rotation.model import (
    AcsResource,
    PrincipalEntry,
    RoleAssignmentEntry,
    RoleDefinitionEntry,
    SmtpUsernameEntry,
)
from rotation.permissions import COMMUNICATION_READ, COMMUNICATION_WRITE, EMAIL_WRITE
from rotation.run.discovery import (
    RANK_ALLOW_LIST,
    RANK_INHERITED,
    RANK_ROLE,
    RANK_SMTP_USERNAME,
    SOURCE_ALLOW_LIST,
    SOURCE_ROLE,
    SOURCE_SMTP_USERNAME,
    RoleHolder,
    Sighting,
    Skipped,
    action_allowed,
    allow_list_sightings,
    build_inventory,
    definition_key,
    grants_smtp,
    group_grants,
    is_broad,
    lacks,
    not_ours,
    role_holders,
    role_sightings,
    sends_mail,
    smtp_username_sightings,
)
from rotation.settings import Settings, load_settings

TENANT = "7a1b0c2d-0000-4000-8000-000000000001"
OTHER_TENANT = "7a1b0c2d-0000-4000-8000-000000000002"
SUB = "5b084a07-b4f6-4c14-890d-2ae6a709ab76"
APP_A = "aaaaaaaa-0000-4000-8000-00000000000a"
APP_B = "bbbbbbbb-0000-4000-8000-00000000000b"
SP_A = "0000000a-5555-4000-8000-000000000000"
SP_B = "0000000b-5555-4000-8000-000000000000"
APP_C = "cccccccc-0000-4000-8000-00000000000c"

READ = COMMUNICATION_READ
WRITE = EMAIL_WRITE


BUILTIN = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
}


def role(
    name: str, actions: list[str], not_actions: list[str] | None = None
) -> RoleDefinitionEntry:
    guid = BUILTIN.get(name) or str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    return RoleDefinitionEntry(
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
        name,
        tuple(actions),
        tuple(not_actions or ()),
    )


OWNER = role("Owner", ["*"])
CONTRIBUTOR = role(
    "Contributor",
    ["*"],
    [
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
    ],
)
READER = role("Reader", ["*/read"])
EMAIL_ROLE = role("ACS email sender", [READ, COMMUNICATION_WRITE, WRITE])
#: A custom role made from the ACS docs of 2023, which named two actions.
OLDER_EMAIL_ROLE = role("ACS email sender (2023 docs)", [READ, WRITE])
DEFINITIONS = {definition_key(r.id): r for r in (OWNER, CONTRIBUTOR, READER, EMAIL_ROLE)}

RESOURCE = AcsResource(
    f"/subscriptions/{SUB}/resourceGroups/rg-email/providers/Microsoft.Communication/communicationServices/acs-mail",
    "acs-mail",
    "rg-email",
    SUB,
)
SUB_SCOPE = f"/subscriptions/{SUB}"
RG_SCOPE = f"/subscriptions/{SUB}/resourceGroups/rg-email"


def settings(**overrides: object) -> Settings:
    env = {
        "ROTATION_KEY_VAULT_URL": "https://kv.vault.azure.net",
        "ROTATION_TENANT_ID": TENANT,
        "ROTATION_SUBSCRIPTION_IDS": SUB,
    }
    env.update({f"ROTATION_{k.upper()}": str(v) for k, v in overrides.items()})
    return load_settings(env)


def assignment(
    scope: str, principal: str, definition: RoleDefinitionEntry, kind: str = "ServicePrincipal"
) -> RoleAssignmentEntry:
    # ARM names the definition under the assignment's subscription; discovery must not care.
    return RoleAssignmentEntry(
        scope, principal, kind, definition.id.replace(f"/subscriptions/{SUB}", "")
    )


# ----- RBAC matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "not_actions", "allowed"),
    [
        (["*"], [], True),
        (["Microsoft.Communication/*"], [], True),
        (["microsoft.communication/communicationservices/read"], [], True),  # case-insensitive
        (["*/read"], [], True),
        (["*/write"], [], False),
        (["Microsoft.Communication/CommunicationServices/*"], [], True),
        (["*"], ["Microsoft.Communication/*"], False),
        (["*"], ["*/read"], False),
        (["Microsoft.Communication/CommunicationServices/Read?"], [], False),  # no '?' wildcard
        ([], [], False),
    ],
)
def test_action_matching_follows_azure_rbac_wildcards_and_not_actions(
    actions: list[str], not_actions: list[str], allowed: bool
) -> None:
    assert action_allowed(READ, actions, not_actions) is allowed


@pytest.mark.parametrize(
    ("definition", "grants", "sends"),
    [
        (OWNER, True, True),
        (CONTRIBUTOR, True, True),
        (EMAIL_ROLE, True, True),
        (OLDER_EMAIL_ROLE, False, True),
        (READER, False, False),
        (role("no write", [READ]), False, False),
        (role("email minus write", ["Microsoft.Communication/*"], [WRITE]), False, False),
        (role("all communication", ["Microsoft.Communication/*"]), True, True),
    ],
)
def test_a_role_grants_smtp_only_with_every_action_acs_asks_for(
    definition: RoleDefinitionEntry, grants: bool, sends: bool
) -> None:
    assert grants_smtp(definition) is grants
    assert sends_mail(definition) is sends  # its holders are senders, rotated and checked


def test_what_a_sending_role_lacks_is_named() -> None:
    assert lacks(EMAIL_ROLE) == ()
    assert lacks(OLDER_EMAIL_ROLE) == (COMMUNICATION_WRITE,)
    assert lacks(READER) == (COMMUNICATION_WRITE, WRITE)


def test_owner_and_contributor_are_broad_an_email_role_is_not() -> None:
    assert is_broad(OWNER)
    assert is_broad(CONTRIBUTOR)
    assert not is_broad(EMAIL_ROLE)
    assert not is_broad(role("all communication", ["Microsoft.Communication/*"]))


# ----- role holders -------------------------------------------------------------------------------


def test_direct_role_on_the_resource_makes_an_automatic_holder() -> None:
    holders = role_holders(RESOURCE, [assignment(RESOURCE.id, SP_A, CONTRIBUTOR)], DEFINITIONS)
    assert holders == [RoleHolder(RESOURCE, SP_A, automatic=True)]


def test_inherited_broad_role_is_not_automatic_but_an_inherited_email_role_is() -> None:
    holders = role_holders(
        RESOURCE,
        [assignment(SUB_SCOPE, SP_A, OWNER), assignment(RG_SCOPE, SP_B, EMAIL_ROLE)],
        DEFINITIONS,
    )
    assert holders == [
        RoleHolder(RESOURCE, SP_A, automatic=False),
        RoleHolder(RESOURCE, SP_B, automatic=True),
    ]


def test_a_direct_assignment_wins_over_an_inherited_broad_one() -> None:
    holders = role_holders(
        RESOURCE,
        [
            assignment(SUB_SCOPE, SP_A, CONTRIBUTOR),
            assignment(RESOURCE.id.upper(), SP_A, EMAIL_ROLE),
        ],
        DEFINITIONS,
    )
    assert holders == [RoleHolder(RESOURCE, SP_A, automatic=True)]


def test_users_groups_readers_and_unknown_roles_hold_nothing() -> None:
    unknown = role("deleted custom role", [READ, WRITE])
    holders = role_holders(
        RESOURCE,
        [
            assignment(RESOURCE.id, SP_A, CONTRIBUTOR, kind="User"),
            assignment(RESOURCE.id, SP_A, CONTRIBUTOR, kind="Group"),
            assignment(RESOURCE.id, SP_B, READER),
            assignment(RESOURCE.id, SP_B, unknown),
        ],
        DEFINITIONS,
    )
    assert holders == []


# ----- sightings ----------------------------------------------------------------------------------


def test_smtp_usernames_of_another_tenant_are_skipped_with_the_reason() -> None:
    entries = [
        SmtpUsernameEntry(RESOURCE.id, "mailer@contoso.com", APP_A.upper(), TENANT),
        SmtpUsernameEntry(RESOURCE.id, "guest@fabrikam.com", APP_B, OTHER_TENANT),
    ]

    sightings, skipped = smtp_username_sightings(entries, TENANT)

    assert sightings == [
        Sighting(APP_A, SOURCE_SMTP_USERNAME, RANK_SMTP_USERNAME, "mailer@contoso.com", RESOURCE.id)
    ]
    assert [s.app_id for s in skipped] == [APP_B]
    assert OTHER_TENANT in skipped[0].reason


def principal(
    object_id: str, app_id: str, kind: str = "Application", owner: str | None = TENANT
) -> PrincipalEntry:
    return PrincipalEntry(object_id, app_id, kind, owner)


def test_role_sightings_use_the_dotted_username_and_drop_unresolved_principals() -> None:
    holders = [RoleHolder(RESOURCE, SP_A, True), RoleHolder(RESOURCE, SP_B, False)]

    sightings, skipped = role_sightings(
        holders, {SP_A.upper(): principal(SP_A, APP_A.upper())}, TENANT
    )

    assert sightings == [
        Sighting(APP_A, SOURCE_ROLE, RANK_ROLE, f"acs-mail.{APP_A}.{TENANT}", RESOURCE.id)
    ]
    assert skipped == []


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (principal(SP_B, APP_B, "ManagedIdentity", None), "managed identity"),
        (principal(SP_B, APP_B, "ManagedIdentity", OTHER_TENANT), "managed identity"),
        (principal(SP_B, APP_B, "Application", OTHER_TENANT), OTHER_TENANT),
        (principal(SP_B, APP_B, "Legacy"), "'Legacy'"),
        (principal(SP_B, APP_B, "SocialIdp"), "'SocialIdp'"),
    ],
)
def test_managed_identities_other_tenants_apps_and_other_kinds_are_skipped_with_the_reason(
    entry: PrincipalEntry, words: str
) -> None:
    holders = [RoleHolder(RESOURCE, SP_B, True)]

    sightings, skipped = role_sightings(holders, {SP_B: entry}, TENANT)

    assert sightings == []
    (skip,) = skipped
    assert skip.app_id == APP_B
    assert words in skip.reason
    assert RESOURCE.id in skip.reason


def test_only_applications_of_our_tenant_are_ours() -> None:
    assert not_ours(principal(SP_A, APP_A, "Application", TENANT.upper()), TENANT) is None
    # Graph fills appOwnerOrganizationId for applications; if it ever does not, the app is
    # kept, and a foreign one then fails loudly when its application cannot be read.
    assert not_ours(principal(SP_A, APP_A, "Application", None), TENANT) is None
    assert not_ours(principal(SP_A, APP_A, "application", OTHER_TENANT), TENANT) is not None


def test_an_inherited_broad_role_of_a_foreign_principal_is_neither_sender_nor_skipped() -> None:
    holders = [RoleHolder(RESOURCE, SP_B, False)]

    sightings, skipped = role_sightings(
        holders, {SP_B: principal(SP_B, APP_B, "ManagedIdentity", None)}, TENANT
    )

    assert (sightings, skipped) == ([], [])


def test_group_assignments_that_would_grant_smtp_are_reported_for_the_log() -> None:
    group, other = "9999999a-0000-4000-8000-000000000000", "9999999b-0000-4000-8000-000000000000"
    assignments = [
        assignment(RESOURCE.id, group, CONTRIBUTOR, kind="Group"),
        assignment(RG_SCOPE, other, EMAIL_ROLE, kind="Group"),
        assignment(SUB_SCOPE, other, OWNER, kind="Group"),  # an admins' group: not a sender
        assignment(RESOURCE.id, other, READER, kind="Group"),
        assignment(RESOURCE.id, SP_A, CONTRIBUTOR),
    ]

    grants = group_grants(RESOURCE, assignments, DEFINITIONS)

    assert [(g.principal_id, g.scope) for g in grants] == [(group, RESOURCE.id), (other, RG_SCOPE)]


def test_allow_list_entries_with_and_without_a_username() -> None:
    assert allow_list_sightings([APP_A, f"{APP_B}=custom@contoso.com"]) == [
        Sighting(APP_A, SOURCE_ALLOW_LIST, RANK_ALLOW_LIST),
        Sighting(APP_B, SOURCE_ALLOW_LIST, RANK_ALLOW_LIST, "custom@contoso.com"),
    ]


# ----- the inventory ------------------------------------------------------------------------------


def test_each_app_appears_once_with_every_username_in_a_stable_order() -> None:
    dotted = f"acs-mail.{APP_A}.{TENANT}"
    other = f"acs-other.{APP_A}.{TENANT}"
    sightings = [
        Sighting(APP_A, SOURCE_ROLE, RANK_ROLE, other, "/r/acs-other"),
        Sighting(APP_A, SOURCE_ROLE, RANK_ROLE, dotted, RESOURCE.id),
        Sighting(
            APP_A, SOURCE_SMTP_USERNAME, RANK_SMTP_USERNAME, "z-mailer@contoso.com", RESOURCE.id
        ),
        Sighting(
            APP_A, SOURCE_SMTP_USERNAME, RANK_SMTP_USERNAME, "a-mailer@contoso.com", RESOURCE.id
        ),
        Sighting(APP_A, SOURCE_ALLOW_LIST, RANK_ALLOW_LIST, "Chosen@contoso.com"),
        Sighting(
            APP_A, SOURCE_ALLOW_LIST, RANK_ALLOW_LIST, "chosen@CONTOSO.com"
        ),  # same, other case
    ]

    for order in (sightings, list(reversed(sightings))):
        (app,) = build_inventory(settings(), order).apps
        assert app.usernames == (
            "Chosen@contoso.com" if order is sightings else "chosen@CONTOSO.com",
            "a-mailer@contoso.com",
            "z-mailer@contoso.com",
            dotted,
            other,
        )
        assert app.sources == (SOURCE_SMTP_USERNAME, SOURCE_ROLE, SOURCE_ALLOW_LIST)
        assert app.username_sources == (
            SOURCE_ALLOW_LIST,
            SOURCE_SMTP_USERNAME,
            SOURCE_SMTP_USERNAME,
            SOURCE_ROLE,
            SOURCE_ROLE,
        )
        assert app.acs_resource_ids == ("/r/acs-other", RESOURCE.id)


def test_managed_app_carries_tenant_and_templated_secret_name() -> None:
    config = settings(secret_name_template="smtp-{app_id}")

    (app,) = build_inventory(
        config, [Sighting(APP_A, SOURCE_ROLE, RANK_ROLE, "u", RESOURCE.id)]
    ).apps

    assert (app.app_id, app.tenant_id, app.secret_name) == (APP_A, TENANT, f"smtp-{APP_A}")
    assert app.smtp_username == "u"


def test_apps_are_sorted_by_app_id_and_excluded_ones_left_out() -> None:
    sightings = [
        Sighting(APP_B, SOURCE_ROLE, RANK_ROLE, "b", RESOURCE.id),
        Sighting(APP_A, SOURCE_ROLE, RANK_ROLE, "a", RESOURCE.id),
    ]

    assert [a.app_id for a in build_inventory(settings(), sightings).apps] == [APP_A, APP_B]
    assert [
        a.app_id for a in build_inventory(settings(exclude_app_ids=APP_A.upper()), sightings).apps
    ] == [APP_B]


def test_inherited_broad_role_alone_is_not_a_sender_unless_allow_listed() -> None:
    inherited = Sighting(
        APP_A, SOURCE_ROLE, RANK_INHERITED, f"acs-mail.{APP_A}.{TENANT}", RESOURCE.id
    )

    assert build_inventory(settings(), [inherited]).apps == []
    (app,) = build_inventory(settings(), [inherited, *allow_list_sightings([APP_A])]).apps
    assert app.usernames == (inherited.username,)
    assert app.sources == (SOURCE_ROLE, SOURCE_ALLOW_LIST)


def test_allow_listed_app_without_any_username_is_skipped_with_the_fix() -> None:
    inventory = build_inventory(settings(), allow_list_sightings([APP_A]))

    assert inventory.apps == []
    (skip,) = inventory.skipped
    assert skip.app_id == APP_A
    assert "<appId>=<username>" in skip.reason


def test_allow_list_username_comes_first() -> None:
    sightings = [
        Sighting(
            APP_A, SOURCE_SMTP_USERNAME, RANK_SMTP_USERNAME, "custom@contoso.com", RESOURCE.id
        ),
        *allow_list_sightings([f"{APP_A}=operator@contoso.com"]),
    ]

    (app,) = build_inventory(settings(), sightings).apps

    assert app.smtp_username == "operator@contoso.com"


def test_skipped_principals_appear_once_unless_managed_or_excluded() -> None:
    reasons = [
        Skipped(APP_B, "managed identity (first resource)"),
        Skipped(APP_B, "managed identity (second resource)"),
        Skipped(APP_A, "another tenant"),
        Skipped(APP_C, "another tenant"),
    ]
    sightings = [Sighting(APP_A, SOURCE_SMTP_USERNAME, RANK_SMTP_USERNAME, "a@x", RESOURCE.id)]

    inventory = build_inventory(settings(exclude_app_ids=APP_C), sightings, reasons)

    assert [a.app_id for a in inventory.apps] == [APP_A]
    assert inventory.skipped == [Skipped(APP_B, "managed identity (first resource)")]
