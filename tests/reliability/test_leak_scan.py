"""The leak scan itself (I6): it finds what it looks for, and it looks at the real output.

Every reliability test ends with a scan (tests/reliability/conftest.py) of its captured
log lines, raw log records, HTTP answers, reports and exception texts for every secret
its sandboxes issued; the session ends with one more scan of all of it. These tests show
that the scanner finds a planted secret in either form, and that the capture it scans is
the product's own rendered log of a real rotation.
"""

from __future__ import annotations

import base64
import json

from rotation.model import Mode
from sandbox.state import SandboxState
from tests.reliability.evidence import LeakScan
from tests.reliability.harness import MakeWorld


def test_the_scan_finds_plain_and_base64_secrets_and_shows_only_a_hint() -> None:
    state = SandboxState()
    app = state.add_application(state.add_tenant(), "app")
    secret = state.add_password(app).secret_text
    scan = LeakScan()
    scan.watch(state)
    scan.add("clean", "nothing to see")
    scan.add("log line", f'{{"event": "oops", "detail": "x{secret}y"}}')
    scan.add("AUTH echo", "334 " + base64.b64encode(secret.encode()).decode())
    later = state.add_password(app).secret_text  # issued after watch() began: still found
    scan.add("report", {"error": later})

    leaks = scan.scan()

    assert sorted((leak.source, leak.form) for leak in leaks) == [
        ("AUTH echo", "base64"),
        ("log line", "plain"),
        ("report", "plain"),
    ]
    assert all(secret not in str(leak) and later not in str(leak) for leak in leaks)


async def test_the_capture_is_the_products_own_log_of_a_real_rotation(
    make_world: MakeWorld, evidence: LeakScan
) -> None:
    world = make_world(1)
    report = await world.service.run(mode=Mode.FORCE)
    assert evidence.capture is not None
    lines = [json.loads(line) for line in evidence.capture.getvalue().splitlines() if line]
    events = {line["event"] for line in lines}
    assert {"credential.created", "smtp.verified", "vault.promoted"} <= events
    created = next(line for line in lines if line["event"] == "credential.created")
    assert created["key_id"] == report.outcomes[0].new_key_id
    # The secret that run created was issued by the sandbox, so the scan after this test
    # looks for it in these very lines (and finds nothing).
    live = world.live(world.senders[0])
    assert live is not None
    assert live.value in world.state.issued_secrets
