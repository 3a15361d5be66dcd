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
import logging

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from rotation.model import Mode, RunOptions
from sandbox.state import SandboxState
from tests.reliability.evidence import LeakScan, Ledger
from tests.reliability.harness import MakeWorld, function_handlers, load_function_app


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
    report = await world.service.run(RunOptions(mode=Mode.FORCE))
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


class KeepRaw(logging.Handler):
    """Added after the product configured logging, as an exporter would be: it keeps the
    records themselves, not what a formatter made of them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_debug_with_network_trace_on_leaks_nothing_in_any_record(
    make_world: MakeWorld,
    monkeypatch: pytest.MonkeyPatch,
    evidence: LeakScan,
    ledger: Ledger,
) -> None:
    """function_app started with ROTATION_LOG_LEVEL=DEBUG and ROTATION_HTTP_LOGGING=true
    (azure-core's `logging_enable`: every Key Vault, ARM and token request and response,
    headers and bodies): timer rotation, forced and emergency rotations, status. Every
    record, rendered and raw, is searched for every sender password, the rotator's own
    client secret and every access token the sandbox issued (plain and base64)."""
    world = make_world(2, log_level="DEBUG", http_logging="true")
    module = load_function_app(monkeypatch, world)  # the edge configures logging at DEBUG
    raw = KeepRaw()
    logging.getLogger().addHandler(raw)
    handlers = function_handlers(module)
    one = world.senders[0].app_id
    try:
        await handlers["rotation_timer"](TimerRequest())
        for body in ({"appIds": [one], "mode": "force"}, {"appIds": [one], "mode": "emergency"}):
            request = func.HttpRequest(
                "POST", "/api/rotations", body=json.dumps(body).encode(), headers=world.auth
            )
            response = await handlers["rotations"](request)
            assert response.status_code == 200, response.get_body()
            evidence.add("HTTP answer", response.get_body().decode())
        status = await handlers["status"](
            func.HttpRequest("GET", "/api/status", body=b"", headers=world.auth)
        )
        evidence.add("HTTP answer", status.get_body().decode())
    finally:
        logging.getLogger().removeHandler(raw)
        await module.api.close()

    traced = [r for r in raw.records if r.name == "azure.core.pipeline.policies._universal"]
    requests = [r.getMessage() for r in traced if "Request headers:" in r.getMessage()]
    assert any("'Authorization': '[REDACTED]'" in text for text in requests), "no trace ran"
    assert any("Request body:" in text and "/secrets/" in text for text in requests)
    assert any(r.name.startswith("azure.identity") for r in raw.records)
    for token in world.state.tokens:
        evidence.add_secret(token)
    for record in raw.records:
        evidence.add(f"raw record {record.name}", repr(vars(record)))
    leaks = evidence.scan()
    ledger.record(
        "secret-leak scan at DEBUG with azure-core network tracing on (every record)",
        f"function_app at ROTATION_LOG_LEVEL=DEBUG, ROTATION_HTTP_LOGGING=true: timer, force "
        f"and emergency rotations, status; {len(raw.records)} raw records ({len(traced)} "
        "network-trace records with headers and bodies) kept by a handler added after "
        "start-up, plus the rendered log; searched for sender passwords, the rotator's "
        f"client secret and {len(world.state.tokens)} access tokens (and the operator's token "
        "for the API, among the issued secrets), plain and base64",
        f"{len(leaks)} hits; Authorization headers, tokens and Key Vault bodies show [REDACTED]",
        ok=not leaks,
    )
