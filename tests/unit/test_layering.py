"""Layering: what is deployed (rotation/) imports nothing that is not (the sandbox, the demo,
bench), and the pure core (discovery, policy, model, ports) imports no adapter and no SDK."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import rotation

NOT_DEPLOYED = ("sandbox", "demo", "bench", "tests")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_rotation_imports_nothing_that_is_not_deployed() -> None:
    package = Path(rotation.__file__).parent
    found = {
        f"{path.name} imports {name}"
        for path in package.rglob("*.py")
        for name in _imported(path)
        if name.split(".")[0] in NOT_DEPLOYED
    }
    assert not found
    assert {"cli.py", "service.py", "engine.py"} <= {p.name for p in package.rglob("*.py")}


PACKAGE = Path(rotation.__file__).parent


def _path(module: str) -> Path:
    """rotation/<module>.py, or the package's __init__.py; `module` is dotted below rotation."""
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _is_package(name: str) -> bool:
    """rotation, or one of its folders (where `from X import y` may import a module y)."""
    return name == "rotation" or (
        name.startswith("rotation.") and PACKAGE.joinpath(*name.split(".")[1:]).is_dir()
    )


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(module: str) -> set[str]:
    """What rotation/<module>.py imports anywhere in the file (inside functions too);
    `from rotation[.pkg] import x` counts as rotation[.pkg].x."""
    source = _path(module).read_text(encoding="utf-8")
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if _is_package(node.module):
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _ours(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith("rotation.")}


def test_redaction_knows_nothing_of_the_logging_set_up() -> None:
    """Secrets are scrubbed by whatever is installed, whether logging was set up or not
    (tests/leaks.py installs only the record scrubber): redaction imports no structlog and
    no other rotation module, and logs.py (the set-up) uses redaction, not the reverse."""
    imported = _imports_of("telemetry.redaction")
    assert not {name for name in imported if name.split(".")[0] == "structlog"}
    assert not _ours(imported)
    assert _ours(_imports_of("telemetry.logs")) == {"rotation.telemetry.redaction"}


def test_logging_is_set_up_in_logs_only() -> None:
    setters = {
        path.name
        for path in PACKAGE.rglob("*.py")
        if "structlog.configure(" in path.read_text(encoding="utf-8")
    }
    assert setters == {"logs.py"}


def test_tls_trust_imports_no_credential_code() -> None:
    """Trust (CA bundle, SSL context, transport) serves every connection; the credential is
    built in identity.py, which asks trust for the CA bundle, never the reverse."""
    imported = _imports_of("azure.trust")
    assert _ours(imported) == {"rotation.settings"}
    assert not {n for n in imported if n.startswith(("azure.identity", "azure.core.credentials"))}
    assert _ours(_imports_of("azure.identity")) == {"rotation.settings", "rotation.azure.trust"}


#: The modules that talk to a service through an SDK (the adapters), and the SDKs themselves.
ADAPTERS = (
    "rotation.azure.acs",
    "rotation.azure.entra",
    "rotation.azure.key_vault",
    "rotation.azure.app_service",
    "rotation.azure.blob_lease",
    "rotation.azure.smtp",
    "rotation.azure.identity",
    "rotation.azure.trust",
    "rotation.azure.errors",
)
SDKS = ("azure", "msgraph", "msgraph_core", "kiota_abstractions", "aiosmtplib", "httpx", "aiohttp")


def _reaches_out(name: str) -> bool:
    return name.split(".")[0] in SDKS or any(
        name == adapter or name.startswith(adapter + ".") for adapter in ADAPTERS
    )


@pytest.mark.parametrize("module", ["run.discovery", "core.policy", "model", "core.ports"])
def test_the_pure_core_imports_no_adapter_and_no_sdk(module: str) -> None:
    """Discovery reads ARM through the AcsReader port (rotation/core/ports.py) and ARM's data
    types from rotation/model.py: it runs on fakes, and the adapters can change alone."""
    assert sorted(name for name in _imports_of(module) if _reaches_out(name)) == []


def _known(name: str, modules: set[str]) -> str:
    """The module of rotation that `name` (rotation.x.y, maybe a name inside a module) is."""
    parts = name.split(".")[1:]
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (module -> modules it imports), or [] when it has none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


def test_no_module_of_rotation_imports_itself_back() -> None:
    """Lazy and type-only imports count too: doctor, doctor_checks and doctor_apps once
    imported each other; what they share now lives in doctor_types.py."""
    modules = {_module(path) for path in PACKAGE.rglob("*.py")} - {""}
    graph = {
        module: {_known(name, modules) for name in _ours(_imports_of(module))} - {module, ""}
        for module in modules
    }
    assert _cycle(graph) == []
    assert sorted(set(_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}))) == ["a", "b", "c"]
