"""README's settings table and local.settings.example.json, generated from the settings model
(rotation/settings.py): each setting's name, default, accepted values and meaning come from its
field there (type, default, bounds, `description`, `examples`), so neither file can drift.

`python -m tests.settings_doc --write` rewrites both (`make docs` runs every generator); without
``--write`` it prints the table. tests/unit/test_settings_doc.py fails while either differs,
and tests/infra/test_settings_bounds.py holds infra's parameters to the same bounds.
"""

from __future__ import annotations

import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import annotated_types
from pydantic.fields import FieldInfo

from rotation.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = ROOT / "local.settings.example.json"
BEGIN = "<!-- BEGIN settings table generated from rotation/settings.py: make docs -->"
END = "<!-- END settings table -->"
#: What the Functions host itself needs locally (not the rotator's settings).
HOST_VALUES = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
}


@dataclass(frozen=True, slots=True)
class Bounds:
    """A number setting's range: `low` and `high` inclusive unless `low_open` (pydantic gt)."""

    low: float | None
    high: float | None
    low_open: bool = False


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def kind(info: FieldInfo) -> type | str:
    """int, float, bool, list or str (an optional X counts as X), or "literal" for a fixed
    set of values."""
    annotation = info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return "literal"
    if typing.get_origin(annotation) is list:
        return list
    optional = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = optional[0] if optional else annotation
    return base if base in (int, float, bool) else str


def literal_values(info: FieldInfo) -> tuple[str, ...]:
    return typing.get_args(info.annotation)


def bounds(info: FieldInfo) -> Bounds | None:
    """The numeric bounds pydantic enforces (`Field(ge=..., gt=..., le=...)`), if any."""
    low = high = None
    low_open = False
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt | annotated_types.MaxLen | annotated_types.MinLen):
            raise NotImplementedError(f"render {item!r} in the settings table")
    if low is None and high is None:
        return None
    return Bounds(low, high, low_open)  # type: ignore[arg-type]


def default(info: FieldInfo) -> object:
    """The default as the environment would spell it: None when required or unset."""
    if info.is_required():
        return None
    value = info.get_default(call_default_factory=True)
    return None if value in (None, []) else value


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return _number(value)
    return str(value)


def _shown_default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = default(info)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _text(value)
    return f"`{_text(value)}`"


def _accepted(info: FieldInfo) -> str:
    found = kind(info)
    if found == "literal":
        return ", ".join(f"`{v}`" for v in literal_values(info))
    if found is bool:
        return "`true`, `false`"
    limits = bounds(info)
    if limits is None:
        extra = info.json_schema_extra
        return str(extra.get("accepts", "")) if isinstance(extra, dict) else ""
    unit = " (fractions too)" if found is float else ""
    low = "" if limits.low is None else _number(limits.low)
    high = "" if limits.high is None else _number(limits.high)
    if limits.low_open:
        return f"over {low}, up to {high}{unit}"
    return f"{low} to {high}{unit}"


def rows() -> list[str]:
    lines = ["| setting | default | accepted | meaning |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        if not info.description:
            raise ValueError(f"{env_name(name)} has no description in rotation/settings.py")
        cells = [f"`{env_name(name)}`", _shown_default(info), _accepted(info), info.description]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table() -> list[str]:
    """The lines between (and including) the markers, as README must hold them."""
    return [BEGIN, *rows(), END]


def readme_table() -> list[str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    return lines[lines.index(BEGIN) : lines.index(END) + 1]


def example_value(info: FieldInfo) -> str:
    """The value local.settings.example.json shows: a placeholder, the default, or empty."""
    if info.examples:
        return str(info.examples[0])
    value = default(info)
    return "" if value is None else _text(value)


def example() -> str:
    """local.settings.example.json as it must read: the host's values, then every setting."""
    host = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in HOST_VALUES.items()]
    ours = [
        f"    {json.dumps(env_name(name))}: {json.dumps(example_value(info))}"
        for name, info in Settings.model_fields.items()
    ]
    values = ",\n".join(host) + ",\n\n" + ",\n".join(ours)
    return '{\n  "IsEncrypted": false,\n  "Values": {\n' + values + "\n  }\n}\n"


def write() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    start, end = lines.index(BEGIN), lines.index(END)
    README.write_text("\n".join([*lines[:start], *table(), *lines[end + 1 :]]) + "\n", "utf-8")
    EXAMPLE.write_text(example(), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print("\n".join(table()))
