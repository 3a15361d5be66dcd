"""Settings: defaults, parsing, and one clear line naming each bad setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trustme

from rotation.errors import SettingsError
from rotation.settings import InvalidSettings, load_settings

TENANT = "11111111-1111-1111-1111-111111111111"
SUB = "22222222-2222-2222-2222-222222222222"
BASE = {
    "ROTATION_KEY_VAULT_URL": "https://kv.vault.azure.net/",
    "ROTATION_TENANT_ID": TENANT,
    "ROTATION_SUBSCRIPTION_IDS": SUB,
}


def test_defaults_follow_the_design() -> None:
    s = load_settings(BASE)
    assert (s.rotate_before_days, s.secret_lifetime_days, s.grace_hours) == (30, 180, 48)
    assert (s.verify_timeout_seconds, s.max_concurrency) == (300, 16)
    assert (s.smtp_host, s.smtp_port) == ("smtp.azurecomm.net", 587)
    assert s.key_vault_url == "https://kv.vault.azure.net"
    assert s.graph_endpoint == "https://graph.microsoft.com"


def test_lists_accept_commas_and_spaces() -> None:
    other = "33333333-3333-3333-3333-333333333333"
    s = load_settings({**BASE, "ROTATION_SUBSCRIPTION_IDS": f"{SUB}, {other}"})
    assert s.subscription_ids == [SUB, other]


@pytest.mark.parametrize(
    ("cloud", "graph"),
    [("usgov", "https://graph.microsoft.us"), ("china", "https://microsoftgraph.chinacloudapi.cn")],
)
def test_sovereign_clouds_switch_every_endpoint(cloud: str, graph: str) -> None:
    s = load_settings({**BASE, "ROTATION_CLOUD": cloud, "ROTATION_SMTP_HOST": "smtp.example.us"})
    assert s.graph_endpoint == graph
    assert "login" in s.authority
    assert s.smtp_host == "smtp.example.us"


@pytest.mark.parametrize("cloud", ["usgov", "china"])
@pytest.mark.parametrize("smtp_host", [None, ""])
def test_sovereign_cloud_without_an_explicit_smtp_host_is_a_settings_error(
    cloud: str, smtp_host: str | None
) -> None:
    environ = {**BASE, "ROTATION_CLOUD": cloud}
    if smtp_host is not None:
        environ["ROTATION_SMTP_HOST"] = smtp_host  # empty means "not set"
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert "ROTATION_SMTP_HOST" in message
    assert cloud in message
    assert "\n" not in message


def test_the_public_cloud_keeps_the_documented_smtp_host() -> None:
    assert load_settings({**BASE, "ROTATION_CLOUD": "public"}).smtp_host == "smtp.azurecomm.net"


def test_dod_tenants_override_the_graph_endpoint_of_usgov() -> None:
    s = load_settings(
        {
            **BASE,
            "ROTATION_CLOUD": "usgov",
            "ROTATION_SMTP_HOST": "smtp.example.us",
            "ROTATION_GRAPH_URL": "https://dod-graph.microsoft.us",
        }
    )
    assert s.graph_endpoint == "https://dod-graph.microsoft.us"
    assert s.authority == "https://login.microsoftonline.us"


def test_explicit_endpoint_overrides_the_cloud() -> None:
    s = load_settings({**BASE, "ROTATION_GRAPH_URL": "https://127.0.0.1:9443/"})
    assert s.graph_endpoint == "https://127.0.0.1:9443"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ROTATION_KEY_VAULT_URL", "http://kv", "must be an https:// URL"),
        ("ROTATION_TENANT_ID", "contoso", "is not a GUID"),
        ("ROTATION_GRACE_HOURS", "-1", "greater than or equal to 0"),
        ("ROTATION_MAX_CONCURRENCY", "500", "less than or equal to 64"),
        ("ROTATION_SECRET_NAME_TEMPLATE", "smtp_{app_id}", "Key Vault name"),
        ("ROTATION_SECRET_NAME_TEMPLATE", "smtp-password", "{app_id}"),
        ("ROTATION_SCHEDULE", "every day", "six fields"),
        ("ROTATION_ACS_RESOURCE_IDS", "/subscriptions/x", "not an ACS resource id"),
        ("ROTATION_CLOUD", "mars", "public"),
        ("ROTATION_CA_BUNDLE", "/nonexistent/ca.pem", "not a readable file"),
    ],
)
def test_bad_value_names_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, name: value})
    text = str(caught.value)
    assert "\n" not in text
    assert name in text
    assert message in text


@pytest.mark.parametrize(
    "content",
    [b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"],
)
def test_a_ca_bundle_tls_cannot_load_is_refused_naming_the_setting(
    tmp_path: Path, content: bytes
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "ROTATION_CA_BUNDLE": str(bundle)})
    assert "ROTATION_CA_BUNDLE" in str(caught.value)
    assert "no PEM certificate" in str(caught.value)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc")
def test_a_ca_bundle_that_cannot_be_read_is_refused_naming_the_setting() -> None:
    # A file that exists but fails to read (as one without read permission does).
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "ROTATION_CA_BUNDLE": "/proc/self/mem"})
    assert "ROTATION_CA_BUNDLE" in str(caught.value)
    assert "is not a readable file" in str(caught.value)


def test_a_ca_bundle_with_a_certificate_is_accepted(tmp_path: Path) -> None:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    assert load_settings({**BASE, "ROTATION_CA_BUNDLE": str(bundle)}).ca_bundle == bundle


def test_missing_required_settings_are_named() -> None:
    with pytest.raises(
        SettingsError, match="ROTATION_KEY_VAULT_URL: is required; ROTATION_TENANT_ID: is required"
    ):
        load_settings({})


def test_a_place_to_look_is_required() -> None:
    with pytest.raises(
        SettingsError,
        match="ROTATION_SUBSCRIPTION_IDS, ROTATION_ACS_RESOURCE_IDS or ROTATION_APP_IDS",
    ):
        load_settings(
            {"ROTATION_KEY_VAULT_URL": BASE["ROTATION_KEY_VAULT_URL"], "ROTATION_TENANT_ID": TENANT}
        )


def test_rotation_threshold_must_be_inside_lifetime() -> None:
    with pytest.raises(SettingsError, match="ROTATION_ROTATE_BEFORE_DAYS must be shorter"):
        load_settings(
            {**BASE, "ROTATION_ROTATE_BEFORE_DAYS": "90", "ROTATION_SECRET_LIFETIME_DAYS": "60"}
        )


def test_example_settings_file_lists_every_setting_and_loads() -> None:
    example = json.loads(Path("local.settings.example.json").read_text())["Values"]
    from rotation.settings import Settings

    documented = {k.removeprefix("ROTATION_").lower() for k in example if k.startswith("ROTATION_")}
    assert documented == set(Settings.model_fields)
    filled = {**example, **BASE}
    assert load_settings(filled).grace_hours == 48


def test_lease_settings_default_to_no_store_and_the_longest_finite_lease() -> None:
    s = load_settings(BASE)
    assert (s.lease_blob_url, s.lease_container, s.lease_seconds) == (None, "rotation-leases", 60)
    s = load_settings({**BASE, "ROTATION_LEASE_BLOB_URL": "https://st1.blob.core.windows.net/"})
    assert s.lease_blob_url == "https://st1.blob.core.windows.net"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        # Azure takes 15-60 s or infinite ("Lease Blob", x-ms-lease-duration); infinite
        # would never come back from a dead worker.
        ("ROTATION_LEASE_SECONDS", "14", "ROTATION_LEASE_SECONDS: .*greater than or equal to 15"),
        ("ROTATION_LEASE_SECONDS", "-1", "ROTATION_LEASE_SECONDS: .*greater than or equal to 15"),
        ("ROTATION_LEASE_SECONDS", "61", "ROTATION_LEASE_SECONDS: .*less than or equal to 60"),
        (
            "ROTATION_LEASE_CONTAINER",
            "Leases",
            "ROTATION_LEASE_CONTAINER: must be a blob container",
        ),
        ("ROTATION_LEASE_CONTAINER", "a--b", "ROTATION_LEASE_CONTAINER: must be a blob container"),
        ("ROTATION_LEASE_CONTAINER", "ab", "ROTATION_LEASE_CONTAINER: must be a blob container"),
        ("ROTATION_LEASE_BLOB_URL", "http://st1.blob.core.windows.net", "must be an https://"),
    ],
)
def test_bad_lease_settings_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**BASE, name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ROTATION_TENANT_ID", "contoso-tenant"),
        ("ROTATION_SUBSCRIPTION_IDS", "not-a-subscription-id"),
        ("ROTATION_KEY_VAULT_URL", "http://kv-private-name"),
        ("ROTATION_CA_BUNDLE", "/nonexistent/private/ca.pem"),
        ("ROTATION_KEY_VAULT_RESOURCE_ID", "/subscriptions/x/vaults/secret-vault"),
        ("ROTATION_LEASE_BLOB_URL", "https://st.blob.core.windows.net/?sv=2024&sig=c2VjcmV0"),
        ("ROTATION_LEASE_BLOB_URL", "https://user:pa55word@st.blob.core.windows.net"),
        ("ROTATION_KEY_VAULT_URL", "https://kv.vault.azure.net/#fragment-secret"),
    ],
)
def test_the_public_message_names_the_setting_but_never_its_value(name: str, value: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({**BASE, name: value})

    assert name in caught.value.public
    assert value not in caught.value.public
    assert "\n" not in caught.value.public


RG = f"/subscriptions/{SUB}/resourceGroups/rg-mail/providers"
ACS_ID = f"{RG}/Microsoft.Communication/communicationServices/acs-mail"
VAULT_ID = f"{RG}/Microsoft.KeyVault/vaults/kv-mail"
SITE_ID = f"{RG}/Microsoft.Web/sites/app-mail"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ROTATION_ACS_RESOURCE_IDS", ACS_ID),
        ("ROTATION_ACS_RESOURCE_IDS", ACS_ID.upper().replace(SUB, SUB.upper())),
        ("ROTATION_KEY_VAULT_RESOURCE_ID", VAULT_ID),
        ("ROTATION_CONSUMER_SITES", SITE_ID),
        ("ROTATION_CONSUMER_SITES", f"{SITE_ID}/slots/staging"),
    ],
)
def test_resource_id_settings_take_arm_ids_in_any_case(name: str, value: str) -> None:
    settings = load_settings({**BASE, name: value})
    kept = getattr(settings, name.removeprefix("ROTATION_").lower())
    assert kept in (value, [value])


ACS_FORM = (
    "(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Communication"
    "/communicationServices/<name>)"
)
VAULT_FORM = (
    "must be a Key Vault resource id (/subscriptions/<id>/resourceGroups/<rg>"
    "/providers/Microsoft.KeyVault/vaults/<name>)"
)
SITE_FORM = (
    "(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Web/sites/<name>[/slots/<slot>])"
)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        *(
            ("ROTATION_ACS_RESOURCE_IDS", bad, f"{bad!r} is not an ACS resource id {ACS_FORM}")
            for bad in (
                f"{RG}/Microsoft.Communication/emailServices/acs-mail",
                f"{ACS_ID}/smtpUsernames/mailer",
                f"{ACS_ID}/",
                ACS_ID.removeprefix("/"),
                ACS_ID.replace(SUB, "x" * 36),
                ACS_ID.replace(SUB, "-" * 36),
                ACS_ID.replace("/resourceGroups/rg-mail", ""),
            )
        ),
        *(
            ("ROTATION_KEY_VAULT_RESOURCE_ID", bad, VAULT_FORM)
            for bad in (
                f"{RG}/Microsoft.KeyVault/vaults/kv",
                f"{RG}/Microsoft.KeyVault/vaults/kv_mail",
                f"{RG}/Microsoft.KeyVault/vaults/{'k' * 25}",
                f"{VAULT_ID}/secrets/smtp",
                f"{RG}/Microsoft.KeyVault/managedHSMs/kv-mail",
            )
        ),
        *(
            (
                "ROTATION_CONSUMER_SITES",
                bad,
                f"{bad!r} is not a site or slot resource id {SITE_FORM}",
            )
            for bad in (
                f"{SITE_ID}/config/web",
                f"{SITE_ID}/slots/staging/config/web",
                f"{SITE_ID}/providers/Microsoft.Web/slots/staging",
                f"{RG}/Microsoft.Web/serverfarms/plan",
            )
        ),
    ],
)
def test_a_malformed_resource_id_is_refused_with_the_form_it_should_take(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({**BASE, name: value})

    assert str(caught.value) == f"invalid settings: {name}: {message}"
