"""docs/deploy.md's statements about what provisioning does, read against infra/ (issue 27
item 1): every azd variable its Configuration table names feeds a parameter (or a hook), with
the default the doc gives; every default it states in prose ("by default (`VAR=value`)") is
the parameter's; every `VAR=value` it quotes is a value the parameter takes; and the settings
the deployment sets itself are the ones main.bicep hard-codes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rotation.doctor import shared
from rotation.settings import ENV_PREFIX, Settings
from tests.infra import bicep

DOC = (bicep.ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
#: Variables read by a hook rather than a parameter (infra/scripts/postprovision.*).
HOOK_VARIABLES = {"ACS_APP_IDS": bicep.INFRA / "scripts" / "postprovision.sh"}
#: What the doc writes for "empty: nothing given, the product or template decides".
EMPTY = re.compile(r"^\(.*\)$|^this subscription$")


def variables() -> dict[str, tuple[str, str | None]]:
    """azd variable -> (its parameter in main.bicep, the default main.parameters.json gives)."""
    found = {}
    for name, entry in bicep.parameter_file()["parameters"].items():
        variable, default = bicep.azd_value(entry["value"])
        if variable:
            found[variable] = (name, default)
    return found


def effective_default(variable: str) -> object:
    """What a deployment that never set `variable` passes: azd's `=default`, else the Bicep
    default; for a ROTATION_* setting left empty, the product's own default."""
    name, azd_default = variables()[variable]
    param = bicep.parameters()[name]
    raw = azd_default if azd_default is not None else param.get("default", "")
    if raw == "" and variable.startswith(ENV_PREFIX):
        field = Settings.model_fields[variable.removeprefix(ENV_PREFIX).lower()]
        return "" if field.default is None or field.default_factory else field.default
    return bicep.convert(param["type"], str(raw)) if isinstance(raw, str) else raw


def table_rows() -> list[tuple[list[str], list[str]]]:
    """The Configuration table: (its variables, the defaults it gives them)."""
    section = DOC.split("## Configuration", 1)[1].split("\n\n")
    (table,) = [block for block in section if block.startswith("| azd environment variable")]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(", ")] if len(names) > 1 else [cells[1]]
        defaults = defaults * len(names) if len(defaults) == 1 else defaults  # one for all
        rows.append((names, defaults))
    return rows


def doc_value(text: str) -> str:
    """`x` (words in parentheses) -> x."""
    if text == "(off)":
        return "false"
    return re.sub(r"\s*\(.*\)$", "", text).strip("`") if not EMPTY.match(text) else ""


def same(stated: str, actual: object) -> bool:
    if isinstance(actual, bool):
        return stated.lower() == str(actual).lower()
    if isinstance(actual, int | float):
        try:
            return float(stated) == float(actual)
        except ValueError:
            return False
    return stated == str(actual)


def test_the_table_names_every_parameter_a_user_sets() -> None:
    named = {v for names, _ in table_rows() for v in names}
    internal = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_RESOURCE_GROUP"}
    # Two of the API's are documented with the API ("An existing API registration").
    documented_elsewhere = {"EXISTING_API_CLIENT_ID", "EXISTING_API_APP_ID_URI", "API_OPERATORS"}
    missing = set(variables()) - named - internal - documented_elsewhere
    assert missing == set()
    for name in documented_elsewhere:
        assert f"`{name}`" in DOC, name


@pytest.mark.parametrize(("names", "defaults"), table_rows(), ids=lambda v: str(v))
def test_each_table_row_names_real_variables_with_their_defaults(
    names: list[str], defaults: list[str]
) -> None:
    assert len(defaults) == len(names), names
    for name, stated in zip(names, defaults, strict=True):
        if name in HOOK_VARIABLES:
            assert name in HOOK_VARIABLES[name].read_text(encoding="utf-8")
            continue
        assert name in variables(), f"{name} feeds no parameter of main.bicep"
        assert same(doc_value(stated), effective_default(name)), (name, stated)


def quoted() -> list[tuple[str, str, str]]:
    """(variable, value, the sentence around it) for every `VAR=value` the doc quotes."""
    found = []
    for match in re.finditer(r"`([A-Z][A-Z0-9_]+)=([^`]+)`", DOC):
        start = DOC.rfind(".", 0, match.start()) + 1
        found.append((match[1], match[2], DOC[start : match.end() + 40]))
    return found


def test_every_default_the_prose_states_is_the_parameters() -> None:
    stated = [(v, value) for v, value, around in quoted() if re.search(r"default", around, re.I)]
    assert ("GRANT_GRAPH_PERMISSION", "false") in stated
    for variable, value in stated:
        if variable in variables():
            assert same(value, effective_default(variable)), variable


def test_every_quoted_value_of_a_parameter_is_one_it_takes() -> None:
    for variable, value, _ in quoted():
        if variable not in variables():
            continue
        param: dict[str, Any] = bicep.parameters()[variables()[variable][0]]
        converted = bicep.convert(param["type"], value)  # raises for a bool or int it is not
        allowed = bicep.decorator(param, "allowed")
        assert allowed is None or converted in allowed, (variable, value)


def test_the_graph_permission_is_granted_only_when_asked() -> None:
    """Issue 27: the doc said provisioning grants it; grantGraphPermission defaults false."""
    assert effective_default("GRANT_GRAPH_PERMISSION") is False
    provision = DOC.split("1. **provision**", 1)[1].split("2. **", 1)[0]
    assert "Graph permission" in provision
    assert "only with `GRANT_GRAPH_PERMISSION=true`" in provision


def test_the_settings_the_deployment_sets_itself_are_those_main_bicep_hard_codes() -> None:
    """Every ROTATION_* app setting no parameter feeds is named in "The deployment sets these
    settings itself", and nothing else is named there."""
    fed = {v for v in variables() if v.startswith(ENV_PREFIX)}
    hard_coded = set(bicep.app_settings()) - fed
    paragraph = DOC.split("The deployment sets these settings itself", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`(ROTATION_[A-Z_]+)", paragraph))
    assert named - UNSET == hard_coded


#: Settings the deployment neither passes nor sets (the paragraph above says why).
UNSET = {"ROTATION_LEASE_SECONDS", "ROTATION_CA_BUNDLE"}


def test_every_setting_is_a_parameter_or_set_by_the_deployment_or_said_to_be_neither() -> None:
    """Issue 27 item 4: what a user may set survives `azd provision` only as a parameter
    (ROTATION_GRAPH_URL for DoD tenants was set on the app, and lost at the next provision)."""
    every = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    fed = {v for v in variables() if v.startswith(ENV_PREFIX)}
    assert every - fed - set(bicep.app_settings()) == UNSET
    for name in UNSET:
        assert f"`{name}`" in DOC.split("The deployment sets these settings itself", 1)[1]


def test_what_the_docs_tell_a_user_to_set_is_a_parameter() -> None:
    """Every ROTATION_* the README or deploy.md says to set (`azd env set`, or "set X") is
    one azd passes."""
    readme = (bicep.ROOT / "README.md").read_text(encoding="utf-8")
    told = set(re.findall(r"(?:azd env set|[Ss]et) `?(ROTATION_[A-Z_]+)", DOC + readme))
    assert "ROTATION_GRAPH_URL" in told
    assert told - set(variables()) == set()


def test_doctor_tells_how_azd_sets_each_setting() -> None:
    """doctor's fix line says `azd env set <variable>` and `azd provision`: its three lists
    (set by the deployment, under another variable's name, not from azd at all) are main.bicep's."""
    fed = {v for v in variables() if v.startswith(ENV_PREFIX)}
    settings = bicep.app_settings()
    assert set(settings) - fed == shared.SET_BY_AZD
    assert shared.NOT_FROM_AZD == UNSET
    for setting, variable in shared.AZD_VARIABLE.items():
        assert setting in shared.SET_BY_AZD
        parameter = variables()[variable][0]
        expression = settings[setting]
        if isinstance(expression, str):  # a variable of main.bicep
            expression = bicep.variable(bicep.MAIN, expression)
        assert f"'{parameter}'" in repr(expression), (setting, variable, expression)
