"""Layering, read from the folders of rotation/ (design.md, "Parts"):

- the shared vocabulary (settings, model, errors, resource_ids, permissions, ncrontab,
  error_codes) and telemetry/
  sit at the bottom;
- core/ is pure: it imports only the vocabulary, and no SDK;
- run/ imports core/, the vocabulary and telemetry/, never an adapter or an SDK;
- azure/ (the adapters) never imports run/ or a surface;
- only the surfaces (the top-level modules that are not vocabulary, and doctor/) import adapters;
- SDKs are imported in azure/ only (with the exception named in SDK_ELSEWHERE);
- nothing deployed imports what is not (sandbox, demo, bench, tests), and no module imports
  itself back through others.

A module's layer is its folder, so a new module obeys the rules of the folder it lands in.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import rotation

PACKAGE = Path(rotation.__file__).parent
NOT_DEPLOYED = ("sandbox", "demo", "bench", "tests")
VOCABULARY = frozenset(
    {"settings", "model", "errors", "resource_ids", "permissions", "ncrontab", "error_codes"}
)
SDKS = frozenset(
    {"azure", "msgraph", "msgraph_core", "kiota_abstractions", "kiota_http", "aiosmtplib", "httpx"}
    | {"aiohttp"}
)
#: Layer -> the layers it may import (its own included).
ALLOWED = {
    "telemetry": {"telemetry"},
    "vocabulary": {"vocabulary", "telemetry"},
    "core": {"core", "vocabulary"},
    "run": {"run", "core", "vocabulary", "telemetry"},
    "azure": {"azure", "core", "vocabulary", "telemetry"},
    "surface": {"surface", "doctor", "azure", "run", "core", "vocabulary", "telemetry"},
    "doctor": {"doctor", "surface", "azure", "run", "core", "vocabulary", "telemetry"},
}
#: SDK imports outside azure/, and why they are allowed.
SDK_ELSEWHERE = {
    # azure.mgmt.core.tools parses resource ids: pure string work, no client, no I/O.
    "resource_ids": {"azure.mgmt.core", "azure.mgmt.core.tools"},
}


def _module(path: Path) -> str:
    """rotation/a/b.py -> "a.b"; a package's __init__.py -> its folder's dotted name."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(path): path for path in PACKAGE.rglob("*.py")}
MODULES.pop("", None)  # rotation/__init__.py itself


def layer(module: str) -> str:
    top = module.split(".")[0]
    if top in {"core", "run", "azure", "telemetry", "doctor"}:
        return top
    return "vocabulary" if top in VOCABULARY else "surface"


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (inside functions and under
    TYPE_CHECKING too). `from rotation.pkg import x` counts as rotation.pkg.x when x is a
    module of that folder."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                if _ours(inner) in MODULES:
                    names.add(inner)
    return names


def _ours(name: str) -> str | None:
    """The module of rotation that `name` is (or is inside), or None for anything else."""
    if not name.startswith("rotation."):
        return None
    parts = name.split(".")[1:]
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or None


IMPORTS = {module: _imports(path) for module, path in MODULES.items()}


def test_the_folders_are_the_layers() -> None:
    assert {layer(m) for m in MODULES} == set(ALLOWED)
    assert {"core.policy", "run.engine", "azure.entra", "telemetry.logs", "service"} <= set(MODULES)


def wrong_layer(module: str, names: set[str]) -> set[str]:
    """What `module` imports from a layer its own may not import."""
    return {
        f"{name} ({layer(target)})"
        for name in names
        if (target := _ours(name)) and layer(target) not in ALLOWED[layer(module)]
    }


def wrong_sdk(module: str, names: set[str]) -> set[str]:
    """The SDKs `module` imports although it is not an adapter."""
    if layer(module) == "azure":
        return set()
    return {n for n in names if n.split(".")[0] in SDKS} - SDK_ELSEWHERE.get(module, set())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_what_its_layer_may(module: str) -> None:
    assert wrong_layer(module, IMPORTS[module]) == set(), ALLOWED[layer(module)]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_sdks_are_imported_by_the_adapters_only(module: str) -> None:
    assert wrong_sdk(module, IMPORTS[module]) == set()


def test_rotation_imports_nothing_that_is_not_deployed() -> None:
    found = {
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        for name in names
        if name.split(".")[0] in NOT_DEPLOYED
    }
    assert found == set()


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("run.engine", "rotation.azure.key_vault"),  # run -> adapter
        ("core.policy", "rotation.telemetry.logs"),  # the pure core logging
        ("azure.entra", "rotation.run.discovery"),  # adapter -> run
        ("settings", "rotation.core.policy"),  # vocabulary -> core
        ("telemetry.logs", "rotation.settings"),  # telemetry -> vocabulary
        ("azure.smtp", "rotation.service"),  # adapter -> surface
    ],
)
def test_the_layer_rule_catches_a_wrong_import(module: str, imported: str) -> None:
    assert wrong_layer(module, {imported}) != set()


def test_the_sdk_rule_catches_an_sdk_outside_the_adapters() -> None:
    assert wrong_sdk("run.discovery", {"azure.mgmt.communication.aio"}) != set()
    assert wrong_sdk("core.policy", {"httpx"}) != set()
    assert wrong_sdk("azure.acs", {"azure.mgmt.communication.aio"}) == set()


def test_redaction_knows_nothing_of_the_logging_set_up() -> None:
    """Secrets are scrubbed by whatever is installed, whether logging was set up or not
    (tests/leaks.py installs only the record scrubber): redaction imports no structlog and
    no other rotation module, and logs.py (the set-up) uses redaction, not the reverse."""
    imported = IMPORTS["telemetry.redaction"]
    assert not {name for name in imported if name.split(".")[0] == "structlog"}
    assert not {_ours(name) for name in imported} - {None}
    assert {_ours(name) for name in IMPORTS["telemetry.logs"]} - {None} == {"telemetry.redaction"}


def test_logging_is_set_up_in_logs_only() -> None:
    setters = {m for m, path in MODULES.items() if "structlog.configure(" in path.read_text()}
    assert setters == {"telemetry.logs"}


def test_tls_trust_imports_no_credential_code() -> None:
    """Trust (CA bundle, SSL context, transport) serves every connection; the credential is
    built in identity.py, which asks trust for the CA bundle, never the reverse."""
    imported = IMPORTS["azure.trust"]
    assert {_ours(name) for name in imported} - {None} == {"settings"}
    assert not {n for n in imported if n.startswith(("azure.identity", "azure.core.credentials"))}
    assert {_ours(n) for n in IMPORTS["azure.identity"]} - {None} == {"settings", "azure.trust"}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (module -> modules it imports), or [] when it has none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


def test_no_module_of_rotation_imports_itself_back() -> None:
    """Lazy and type-only imports count too: doctor, doctor_checks and doctor_apps once
    imported each other; what they share now lives in doctor/shared.py. A package's
    __init__ counts as imported by its modules only through an explicit import."""
    graph = {
        module: {t for name in names if (t := _ours(name))} - {module}
        for module, names in IMPORTS.items()
    }
    assert _cycle(graph) == []
    assert sorted(set(_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}))) == ["a", "b", "c"]
