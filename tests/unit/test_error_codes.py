"""The error codes of rotation/error_codes.py are the ones the code answers with, at the
statuses it answers them, and docs/openapi.yaml and README say the same (issue 27 item 1)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml

from rotation.error_codes import CODES, ROUTES, STATUS
from tests import error_codes_doc

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
#: The calls that make a problem answer: problem(status, code, ...) and Refusal(status, code,
#: ...) with the status first; ProblemDetail.of(code, ...) with the code first.
MAKERS = {"problem": 0, "Refusal": 0, "of": None}


def uses() -> list[tuple[str, int | None, str]]:
    """(code, status or None, where) for every literal code given to a maker of problems."""
    found = []
    for path in sorted((ROOT / "rotation").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in MAKERS or not node.args:
                continue
            args = [a.value if isinstance(a, ast.Constant) else None for a in node.args[:2]]
            status, code = [*args, None][:2] if MAKERS[name] == 0 else (None, args[0])
            if isinstance(code, str) and (MAKERS[name] is None or isinstance(status, int)):
                found.append((code, status, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def test_every_code_the_code_answers_with_is_listed_at_its_status() -> None:
    used = uses()
    assert len(used) >= 30
    wrong = [(c, s, where) for c, s, where in used if c not in STATUS or s not in (None, STATUS[c])]
    assert wrong == []


def test_every_listed_code_is_answered_somewhere() -> None:
    assert set(CODES) == {code for code, _, _ in uses()}
    assert set(CODES) == {code for codes in ROUTES.values() for code in codes}


def responses(route: str) -> dict[str, Any]:
    (operation,) = OPENAPI["paths"][route].values()
    return operation["responses"]  # type: ignore[no-any-return]


def described(response: dict[str, Any]) -> str:
    """A response's description, the shared one it refers to included."""
    if "$ref" in response:
        response = OPENAPI["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return " ".join(str(response["description"]).split())


def test_each_routes_error_statuses_in_the_openapi_doc_are_its_codes_statuses() -> None:
    for route, codes in ROUTES.items():
        documented = {int(s) for s in responses(route) if not s.startswith("2")}
        assert documented == {STATUS[c] for c in codes}, route


def test_each_code_is_named_under_its_status_on_each_route_that_answers_it() -> None:
    for route, codes in ROUTES.items():
        for code in codes:
            assert re.search(rf"\b{code}\b", described(responses(route)[str(STATUS[code])])), (
                route,
                code,
            )


def test_the_openapi_enum_is_the_codes_list() -> None:
    code = OPENAPI["components"]["schemas"]["ProblemDetail"]["properties"]["code"]
    assert code["enum"] == list(CODES)


def test_no_problem_answer_claims_nothing_changed_where_a_409_carries_a_report() -> None:
    problem = OPENAPI["components"]["schemas"]["Problem"]["description"]
    assert "except" in problem
    assert "409 rotation_in_progress" in problem
    assert "nothing was changed" not in described(responses("/rotations")["409"]).lower()


def test_readme_holds_the_generated_error_codes() -> None:
    text = error_codes_doc.README.read_text(encoding="utf-8")
    assert "\n".join(error_codes_doc.table()) in text, "run `make docs`"
