"""Every KQL query infra/ deploys, the workbook's and the alert rules', and what each one
reads from the rotator's log lines.

The queries read the JSON object of a trace's `message` as `body`, so what a query depends
on is visible in its text: the event names it filters on (string literals like
"run.finished") and the fields it reads (`body.<field>`, maybe inside a conversion such as
`toint(body.failed)`). The tests hold those against rotation/telemetry/events.py and against lines
the product really writes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.infra import bicep

WORKBOOK = bicep.INFRA / "modules" / "workbook.json"
WORKBOOK_BICEP = bicep.INFRA / "modules" / "workbook.bicep"
ALERTS = bicep.INFRA / "modules" / "alerts.bicep"

#: Values the tests give the workbook's parameters (the portal substitutes `{Name}`).
WORKBOOK_PARAMETERS = {"ScheduleHours": "24"}
#: Sample values for what alerts.bicep splices into its queries from parameters.
ALERT_PLACEHOLDERS = {"__DAYS__": "14", "__ARMED__": "2026-01-01T00:00:00Z"}

_EVENT = re.compile(r'"([a-z]+\.[a-z_]+)"')
_FIELD = re.compile(r"\bbody((?:\.[A-Za-z_]\w*)+)")
_CONVERTED = re.compile(
    r"\b(to(?:int|long|real|double|decimal|bool|boolean|datetime|string))\(\s*body((?:\.\w+)+)\s*\)"
)
_PARSE = re.compile(r'extract\(@"(?P<regex>[^"]+)",\s*1,\s*message\)')
_PLACEHOLDER = re.compile(r"__[A-Z_]+__")

#: What a conversion needs the JSON value to be (None: anything converts).
CONVERSION_KIND = {
    "toint": "int",
    "tolong": "int",
    "toreal": "number",
    "todouble": "number",
    "todecimal": "number",
    "tobool": "bool",
    "toboolean": "bool",
    "todatetime": "datetime",
    "tostring": None,
}


@dataclass(frozen=True, slots=True)
class Query:
    where: str  # "workbook: <item name>" or "alerts: <variable>"
    text: str

    def events(self) -> set[str]:
        """The event names the query filters on."""
        return set(_EVENT.findall(self.text))

    def paths(self) -> set[tuple[str, ...]]:
        """Every `body.a.b` the query reads, as ("a", "b")."""
        return {tuple(m.removeprefix(".").split(".")) for m in _FIELD.findall(self.text)}

    def fields(self) -> set[str]:
        return {path[0] for path in self.paths()}

    def conversions(self) -> set[tuple[tuple[str, ...], str]]:
        """(path, conversion) for every `toX(body.path)`."""
        return {
            (tuple(path.removeprefix(".").split(".")), fn)
            for fn, path in _CONVERTED.findall(self.text)
        }

    def parse_pattern(self) -> re.Pattern[str]:
        found = _PARSE.search(self.text)
        assert found, f'{self.where}: no extract(@"...", 1, message) to read the JSON with'
        return re.compile(found["regex"])


@cache
def workbook() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    return loaded


def items(kind: int) -> list[dict[str, Any]]:
    return [i for i in workbook()["items"] if i["type"] == kind]


def workbook_queries() -> list[Query]:
    found = []
    for item in items(3):
        text = item["content"]["query"]
        for name, value in WORKBOOK_PARAMETERS.items():
            text = text.replace("{" + name + "}", value)
        found.append(Query(f"workbook: {item['name']}", text))
    return found


def alert_queries() -> list[Query]:
    """The alert rules' queries on the rotator's lines, spliced as alerts.bicep splices them:
    the `'''` blocks that start with `traces`, with the shared `__PARSE__` fragment put in
    and every other `__PLACEHOLDER__` given its sample value from ALERT_PLACEHOLDERS."""
    text = ALERTS.read_text(encoding="utf-8")
    blocks = dict(re.findall(r"var (\w+) = (?:replace\()?'''\n(.*?)'''", text, re.DOTALL))
    fragment = blocks.get("parse", "").strip()
    found = []
    for name, block in blocks.items():
        if not block.lstrip().startswith("traces"):
            continue
        spliced = block.replace("__PARSE__", fragment)
        for placeholder in set(_PLACEHOLDER.findall(spliced)):
            assert placeholder in ALERT_PLACEHOLDERS, f"give {placeholder} a sample value here"
            spliced = spliced.replace(placeholder, ALERT_PLACEHOLDERS[placeholder])
        found.append(Query(f"alerts: {name}", spliced.strip()))
    return found


def all_queries() -> list[Query]:
    return [*workbook_queries(), *alert_queries()]
