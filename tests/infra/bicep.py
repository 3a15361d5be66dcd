"""Reads infra/ the way the tests need it: Bicep parsed by pycep (the parser checkov uses),
and azd's `${VAR=default}` parameter values resolved as azd resolves them.

There is no Bicep compiler offline (the CLI downloads a binary), so these tests check what
a compiler would not anyway: that parameters, settings and permissions agree with the
product and with each other.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
PARAMETERS = INFRA / "main.parameters.json"
AZD_SUBSTITUTION = re.compile(r"^\$\{(?P<var>[A-Z_][A-Z0-9_]*)(?:=(?P<default>[^}]*))?\}$")


@cache
def parse(path: Path) -> dict[str, Any]:
    """The pycep JSON of one Bicep file (raises on a syntax error)."""
    result: dict[str, Any] = BicepParser().parse(file_path=path)
    return result


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def parameters(path: Path = MAIN) -> dict[str, dict[str, Any]]:
    return dict(parse(path).get("parameters", {}))


def decorator(param: dict[str, Any], kind: str) -> Any:
    """The argument of a parameter's decorator (`min_value`, `allowed`, ...), or None."""
    for item in param.get("decorators", []):
        if item["type"] == kind:
            return item["argument"]
    return None


def parameter_file() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PARAMETERS.read_text(encoding="utf-8"))
    return loaded


def azd_value(raw: str) -> tuple[str | None, str | None]:
    """(environment variable, default) of a `${VAR=default}` value; (None, raw) for a literal."""
    match = AZD_SUBSTITUTION.match(raw)
    if not match:
        return None, raw
    return match["var"], match["default"]


def convert(kind: str, text: str) -> object:
    """What azd sends for a string value of a parameter of this type (it converts bool/int)."""
    if kind == "bool":
        return {"true": True, "false": False}[text.lower()]
    if kind == "int":
        return int(text)
    return text


def app_settings() -> dict[str, Any]:
    """The ROTATION_* settings main.bicep gives the Function App (name -> pycep expression)."""
    module = parse(MAIN)["modules"]["functionApp"]
    return {item["name"]: item["value"] for item in module["config"]["params"]["rotationSettings"]}


def variable(path: Path, name: str) -> Any:
    return parse(path)["variables"][name]["value"]
