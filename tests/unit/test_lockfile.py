"""The locks agree with pyproject.toml, pin everything with hashes, and are what runs here.

What the Function App deploys (requirements.txt) must be exactly what the tests ran with:
every package pinned, each with its files' hashes (so the platform's pip checks them), made
from pyproject.toml's dependencies (tests/lockfile.py). These tests fail when a dependency
is added, removed or re-pinned in pyproject.toml without writing the locks again.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import lockfile

PYPROJECT = tomllib.loads((lockfile.ROOT / "pyproject.toml").read_text())["project"]


@dataclass
class Pin:
    name: str
    version: str
    marker: Marker | None
    hashes: list[str] = field(default_factory=list)

    def applies(self) -> bool:
        return self.marker is None or self.marker.evaluate()


def pins(path: Path) -> dict[str, Pin]:
    """The lock's packages: `name==version [; marker] \\` lines, each followed by its hashes."""
    found: dict[str, Pin] = {}
    current: Pin | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip().removesuffix("\\").strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            assert current is not None, f"{path.name}: a hash before any package"
            current.hashes.append(line.removeprefix("--hash="))
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {line} is not pinned with =="
        current = Pin(canonicalize_name(requirement.name), spec.version, requirement.marker)
        assert current.name not in found, f"{path.name}: {current.name} twice"
        found[current.name] = current
    return found


RUNTIME = pins(lockfile.RUNTIME)
DEV = pins(lockfile.DEV)


def declared(group: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, group)}


def closure(roots: dict[str, Requirement]) -> set[str]:
    """Every package the roots pull in here, read from the installed packages' metadata
    (make installs exactly the locks, so a package pyproject.toml names that no lock has is
    also not installed: reported as missing)."""
    seen: set[str] = set()
    todo = [r for r in roots.values() if r.marker is None or r.marker.evaluate()]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed: write the locks ({lockfile.COMMAND})")
        for text in requires:
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in extras
            ):
                todo.append(dependency)
    return seen


def test_every_locked_package_is_pinned_with_its_hashes() -> None:
    for path, locked in ((lockfile.RUNTIME, RUNTIME), (lockfile.DEV, DEV)):
        unhashed = [p.name for p in locked.values() if not p.hashes]
        assert unhashed == [], f"{path.name}: no --hash for {unhashed}"
        assert all(h.startswith("sha256:") for p in locked.values() for h in p.hashes)


def test_each_dependency_of_pyproject_is_locked_at_a_version_it_allows() -> None:
    groups = (
        (lockfile.RUNTIME, RUNTIME, declared(PYPROJECT["dependencies"])),
        (lockfile.DEV, DEV, declared(PYPROJECT["optional-dependencies"]["dev"])),
    )
    for path, locked, wanted in groups:
        for name, requirement in wanted.items():
            assert name in locked, f"{name} is missing from {path.name}: {lockfile.COMMAND}"
            assert requirement.specifier.contains(locked[name].version, prereleases=True), (
                f"{path.name} pins {name}=={locked[name].version}, pyproject.toml asks "
                f"{requirement}: {lockfile.COMMAND}"
            )


def test_the_runtime_lock_holds_exactly_what_its_dependencies_pull_in() -> None:
    """A package dropped from pyproject.toml (or from a dependency's own requirements) and
    still locked, or pulled in but not locked, both fail."""
    wanted = closure(declared(PYPROJECT["dependencies"]))
    locked = {name for name, pin in RUNTIME.items() if pin.applies()}
    assert locked - wanted == set(), f"locked but not needed: {lockfile.COMMAND}"
    assert wanted - locked == set(), f"needed but not locked: {lockfile.COMMAND}"


def test_the_dev_lock_deploys_the_same_versions_as_the_runtime_lock() -> None:
    """make installs both; what the tests run with is then what the app deploys."""
    differ = {
        name: (pin.version, DEV[name].version if name in DEV else None)
        for name, pin in RUNTIME.items()
        if name not in DEV or DEV[name].version != pin.version or DEV[name].hashes != pin.hashes
    }
    assert differ == {}


def test_what_is_installed_here_is_what_is_locked() -> None:
    stale = {
        name: (pin.version, importlib.metadata.version(name))
        for name, pin in {**RUNTIME, **DEV}.items()
        if pin.applies() and importlib.metadata.version(name) != pin.version
    }
    assert stale == {}, "run make again: the environment is not the lock"


def test_the_locks_name_the_command_that_writes_them() -> None:
    for path in (lockfile.RUNTIME, lockfile.DEV):
        head = path.read_text().splitlines()[:2]
        assert head == [
            "# This file was autogenerated by uv via the following command:",
            f"#    {lockfile.COMMAND}",
        ]


@pytest.mark.parametrize(
    ("change", "test"),
    [
        # a new dependency nobody locked
        (lambda p: p["dependencies"].append("tomli-w==1.2.0"), "pyproject"),
        # a pin moved in pyproject.toml only
        (
            lambda p: p.__setitem__(
                "dependencies",
                [d.replace("structlog==26.1.0", "structlog==25.1.0") for d in p["dependencies"]],
            ),
            "pyproject",
        ),
        # a dependency dropped from pyproject.toml but still locked
        (
            lambda p: p.__setitem__(
                "dependencies", [d for d in p["dependencies"] if not d.startswith("rich==")]
            ),
            "closure",
        ),
    ],
)
def test_the_checks_fail_when_pyproject_moves_alone(
    monkeypatch: pytest.MonkeyPatch, change: object, test: str
) -> None:
    edited = {**PYPROJECT, "dependencies": list(PYPROJECT["dependencies"])}
    change(edited)  # type: ignore[operator]
    monkeypatch.setitem(globals(), "PYPROJECT", edited)
    check = {
        "pyproject": test_each_dependency_of_pyproject_is_locked_at_a_version_it_allows,
        "closure": test_the_runtime_lock_holds_exactly_what_its_dependencies_pull_in,
    }[test]
    with pytest.raises(AssertionError):
        check()
