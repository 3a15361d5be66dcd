"""The all-apps emergency prompt: going ahead takes typing the number of apps."""

from __future__ import annotations

import asyncio
import builtins
import io
from typing import Any, cast

import pytest

from rotation import cli
from rotation.service import RotationService


class Inventory:
    async def select(self, app_ids: object) -> list[str]:
        return ["a", "b", "c"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("typed", "confirmed"), [("3", True), ("yes", False), ("", False)])
def test_prompt_needs_the_number_of_apps(
    monkeypatch: pytest.MonkeyPatch, typed: str, confirmed: bool
) -> None:
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return typed

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr(builtins, "input", answer)
    service = cast(RotationService, Inventory())
    assert asyncio.run(cli._confirmed_all_apps(service, yes=False)) is confirmed
    assert prompts == ["Type the number of apps (3) to go ahead: "]


def test_yes_flag_confirms_without_a_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_prompt(prompt: str) -> Any:
        raise AssertionError("prompted")

    monkeypatch.setattr(builtins, "input", no_prompt)
    assert asyncio.run(cli._confirmed_all_apps(cast(RotationService, Inventory()), yes=True))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--emergency"], "--app APP_ID"),
        (["run", "--all-apps", "--emergency", "--app", "x"], "exclude each other"),
        (["run", "--all-apps", "--force"], "--emergency only"),
    ],
)
def test_refusals(argv: list[str], needle: str) -> None:
    args = cli.build_parser().parse_args(argv)
    mode = cli.Mode.EMERGENCY if args.emergency else cli.Mode.FORCE
    refusal = cli._emergency_refusal(args, mode)
    assert refusal is not None
    assert needle in refusal


def test_plan_emergency_over_every_app_is_a_dry_run_and_allowed() -> None:
    args = cli.build_parser().parse_args(["plan", "--emergency"])
    assert cli._emergency_refusal(args, cli.Mode.EMERGENCY) is None
