"""Key Vault does not fill its pages: a recorded deleted-secrets listing had two empty pages
with a next link, then four items, two, and an empty last page (vault_api._window names the
recording; the sandbox replays it with ``state.vault_page_sizes``). The rotator must follow
every next link, never stop at a short or empty page.
"""

from __future__ import annotations

from datetime import timedelta

from rotation.model import Outcome
from rotation.service import RotationService
from sandbox.server import Sandbox

ADD_PASSWORD = "graph POST /applications/{id}/addPassword"


async def test_a_deleted_name_behind_empty_pages_still_blocks_its_app(
    sandbox: Sandbox, service: RotationService
) -> None:
    senders = [sandbox.add_sender(lifetime=timedelta(days=10)) for _ in range(3)]
    for sender in senders[:2]:
        sandbox.state.soft_delete_secret(service.settings.secret_name(sender.app_id))
    sandbox.state.vault_page_sizes = (0, 0, 1, 0, 1, 0)

    report = await service.run()

    outcomes = {o.app_id: o.outcome for o in report.outcomes}
    assert outcomes == {
        senders[0].app_id: Outcome.BLOCKED,
        senders[1].app_id: Outcome.BLOCKED,
        senders[2].app_id: Outcome.ROTATED,
    }
    assert sandbox.state.requests["vault GET /deletedsecrets"] == 6


async def test_secrets_listed_behind_empty_pages_are_not_rotated_again(
    sandbox: Sandbox, service: RotationService
) -> None:
    senders = [sandbox.add_sender(lifetime=timedelta(days=10)) for _ in range(3)]
    await service.run()
    added = sandbox.state.requests[ADD_PASSWORD]
    sandbox.state.vault_page_sizes = (0, 2, 0, 0, 4, 0)  # six secrets: three and companions
    sandbox.state.requests.clear()

    report = await service.run()

    assert sandbox.state.requests[ADD_PASSWORD] == 0, "a secret behind an empty page was missed"
    assert added == len(senders)
    assert {o.outcome for o in report.outcomes} <= {Outcome.UNCHANGED, Outcome.RETIRED}
    assert sandbox.state.requests["vault GET /secrets"] == 6
