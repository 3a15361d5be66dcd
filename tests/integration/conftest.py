"""The real RotationService pointed at a fresh sandbox, with quick SMTP retry pacing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from azure.core.credentials_async import AsyncTokenCredential

from rotation.azure.clients import Overrides
from rotation.azure.identity import build_credential
from rotation.azure.key_vault import VaultAdapter
from rotation.azure.smtp import Backoff
from rotation.core.ports import Leases, Verifier
from rotation.service import RotationService
from rotation.settings import Settings, load_settings
from sandbox.server import Sandbox

FAST = Backoff(initial=0.05, max=0.2, jitter=0.02)
#: azure-core's back-off, shortened: a test of a refusal or a throttle does not wait seconds.
FAST_RETRY = {"retry_total": 3, "retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}

OpenService = Callable[..., RotationService]


@pytest.fixture
def open_service(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> OpenService:
    """Builds a RotationService for `sandbox` with setting changes (e.g. grace_hours=0) and
    the test's own ports (`leases=`, `verifier=`) put in through the composition root."""

    def make(
        *, leases: Leases | None = None, verifier: Verifier | None = None, **changes: object
    ) -> RotationService:
        env = sandbox.env(**changes)
        for key, value in env.items():
            monkeypatch.setenv(key, value)  # DefaultAzureCredential reads AZURE_* here
        overrides = Overrides(verifier=verifier, leases=leases, backoff=FAST)
        return RotationService.open(
            load_settings(env), clock=sandbox.state.clock.now, overrides=overrides
        )

    return make


@pytest.fixture
async def service(open_service: OpenService) -> AsyncIterator[RotationService]:
    async with open_service() as svc:
        yield svc


@pytest.fixture
async def credential(
    sandbox: Sandbox, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncTokenCredential]:
    """DefaultAzureCredential as the Function App builds it (EnvironmentCredential here)."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)  # DefaultAzureCredential reads AZURE_* here
    cred = build_credential(settings)
    yield cred
    await cred.close()


@pytest.fixture
async def vault(
    settings: Settings, credential: AsyncTokenCredential
) -> AsyncIterator[VaultAdapter]:
    """The Key Vault adapter as the service builds it, on the sandbox's vault."""
    adapter = VaultAdapter.from_settings(settings, credential, retry=FAST_RETRY)
    yield adapter
    await adapter.close()
