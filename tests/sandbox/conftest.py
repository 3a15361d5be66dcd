"""What the sandbox's own tests share: the SDK's client-secret credential against its Entra."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from sandbox.server import Sandbox


def client_secret_credential(
    sandbox: Sandbox, client_id: str, secret: str
) -> ClientSecretCredential:
    """azure-identity's credential with only the authority and CA trust pointed at `sandbox`."""
    return ClientSecretCredential(
        sandbox.tenant_id,
        client_id,
        secret,
        authority=sandbox.login_url,
        connection_verify=str(sandbox.ca_path),
    )


@pytest.fixture
async def credential(sandbox: Sandbox) -> AsyncIterator[ClientSecretCredential]:
    """The rotator's identity, as azure-identity gets it from the sandbox's Entra."""
    cred = client_secret_credential(
        sandbox, sandbox.rotator.client_id, sandbox.rotator.client_secret
    )
    yield cred
    await cred.close()


@pytest.fixture
async def secret_client(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> AsyncIterator[SecretClient]:
    """A SecretClient with every default (challenge verification included) but the CA, and
    retries paced for tests."""
    async with SecretClient(
        sandbox.vault_url,
        credential,
        connection_verify=str(sandbox.ca_path),
        retry_backoff_factor=0.01,
        retry_backoff_max=0.05,
    ) as client:
        yield client
