"""The workbook `azd up` deploys: its resource meets the workbooks API contract, its JSON has
the shape the portal loads, every query is valid KQL, and it (like the alert rules) reads
only events and fields that rotation/telemetry/events.py documents. Whether real lines carry them is
tests/infra/test_log_contract.py's part.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from rotation.model import Outcome
from rotation.telemetry import events
from tests.infra import bicep, events_doc, queries

KQL = Path(__file__).parent / "kql"
#: Item types of the workbook schema (Application-Insights-Workbooks, schema/workbook.json):
#: 1 markdown, 3 query, 9 parameters, 10 metric, 11 links, 12 group.
ITEM_TYPES = {1, 3, 9, 10, 11, 12}
#: Parameter types: 1 text, 2 drop-down, 4 time range, 5 resource picker.
PARAMETER_TYPES = {1, 2, 4, 5}
THRESHOLD_OPERATORS = {"==", "!=", ">", ">=", "<", "<=", "Default"}
VISUALIZATIONS = {"table", "tiles", "barchart", "timechart", "linechart", "areachart"}
#: The panels the operators' issue asks for (issue 17), by item name.
PANELS = {
    "last run",
    "expiry timeline",
    "skipped and blocked",
    "run history",
    "runs per day",
    "failures",
    "verification trend",
    "verification per rotation",
    "consumers",
}


def workbook_resource() -> dict[str, Any]:
    found: dict[str, Any] = bicep.parse(queries.WORKBOOK_BICEP)["resources"]["workbook"]
    return found


def test_the_workbook_resource_meets_the_workbooks_api_contract() -> None:
    """azure-rest-api-specs, applicationinsights stable/2023-06-01 workbooks_API.json: kind
    'shared' is the only valid kind; displayName, category and serializedData are required;
    version names the serializedData schema. The name is a GUID, stable across deploys."""
    resource = workbook_resource()
    config = resource["config"]
    props = config["properties"]

    assert resource["type"] == "Microsoft.Insights/workbooks"
    assert resource["api_version"] == "2023-06-01"
    assert config["kind"] == "shared"
    assert {"displayName", "category", "serializedData"} <= set(props)
    assert props["category"] == "workbook"
    assert props["version"] == queries.workbook()["version"] == "Notebook/1.0"
    assert props["sourceId"] == "appInsightsId"
    assert config["name"]["function"]["type"] == "guid"  # deterministic, never newGuid()
    module = bicep.parse(bicep.MAIN)["modules"]["workbook"]["config"]["params"]
    accessor = json.dumps(module["appInsightsId"])
    assert "monitoring" in accessor
    assert "appInsightsId" in accessor


def test_every_placeholder_in_the_workbook_json_is_filled_by_the_template() -> None:
    text = queries.WORKBOOK_BICEP.read_text(encoding="utf-8")
    placeholders = set(re.findall(r"__[A-Z_]+__", queries.WORKBOOK.read_text(encoding="utf-8")))

    assert "loadTextContent('workbook.json')" in text
    # Bicep's loadTextContent takes files up to 131,072 characters (Bicep docs, file functions)
    assert len(queries.WORKBOOK.read_text(encoding="utf-8")) < 131_072
    assert placeholders == {"__APP_INSIGHTS_ID__", "__SCHEDULE_HOURS__"}
    for placeholder in placeholders:
        assert f"'{placeholder}'" in text, placeholder
    assert queries.workbook()["fallbackResourceIds"] == ["__APP_INSIGHTS_ID__"]


def test_workbook_json_has_the_shape_the_portal_loads() -> None:
    document = queries.workbook()
    names = [item["name"] for item in document["items"]]

    assert document["version"] == "Notebook/1.0"
    assert len(names) == len(set(names)), "item names must be unique"
    assert set(names) >= PANELS
    for item in document["items"]:
        assert item["type"] in ITEM_TYPES, item["name"]
        assert isinstance(item["content"], dict), item["name"]
        if item["type"] == 1:
            assert item["content"]["json"].strip(), item["name"]


def test_parameters_are_declared_once_and_every_reference_resolves() -> None:
    (block,) = queries.items(9)
    content = block["content"]
    declared = {p["name"]: p for p in content["parameters"]}
    ids = [p["id"] for p in content["parameters"]]

    assert content["version"] == "KqlParameterItem/1.0"
    assert len(ids) == len(set(ids))
    assert all(uuid.UUID(i) for i in ids)
    for parameter in content["parameters"]:
        assert parameter["type"] in PARAMETER_TYPES, parameter["name"]
        assert parameter["version"] == "KqlParameterItem/1.0"
    assert declared["TimeRange"]["type"] == 4
    assert set(queries.WORKBOOK_PARAMETERS) <= set(declared)
    for item in queries.items(3):
        used = set(re.findall(r"\{(\w+)(?::\w+)?\}", item["content"]["query"]))
        assert used <= set(queries.WORKBOOK_PARAMETERS), (item["name"], used)
        time = item["content"].get("timeContextFromParameter")
        assert time is None or declared[time]["type"] == 4, item["name"]


@pytest.mark.parametrize("item", queries.items(3), ids=lambda i: i["name"])
def test_every_query_item_has_valid_query_settings(item: dict[str, Any]) -> None:
    content = item["content"]

    assert content["version"] == "KqlItem/1.0"
    assert content["queryType"] == 0  # Logs (KQL)
    assert content["resourceType"] == "microsoft.insights/components"
    assert content["crossComponentResources"] == ["__APP_INSIGHTS_ID__"]
    assert content["query"].lstrip().startswith("traces")
    assert content["visualization"] in VISUALIZATIONS
    assert content["size"] in range(5)
    assert content["title"]
    assert content["noDataMessage"]
    assert ("timeContextFromParameter" in content) != ("timeContext" in content)
    for formatter in content.get("gridSettings", {}).get("formatters", []):
        # a column the query names (projected, summarized or extended)
        assert re.search(rf"\b{formatter['columnMatch']}\b", content["query"]), formatter
        for rule in formatter.get("formatOptions", {}).get("thresholdsGrid", []):
            assert rule["operator"] in THRESHOLD_OPERATORS, rule
            if rule["operator"] == "==":  # a value the query can produce, or it never colours
                assert f'"{rule["thresholdValue"]}"' in content["query"], rule


@pytest.mark.parametrize("query", queries.all_queries(), ids=lambda q: q.where)
def test_every_query_reads_documented_events_and_fields(query: queries.Query) -> None:
    read = [events.BY_NAME.get(name) for name in query.events()]
    assert read, f"{query.where}: filters on no event"
    assert all(read), f"{query.where}: undocumented events in {query.events()}"
    allowed = {f for e in read if e for f in e.allowed()}
    kinds = {**events.COMMON, **events.CONTEXT}
    for event in read:
        assert event
        kinds.update(event.fields)
    for path in query.paths():
        assert path[0] in allowed, f"{query.where}: body.{path[0]} is not documented"
        if len(path) > 1:  # a key inside an object field: only run.finished's counts so far
            assert path[0] == "counts", path
            assert path[1] in {o.value for o in Outcome}, path
    for path, conversion in query.conversions():
        need = queries.CONVERSION_KIND[conversion]
        have = "int" if path[:1] == ("counts",) and len(path) == 2 else kinds[path[0]]
        if need == "datetime":
            assert have == "string", (query.where, path, conversion)
        elif need is not None:
            assert have == need or (need == "number" and have == "int"), (query.where, path)


def test_the_alert_queries_are_found() -> None:
    found = queries.alert_queries()
    assert found, "alerts.bicep has no query this test recognises"
    assert all("run.finished" in q.text or "app.expiry_near" in q.text for q in found)


#: The logger methods whose first argument is an event name.
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


def logged_events(package: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Every event name the code logs (name -> where), read from the log calls' first
    argument (AST), and the calls whose first argument is not a literal name (which no
    reader of the code could check)."""
    logged: dict[str, list[str]] = {}
    unreadable: list[str] = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and node.args
            ):
                continue
            where = f"{path.relative_to(package.parent)}:{node.lineno}"
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                logged.setdefault(first.value, []).append(where)
            else:
                unreadable.append(where)
    return logged, unreadable


def test_every_event_the_product_logs_is_documented_and_vice_versa() -> None:
    """The catalogue (rotation/telemetry/events.py, and docs/events.md from it) and the
    code's log calls agree both ways: no event logged that is not catalogued, none
    catalogued (and not planned) that nothing logs, and every call names its event
    literally so that this test can read it."""
    logged, unreadable = logged_events(bicep.ROOT / "rotation")
    live = {e.name for e in events.EVENTS if not e.planned}

    assert unreadable == [], "log calls must name their event as a literal string"
    undocumented = {n: w for n, w in logged.items() if n not in events.BY_NAME}
    assert undocumented == {}, "logged but not in rotation/telemetry/events.py"
    assert live - set(logged) == set(), (
        "in rotation/telemetry/events.py but never logged (or mark it planned)"
    )


def test_the_catalogue_check_sees_a_log_call_the_catalogue_lacks(tmp_path: Path) -> None:
    """The reader above can fail: a module that logs an uncatalogued event, one that names
    it through a variable, and a catalogued event nobody logs are each found."""
    package = tmp_path / "rotation"
    package.mkdir()
    (package / "m.py").write_text(
        'log.info("run.started")\nlog.warning("made.up", x=1)\nname = "x.y"\nlog.error(name)\n'
    )
    logged, unreadable = logged_events(package)
    assert set(logged) == {"run.started", "made.up"}
    assert set(logged) - set(events.BY_NAME) == {"made.up"}
    assert unreadable == ["rotation/m.py:4"]
    assert "run.finished" in {e.name for e in events.EVENTS} - set(logged)


def test_the_docs_table_is_the_contract() -> None:
    doc = (bicep.ROOT / events_doc.DOC).read_text(encoding="utf-8").splitlines()
    start = doc.index(events_doc.HEADER)
    table = doc[start : start + len(events_doc.rows())]

    assert table == events_doc.rows(), "regenerate with `python -m tests.infra.events_doc`"


def kql_analyzer() -> list[str]:
    node = shutil.which("node")
    installed = (KQL / "node_modules" / "@kusto" / "language-service-next").is_dir()
    if node and installed:
        return [node, str(KQL / "analyze.js")]
    message = "the KQL check needs Node.js and `make kql-deps` (npm ci in tests/infra/kql)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def test_every_query_is_valid_kql_for_the_traces_table() -> None:
    """Microsoft's Kusto language service parses and binds every query against
    Application Insights' traces schema: a typo, an unknown function or column, or a
    type error would show as an error in the portal instead of a panel."""
    command = kql_analyzer()
    found = queries.all_queries()
    done = subprocess.run(  # noqa: S603
        command,
        input=json.dumps([q.text for q in found]),
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(done.stdout)

    assert len(results) == len(found)
    problems = {
        q.where: [f"{d['code']} {d['message']} at {d['start']}" for d in diagnostics]
        for q, diagnostics in zip(found, results, strict=True)
        if any(d["severity"] == "Error" for d in diagnostics)
    }
    assert problems == {}


def test_the_kql_analyzer_reports_errors() -> None:
    """The check above could pass by analyzing nothing; a broken query must fail it."""
    command = kql_analyzer()
    broken = ["traces | where bogus > 1", "traces | extend x = todouble(message) | where x > 'a'"]
    done = subprocess.run(  # noqa: S603
        command, input=json.dumps(broken), capture_output=True, text=True, check=True
    )

    assert all(any(d["severity"] == "Error" for d in r) for r in json.loads(done.stdout))
