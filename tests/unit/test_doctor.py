"""doctor's pure parts: reading a token's claims, Key Vault's token resource, the settings
line, and the one-line-per-check rendering; and that it closes what it opened."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rotation import answers, doctor
from rotation.doctor import Check, Site, ok, render, settings_failed
from rotation.doctor.facts import token_claims, vault_audience
from rotation.settings import load_settings


def _jwt(payload: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2lnbmF0dXJl"


def test_token_claims_reads_the_payload_and_tolerates_opaque_tokens() -> None:
    claims = {"roles": ["Application.ReadWrite.OwnedBy"], "oid": "o", "tid": "t"}

    assert token_claims(_jwt(claims)) == claims
    assert token_claims("opaque-token") == {}
    assert token_claims("a.!!!.c") == {}


def test_vault_audience_is_the_host_minus_the_vaults_own_label() -> None:
    assert vault_audience("https://kv-x.vault.azure.net/") == "https://vault.azure.net"
    assert vault_audience("https://kv-x.vault.usgovcloudapi.net") == (
        "https://vault.usgovcloudapi.net"
    )
    assert vault_audience("https://127.0.0.1:8443") == "https://0.0.1:8443"


def test_settings_failure_names_each_setting_once_in_the_fix() -> None:
    check = settings_failed(
        "invalid settings: ROTATION_TENANT_ID: <value> is not a GUID; ROTATION_TENANT_ID: x; "
        "ROTATION_GRACE_HOURS: too big",
        Site("func-a", "rg-a", in_azure=True),
    )

    assert check.status == "fail"
    assert check.fix == (
        "azd env set ROTATION_GRACE_HOURS <value> && azd provision (the deployment sets "
        "ROTATION_TENANT_ID itself); or at once, until the next provision: "
        "az functionapp config appsettings set -g rg-a -n func-a --settings "
        "ROTATION_TENANT_ID=<value> ROTATION_GRACE_HOURS=<value>"
    )


def test_render_prints_one_line_per_check_and_a_fix_line_under_each_problem() -> None:
    checks = [
        Check("token graph", "ok", "token for https://graph.microsoft.com"),
        Check("vault write", "warn", "checked at first write", "export X=<value>"),
        Check("owner a", "fail", "not an owner", "az ad app owner add --id a --owner-object-id b"),
    ]
    console = Console(width=200, record=True, color_system=None)

    render(checks, console)

    shown = console.export_text()
    lines = shown.splitlines()
    assert lines[0].split() == [
        "ok",
        "token",
        "graph",
        "token",
        "for",
        "https://graph.microsoft.com",
    ]
    assert lines[1].startswith("warn  vault write")
    assert lines[2].strip() == "fix: export X=<value>"
    assert lines[3].startswith("fail  owner a")
    assert lines[4].strip() == "fix: az ad app owner add --id a --owner-object-id b"
    assert lines[5] == "3 checks: 1 failed, 1 warnings"
    assert not ok(checks)
    assert answers.DoctorReport.of(checks).body()["ok"] is False
    # GET /api/doctor?format=text (what azd up prints at its end) sends the same lines.
    assert doctor.text(checks) == shown
    assert ok(checks[:2])


class _Credential:
    """A token credential that only records being closed (doctor fails before any token)."""

    def __init__(self) -> None:
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token is asked for before the clients are built")

    async def close(self) -> None:
        self.closed = True


async def test_a_client_failing_to_build_is_a_failed_line_and_closes_the_credential_made_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first client that loads the CA bundle (Graph's) fails after the credential
    exists. Settings refuse a bundle that is not a PEM, so the test slips one past them."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    settings = load_settings(
        {
            "ROTATION_KEY_VAULT_URL": "https://kv.vault.azure.net",
            "ROTATION_TENANT_ID": "00000000-0000-0000-0000-00000000000a",
            "ROTATION_APP_IDS": "00000000-0000-0000-0000-0000000000a1",
        }
    ).model_copy(update={"ca_bundle": bundle})
    credential = _Credential()
    monkeypatch.setattr("rotation.azure.identity.build_credential", lambda _settings: credential)

    checks = await doctor.diagnose(settings, Site())  # never a traceback

    assert checks[-1] == Check("doctor", "fail", "doctor could not run: internal error: SSLError")
    assert not ok(checks)
    assert credential.closed
