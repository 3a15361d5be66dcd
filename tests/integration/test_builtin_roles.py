"""Discovery and the relay against the published built-in role definitions (sandbox.builtin_roles):
who may send, and so who is rotated, follows the real actions and notActions."""

from __future__ import annotations

import pytest

from rotation.service import RotationService
from sandbox.server import Sandbox

SENDING_ROLES = ["Owner", "Contributor", "Communication and Email Service Owner"]


@pytest.mark.parametrize("role", SENDING_ROLES)
async def test_holders_of_a_sending_role_are_discovered_and_pass_smtp_auth(
    sandbox: Sandbox, service: RotationService, role: str
) -> None:
    sender = sandbox.add_sender(role=role)
    assert sandbox.state.smtp_login(sender.username, sender.password.secret_text).ok
    rows = await service.status()
    assert [r.app_id for r in rows] == [sender.app_id]


async def test_a_reader_can_neither_send_nor_is_rotated(
    sandbox: Sandbox, service: RotationService
) -> None:
    sender = sandbox.add_sender(role="Reader")
    assert not sandbox.state.smtp_login(sender.username, sender.password.secret_text).ok
    assert await service.status() == []
