"""docs/openapi.yaml's ``components/schemas``, generated from the models that make the answers
(rotation/answers.py) and read the request (rotation/http_api.py's RotationRequest).

The doc must match (tests/unit/test_answers.py). `python -m tests.openapi_doc --write`
rewrites the block between the markers; without ``--write`` it prints the block. Everything
else in the file (paths, their descriptions) is written by hand and left alone.

pydantic writes JSON Schema 2020-12; OpenAPI 3.0 reads an older dialect, so each schema is
translated: ``anyOf [X, null]`` becomes ``nullable: true`` (``allOf [$ref]`` beside it, since
3.0 ignores a $ref's siblings), ``const`` becomes a one-value ``enum``, enums are written in
place rather than as components, and pydantic's generated titles go.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from rotation import answers
from rotation.http_api import RotationRequest

DOC = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
BEGIN = "  # BEGIN schemas generated from rotation/answers.py: python -m tests.openapi_doc --write"
END = "  # END generated schemas"
REF = "#/components/schemas/"

Schema = dict[str, Any]
#: In the doc's order: the request, the error, then each route's answer and its parts.
MODELS: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
    (RotationRequest, "validation"),
    (answers.Problem, "serialization"),
    (answers.ProblemDetail, "serialization"),
    (answers.AppOutcome, "serialization"),
    (answers.RunReport, "serialization"),
    (answers.RequestedBy, "serialization"),
    (answers.SkippedItem, "serialization"),
    (answers.DoctorReport, "serialization"),
    (answers.DoctorCheck, "serialization"),
    (answers.DoctorMisconfigured, "serialization"),
    (answers.Status, "serialization"),
    (answers.StatusRow, "serialization"),
    (answers.Username, "serialization"),
    (answers.Drift, "serialization"),
    (answers.ConsumerCheck, "serialization"),
    (answers.ConsumerReference, "serialization"),
    (answers.Health, "serialization"),
    (answers.Misconfigured, "serialization"),
]
#: Key order in the doc: what a thing is, then what it holds.
ORDER = [
    "$ref", "allOf", "type", "format", "enum", "nullable", "default", "maxItems", "items",
    "additionalProperties", "description", "required", "properties",
]  # fmt: skip
NULL: Schema = {"type": "null"}


def schemas() -> dict[str, Schema]:
    """Every component schema, as OpenAPI 3.0 reads it, in MODELS' order."""
    _, top = models_json_schema(MODELS, ref_template=REF + "{model}")
    defs: dict[str, Schema] = top["$defs"]
    enums = {REF + name: s for name, s in defs.items() if "enum" in s and "properties" not in s}
    return {m.__name__: _openapi(defs[m.__name__], enums) for m, _ in MODELS}


def _openapi(node: Schema, enums: dict[str, Schema]) -> Schema:
    out: Schema = {}
    enum: Schema = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and value is None):
            continue  # pydantic's "App Id" titles; None is the default of an absent member
        if key == "properties":
            out[key] = {name: _openapi(sub, enums) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _openapi(value, enums)
        elif key in ("anyOf", "allOf"):
            out[key] = [_openapi(sub, enums) for sub in value]
        elif key == "$ref" and value in enums:
            enum = _openapi(enums[value], enums)  # its description gives way to the field's
        elif key == "const":
            out["enum"] = [value]
        elif key == "description":
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    out = {**enum, **out}
    variants = out.pop("anyOf", None)
    if variants is not None:
        (only,) = [v for v in variants if v != NULL]  # X | None is all the models use
        out = {**only, **out, "nullable": True}
        if "enum" in out:  # OpenAPI 3.0: a nullable enum lists null among its values
            out["enum"] = [*out["enum"], None]
    if "$ref" in out and len(out) > 1:  # OpenAPI 3.0 ignores whatever stands beside a $ref
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return {key: out[key] for key in sorted(out, key=_rank)}


def _rank(key: str) -> int:
    return ORDER.index(key) if key in ORDER else len(ORDER)


class _Dumper(yaml.SafeDumper):
    """Block style for structure, flow style (``{type: string}``) for leaves; no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _scalar(value: object) -> bool:
    return not isinstance(value, dict | list)


def _mapping(dumper: _Dumper, data: Schema) -> yaml.Node:
    leaf = all(_scalar(v) or (isinstance(v, list) and all(map(_scalar, v))) for v in data.values())
    flow = leaf and "description" not in data
    return dumper.represent_mapping("tag:yaml.org,2002:map", list(data.items()), flow_style=flow)


def _sequence(dumper: _Dumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=all(map(_scalar, data))
    )


def _string(dumper: _Dumper, data: str) -> yaml.Node:
    """Long text (descriptions) folded over several lines."""
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style=">" if len(data) > 72 else None
    )


_Dumper.add_representer(dict, _mapping)
_Dumper.add_representer(list, _sequence)
_Dumper.add_representer(str, _string)


def block() -> list[str]:
    """The lines between (and including) the markers, as the doc must hold them."""
    text = yaml.dump({"schemas": schemas()}, Dumper=_Dumper, width=96, allow_unicode=True)
    return [BEGIN, *(f"  {line}" for line in text.splitlines()), END]


def checked_in() -> list[str]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    return lines[lines.index(BEGIN) : lines.index(END) + 1]


def write() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start, end = lines.index(BEGIN), lines.index(END)
    DOC.write_text("\n".join([*lines[:start], *block(), *lines[end + 1 :]]) + "\n", "utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print("\n".join(block()))
