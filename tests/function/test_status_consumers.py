"""GET /api/status through the Function App's own handler lists each app's consumer sites
(with ROTATION_CONSUMERS_ENABLED), in the shape docs/openapi.yaml gives."""

from __future__ import annotations

import pytest

from sandbox.server import Sandbox
from tests.function.test_function_app import get, load


async def test_status_shows_what_each_consumer_site_resolves(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = sandbox.add_sender()
    # Nothing is in Key Vault yet: the site's references do not resolve.
    site = sandbox.add_consumer_site("mailer-web", f"acs-smtp-{sender.app_id}")
    fa = load(sandbox, monkeypatch, consumers_enabled="true")
    try:
        status, body = await get(fa, "status")
    finally:
        await fa.api.close()

    assert status == 200
    (row,) = body["apps"]
    consumers = row["consumers"]
    assert set(consumers) == {"version", "confirmed", "references", "unreachable"}
    assert consumers["confirmed"] is False
    refs = {r["setting"]: r for r in consumers["references"]}
    assert set(refs) == {"SMTP_PASSWORD", "SMTP_USERNAME"}
    password = refs["SMTP_PASSWORD"]
    assert password["site"] == site.id
    assert password["status"] == "SecretNotFound"
    assert password["problem"] == f"SecretNotFound: {password['details']}"
    assert "was not found" in password["details"]
    assert set(password) == {
        "site", "setting", "vaultName", "secretName", "status", "pinnedVersion",
        "activeVersion", "details", "confirmed", "problem", "settingType",
    }  # fmt: skip
    assert password["settingType"] == "appSetting"


async def test_status_has_no_consumers_when_the_feature_is_off(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.add_sender()
    fa = load(sandbox, monkeypatch)
    try:
        _, body = await get(fa, "status")
    finally:
        await fa.api.close()
    assert body["apps"][0]["consumers"] is None
