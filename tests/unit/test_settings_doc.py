"""README's settings table and local.settings.example.json are the settings model's
(tests/settings_doc.py generates both; `make docs` rewrites them)."""

from __future__ import annotations

import json

import pytest
from pydantic import Field
from pydantic.fields import FieldInfo

from rotation.settings import Settings, load_settings
from tests import settings_doc

BASE = {
    "ROTATION_KEY_VAULT_URL": "https://kv.vault.azure.net/",
    "ROTATION_TENANT_ID": "11111111-1111-1111-1111-111111111111",
    "ROTATION_SUBSCRIPTION_IDS": "22222222-2222-2222-2222-222222222222",
}


def test_readme_holds_the_generated_settings_table() -> None:
    assert settings_doc.readme_table() == settings_doc.table(), "run `make docs`"


def test_local_settings_example_is_the_generated_one() -> None:
    assert settings_doc.EXAMPLE.read_text(encoding="utf-8") == settings_doc.example(), (
        "run `make docs`"
    )


def test_the_table_has_a_row_per_setting_with_its_default_and_bounds() -> None:
    rows = {line.split(" | ")[0].strip("| `"): line for line in settings_doc.rows()[2:]}

    assert set(rows) == {settings_doc.env_name(f) for f in Settings.model_fields}
    assert rows["ROTATION_ROTATE_BEFORE_DAYS"].startswith(
        "| `ROTATION_ROTATE_BEFORE_DAYS` | 30 | 1 to 365 |"
    )
    assert "| 48 | 0 to 720 (fractions too) |" in rows["ROTATION_GRACE_HOURS"]
    assert "| 300 | over 0, up to 1800 (fractions too) |" in rows["ROTATION_VERIFY_TIMEOUT_SECONDS"]
    assert "| required | `https://` URL |" in rows["ROTATION_KEY_VAULT_URL"]
    assert "| `public` | `public`, `usgov`, `china` |" in rows["ROTATION_CLOUD"]
    assert "| `false` | `true`, `false` |" in rows["ROTATION_HTTP_LOGGING"]


def test_every_setting_is_described() -> None:
    """A setting added without a description cannot reach the table."""
    assert all(info.description for info in Settings.model_fields.values())
    bare = Settings.model_fields | {"new_setting": FieldInfo.from_annotation(int)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Settings, "model_fields", bare)
        with pytest.raises(ValueError, match="ROTATION_NEW_SETTING has no description"):
            settings_doc.rows()


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        (Field(5, ge=1, le=9), "1 to 9"),
        (Field(5.0, gt=0, le=9), "over 0, up to 9 (fractions too)"),
    ],
)
def test_bounds_are_read_from_the_field(field: FieldInfo, shown: str) -> None:
    field.annotation = type(field.default)
    assert settings_doc._accepted(field) == shown


def test_the_example_file_loads_and_leaves_every_default_alone() -> None:
    values = json.loads(settings_doc.example())["Values"]
    settings = load_settings({**values, **BASE})

    defaults = load_settings(BASE)
    assert settings.model_dump(exclude={"lease_blob_url"}) == defaults.model_dump(
        exclude={"lease_blob_url"}
    )
