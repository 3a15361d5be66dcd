"""Microsoft's published resource provider operations, as the sandbox's Resource Manager
knows them: excerpts vendored under tests/operations/ (each file names its source and the
date it was read), shared with the test that checks every action infra/ and the code name.

Azure refuses a custom role definition that names an action no provider registered, with
400 ``InvalidActionOrNotAction``: "'<action>' does not match any of the actions supported by
the providers." (the message quoted in MicrosoftDocs/azure-docs#102571 and
LeanerCloud/CUDly#1794), or, for a namespace it does not know, "The resource provider
referenced in the action is not returned in the list of providers from Azure Resource
Manager." (Azure/azure-powershell#9800). A wildcard passes when it matches some registered
operation, and then covers unregistered ones at evaluation too. The sandbox knows only
the vendored providers and, where a file is an excerpt, only the operations in it: it
refuses the rest, the stricter of the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parents[1] / "tests" / "operations"
NOT_REGISTERED = "'{action}' does not match any of the actions supported by the providers."
UNKNOWN_PROVIDER = (
    "The resource provider referenced in the action is not returned in the list of "
    "providers from Azure Resource Manager."
)


@dataclass(frozen=True)
class Operations:
    """Registered operations, lower-case: management actions and data actions apart."""

    actions: frozenset[str]
    data_actions: frozenset[str]

    @property
    def providers(self) -> frozenset[str]:
        return frozenset(o.split("/", 1)[0] for o in self.actions | self.data_actions)

    def refusal(self, pattern: str, *, data: bool = False) -> str | None:
        """Azure's message refusing `pattern` in a role definition, or None if it passes."""
        wanted = pattern.strip().lower()
        provider = wanted.split("/", 1)[0]
        if "*" not in provider and provider not in self.providers:
            return UNKNOWN_PROVIDER
        known = self.data_actions if data else self.actions
        if "*" in wanted:
            matcher = re.compile(".*".join(re.escape(p) for p in wanted.split("*")))
            matched = any(matcher.fullmatch(o) for o in known)
        else:
            matched = wanted in known
        return None if matched else NOT_REGISTERED.format(action=pattern)


@cache
def published() -> Operations:
    """Every vendored list, read once."""
    actions: set[str] = set()
    data_actions: set[str] = set()
    for path in sorted(DIRECTORY.glob("*.txt")):
        section = None
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line in ("[actions]", "[dataActions]"):
                section = line
                continue
            if section is None:
                raise ValueError(f"{path.name}: an operation before [actions] or [dataActions]")
            (data_actions if section == "[dataActions]" else actions).add(line.lower())
    return Operations(frozenset(actions), frozenset(data_actions))
