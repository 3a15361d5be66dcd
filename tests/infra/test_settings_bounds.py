"""Each infra parameter that feeds a ROTATION_* setting accepts exactly what the setting
accepts (rotation/settings.py), so no value the product takes fails the deploy and no value
the deploy takes is a surprise: an int setting is an int parameter with the same bounds;
any other setting (fractions, which Bicep cannot type, or fixed words) is a plain string
that the app itself validates at start-up, naming it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from rotation.settings import Settings
from tests import settings_doc
from tests.infra import bicep

#: The strings pydantic reads as a boolean (pydantic docs, "Standard Library Types": bool).
BOOLEAN_WORDS = ["0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"]
CHECKS = ("allowed", "min_value", "max_value", "min_length", "max_length")


def setting_parameters() -> dict[str, tuple[str, dict[str, Any]]]:
    """Settings field -> (its parameter in main.bicep, that parameter), through the azd
    variable of the same name in main.parameters.json."""
    declared = bicep.parameters()
    found = {}
    for name, entry in bicep.parameter_file()["parameters"].items():
        variable, _ = bicep.azd_value(entry["value"])
        if variable and variable.startswith("ROTATION_"):
            found[variable.removeprefix("ROTATION_").lower()] = (name, declared[name])
    return found


def expected_checks(field: str) -> dict[str, object]:
    """The decorators the parameter of this setting must carry, and nothing else."""
    info = Settings.model_fields[field]
    limits = settings_doc.bounds(info)
    if settings_doc.kind(info) is not int or limits is None:
        return {}
    assert limits.low is not None
    assert limits.high is not None
    low = math.floor(limits.low) + 1 if limits.low_open else math.ceil(limits.low)
    return {"min_value": low, "max_value": math.floor(limits.high)}


def test_every_setting_parameter_is_known() -> None:
    assert set(setting_parameters()) <= set(Settings.model_fields)
    assert len(setting_parameters()) >= 15


@pytest.mark.parametrize("field", sorted(setting_parameters()))
def test_a_parameter_accepts_what_its_setting_accepts(field: str) -> None:
    name, param = setting_parameters()[field]
    kind = settings_doc.kind(Settings.model_fields[field])

    assert param["type"] == ("int" if kind is int else "string"), name
    checks = {k: bicep.decorator(param, k) for k in CHECKS if bicep.decorator(param, k) is not None}
    assert checks == expected_checks(field), name


def test_the_consumer_role_follows_the_words_the_app_reads_as_true() -> None:
    """ROTATION_CONSUMERS_ENABLED=yes turns consumer checks on in the app: the template must
    then grant the consumer checker role, or every site would be unreachable."""
    words = bicep.variable(bicep.MAIN, "trueWords")
    check = bicep.variable(bicep.MAIN, "checkConsumers")["function"]
    as_bool = TypeAdapter(bool)

    assert check["type"] == "contains"
    assert check["parameters"]["container"] == "trueWords"
    lowered = check["parameters"]["item_to_find"]["function"]
    assert lowered == {
        "type": "to_lower",
        "parameters": {"string_to_change": "consumersEnabled"},
    }
    for word in BOOLEAN_WORDS:
        for spelled in (word, word.upper(), word.capitalize()):
            assert as_bool.validate_python(spelled) is (spelled.lower() in words), spelled
    with pytest.raises(ValidationError):
        as_bool.validate_python("enabled")  # the list above is all pydantic reads as a bool
