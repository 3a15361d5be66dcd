"""The sandbox Key Vault, driven by azure-keyvault-secrets' async SecretClient.

Only the vault URL and the CA trust differ from production use: the SDK runs its own
challenge flow (with its default resource verification), retry policy and paging.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from sandbox.http_common import normalize_audience
from sandbox.server import Sandbox
from sandbox.vault_api import challenge_resource


@pytest.fixture
def client(secret_client: SecretClient) -> SecretClient:
    return secret_client


async def raw(
    sandbox: Sandbox, method: str, path: str, token: str | None = None, body: object = None
) -> tuple[int, dict[str, str], dict[str, object]]:
    """One plain HTTPS request to the vault, for what the SDK hides (headers, raw bodies)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.TCPConnector(ssl=sandbox.client_ssl())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, sandbox.vault_url + path, headers=headers, json=body) as resp,
    ):
        return resp.status, dict(resp.headers), json.loads(await resp.text() or "{}")


def error_code(exc: HttpResponseError) -> str | None:
    return exc.error.code if exc.error else None


# ----- the challenge --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vault_url", "resource"),
    [
        ("https://contoso.vault.azure.net", "https://vault.azure.net"),
        ("https://contoso.vault.azure.net:443", "https://vault.azure.net"),
        ("https://127.0.0.1:8443", "https://0.0.1:8443"),
        ("https://localhost:8443", "https://localhost:8443"),
    ],
)
def test_challenge_resource_is_the_vault_host_minus_its_first_label(
    vault_url: str, resource: str
) -> None:
    assert challenge_resource(vault_url) == resource


async def test_request_without_token_gets_keyvaults_bearer_challenge(sandbox: Sandbox) -> None:
    status, headers, body = await raw(sandbox, "GET", "/secrets/anything?api-version=7.6")

    assert status == 401
    assert body == {
        "error": {
            "code": "Unauthorized",
            "message": "AKV10000: Request is missing a Bearer or PoP token.",
        }
    }
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    params = {
        k.strip(): v.strip().strip('"')
        for k, v in (p.split("=", 1) for p in challenge[len("Bearer ") :].split(","))
    }
    assert params["authorization"] == f"{sandbox.login_url}/{sandbox.tenant_id}"
    # The SDK's default check: the vault's host:port ends with "." + the resource's.
    vault_netloc = urlsplit(sandbox.vault_url).netloc
    assert vault_netloc.endswith("." + urlsplit(params["resource"]).netloc)


async def test_sdk_default_settings_pass_the_challenge_with_a_vault_audience_token(
    sandbox: Sandbox, client: SecretClient
) -> None:
    await client.set_secret("smtp-password", "s3cret-value-1")

    # One body-less probe answered 401 with the challenge, then the authorised request.
    assert sandbox.state.requests["vault PUT /secrets/{name}"] == 2
    audiences = {normalize_audience(t.audience) for t in sandbox.state.tokens.values()}
    assert normalize_audience(challenge_resource(sandbox.vault_url)) in audiences


async def test_token_for_another_audience_is_refused(
    sandbox: Sandbox, credential: ClientSecretCredential
) -> None:
    arm_token = await credential.get_token(sandbox.arm_url + "/.default")

    status, headers, body = await raw(
        sandbox, "GET", "/secrets/anything?api-version=7.6", arm_token.token
    )

    assert status == 401
    assert "WWW-Authenticate" in headers
    assert body["error"]["code"] == "Unauthorized"  # type: ignore[index]


# ----- set, get, list, update -------------------------------------------------------------------


async def test_set_then_get_latest_and_by_version_round_trips_every_field(
    sandbox: Sandbox, client: SecretClient
) -> None:
    expires = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    not_before = datetime(2030, 1, 1, tzinfo=UTC)

    first = await client.set_secret("Mail-Password", "value-one")
    second = await client.set_secret(
        "mail-password",
        "value-two",
        content_type="smtp-password",
        tags={"app-id": "a1", "key-id": "k2"},
        expires_on=expires,
        not_before=not_before,
    )
    latest = await client.get_secret("mail-password")
    older = await client.get_secret("mail-password", first.properties.version)

    assert latest.value == "value-two"
    assert latest.properties.version == second.properties.version
    assert latest.properties.content_type == "smtp-password"
    assert latest.properties.tags == {"app-id": "a1", "key-id": "k2"}
    assert latest.properties.expires_on == expires
    assert latest.properties.not_before == not_before
    assert latest.properties.enabled is True
    assert latest.properties.created_on is not None
    assert latest.name == "Mail-Password"  # names keep their first casing, match without it
    assert latest.id == f"{sandbox.vault_url}/secrets/Mail-Password/{second.properties.version}"
    assert older.value == "value-one"
    assert [v.value for v in sandbox.state.vault["mail-password"]] == ["value-one", "value-two"]


async def test_versions_are_paged_through_next_link(sandbox: Sandbox, client: SecretClient) -> None:
    written = {(await client.set_secret("paged", f"v{i}")).properties.version for i in range(7)}
    before = sandbox.state.requests["vault GET /secrets/{name}/versions"]

    pages = client.list_properties_of_secret_versions("paged", max_page_size=3).by_page()
    sizes, listed = [], set()
    async for page in pages:
        items = [p async for p in page]
        sizes.append(len(items))
        listed |= {p.version for p in items}

    assert sizes == [3, 3, 1]
    assert listed == written
    assert sandbox.state.requests["vault GET /secrets/{name}/versions"] - before == 3


async def test_versions_list_has_no_values_and_an_unknown_secret_lists_empty(
    sandbox: Sandbox, client: SecretClient, credential: ClientSecretCredential
) -> None:
    await client.set_secret("listed", "hidden-value")
    token = await credential.get_token(challenge_resource(sandbox.vault_url) + "/.default")

    status, _, body = await raw(
        sandbox, "GET", "/secrets/listed/versions?api-version=7.6", token.token
    )
    missing = [p async for p in client.list_properties_of_secret_versions("never-set")]

    assert status == 200
    assert "hidden-value" not in json.dumps(body)
    assert missing == []


async def test_secrets_list_gives_each_current_version_under_its_base_id(
    sandbox: Sandbox, client: SecretClient
) -> None:
    """GetSecrets (azure-rest-api-specs secrets.json): the current version's attributes,
    tags and content type, an id without a version, paged by at most 25."""
    await client.set_secret("one", "v1", tags={"key-id": "old"})
    current = await client.set_secret(
        "one", "v2", content_type="smtp-password", tags={"key-id": "k"}
    )
    assert current.properties.version is not None
    await client.update_secret_properties("one", current.properties.version, enabled=False)
    for i in range(30):
        await client.set_secret(f"filler-{i:02}", "v")
    before = sandbox.state.requests["vault GET /secrets"]

    sizes, listed = [], {}
    async for page in client.list_properties_of_secrets().by_page():
        items = [p async for p in page]
        sizes.append(len(items))
        listed.update({p.name: p for p in items})

    one = listed["one"]
    assert sizes == [25, 6]
    assert sandbox.state.requests["vault GET /secrets"] - before == 2
    assert one.id == f"{sandbox.vault_url}/secrets/one"
    assert one.version is None
    assert one.tags == {"key-id": "k"}
    assert one.content_type == "smtp-password"
    assert one.enabled is False
    assert one.created_on == current.properties.created_on


async def test_secrets_list_has_no_values(
    sandbox: Sandbox, client: SecretClient, credential: ClientSecretCredential
) -> None:
    await client.set_secret("listed", "hidden-value")
    token = await credential.get_token(challenge_resource(sandbox.vault_url) + "/.default")

    status, _, body = await raw(
        sandbox, "GET", "/secrets?api-version=7.6&maxresults=1", token.token
    )

    assert status == 200
    assert "hidden-value" not in json.dumps(body)
    assert body["nextLink"] is None


async def test_maxresults_above_25_is_refused(sandbox: Sandbox, client: SecretClient) -> None:
    await client.set_secret("paged", "v")
    with pytest.raises(HttpResponseError) as caught:
        _ = [p async for p in client.list_properties_of_secret_versions("paged", max_page_size=26)]
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "BadParameter"


async def test_update_changes_enabled_expiry_tags_and_content_type_without_returning_the_value(
    sandbox: Sandbox, client: SecretClient, credential: ClientSecretCredential
) -> None:
    secret = await client.set_secret("upd", "keep-me-private", tags={"a": "1"})
    version = secret.properties.version
    assert version is not None
    expires = datetime(2032, 5, 6, tzinfo=UTC)

    updated = await client.update_secret_properties(
        "upd", version, enabled=False, expires_on=expires, tags={"b": "2"}, content_type="x"
    )
    token = await credential.get_token(challenge_resource(sandbox.vault_url) + "/.default")
    status, _, body = await raw(
        sandbox,
        "PATCH",
        f"/secrets/upd/{version}?api-version=7.6",
        token.token,
        {"tags": {"c": "3"}},
    )

    assert (updated.enabled, updated.expires_on, updated.tags, updated.content_type) == (
        False,
        expires,
        {"b": "2"},
        "x",
    )
    assert status == 200
    assert "value" not in body
    stored = sandbox.state.vault["upd"][0]
    assert (stored.enabled, stored.tags, stored.value) == (False, {"c": "3"}, "keep-me-private")


# ----- refusals ----------------------------------------------------------------------------------


async def test_get_of_a_disabled_version_is_forbidden(
    sandbox: Sandbox, client: SecretClient
) -> None:
    old = await client.set_secret("dis", "old")
    new = await client.set_secret("dis", "new")
    assert old.properties.version
    assert new.properties.version
    await client.update_secret_properties("dis", new.properties.version, enabled=False)

    for version in (None, new.properties.version):
        with pytest.raises(HttpResponseError) as caught:
            await client.get_secret("dis", version)
        assert caught.value.status_code == 403
        assert error_code(caught.value) == "Forbidden"
        assert caught.value.error is not None
        assert caught.value.error.message == "Operation get is not allowed on a disabled secret."
    assert (await client.get_secret("dis", old.properties.version)).value == "old"


async def test_missing_secret_or_version_is_secret_not_found(client: SecretClient) -> None:
    await client.set_secret("present", "v")
    calls = [
        client.get_secret("absent"),
        client.get_secret("present", "0" * 32),
        client.update_secret_properties("present", "0" * 32, enabled=False),
    ]
    for call in calls:
        with pytest.raises(ResourceNotFoundError) as caught:
            await call
        assert error_code(caught.value) == "SecretNotFound"
        assert "was not found in this key vault" in str(caught.value)


@pytest.mark.parametrize("name", ["bad_name", "dots.not.allowed", "x" * 128])
async def test_invalid_secret_names_are_bad_parameter(client: SecretClient, name: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        await client.set_secret(name, "v")
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "BadParameter"


async def test_longest_valid_name_value_and_tags_are_accepted(client: SecretClient) -> None:
    tags = {f"t{i}": "v" for i in range(14)} | {"n" * 512: "v" * 256}

    secret = await client.set_secret("N-1" + "x" * 124, "é" * (25 * 512), tags=tags)

    assert secret.properties.tags == tags


@pytest.mark.parametrize(
    ("value", "tags", "fragment"),
    [
        ("v" * (25 * 1024 + 1), {}, "too large"),
        ("é" * (25 * 512) + "x", {}, "too large"),  # bytes count, not characters
        ("v", {f"t{i}": "v" for i in range(16)}, "at most 15 tags"),
        ("v", {"n" * 513: "v"}, "Tag name is too long"),
        ("v", {"t": "v" * 257}, "tag value can have at most 256"),
    ],
)
async def test_value_and_tag_limits_are_enforced(
    client: SecretClient, value: str, tags: dict[str, str], fragment: str
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        await client.set_secret("limited", value, tags=tags)
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "BadParameter"
    assert fragment in str(caught.value)


async def test_caller_without_the_secrets_officer_role_gets_forbidden_by_rbac(
    sandbox: Sandbox, client: SecretClient
) -> None:
    await client.set_secret("rbac", "v")
    sandbox.state.vault_permissions[sandbox.rotator.client_id.lower()] = frozenset({"get", "list"})

    with pytest.raises(HttpResponseError) as caught:
        await client.set_secret("rbac", "v2")
    readable = await client.get_secret("rbac")

    assert caught.value.status_code == 403
    assert error_code(caught.value) == "Forbidden"
    assert "setSecret/action" in str(caught.value)
    assert readable.value == "v"


# ----- faults, retries and counters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "status"), [("vault PUT /secrets/{name}", 429), ("vault *", 503)]
)
async def test_throttling_and_unavailability_with_retry_after_are_retried_by_azure_core(
    sandbox: Sandbox, client: SecretClient, route: str, status: int
) -> None:
    fault = sandbox.state.faults.inject(route, status=status, retry_after=0, times=2)

    secret = await client.set_secret("retried", "v")

    assert fault.hits == 2
    assert secret.value == "v"
    # Two faulted attempts, the challenge probe, the authorised write.
    assert sandbox.state.requests["vault PUT /secrets/{name}"] == 4


async def test_injected_fault_answers_in_keyvault_error_shape_with_retry_after(
    sandbox: Sandbox,
) -> None:
    sandbox.state.faults.inject("vault GET /secrets/{name}", status=429, retry_after=3, times=1)

    status, headers, body = await raw(sandbox, "GET", "/secrets/x?api-version=7.6")

    assert status == 429
    assert headers["Retry-After"] == "3"
    assert body["error"]["code"] == "Throttled"  # type: ignore[index]


async def test_every_request_is_counted_by_route(sandbox: Sandbox, client: SecretClient) -> None:
    secret = await client.set_secret("counted", "v")
    assert secret.properties.version
    await client.get_secret("counted")
    await client.get_secret("counted", secret.properties.version)
    _ = [p async for p in client.list_properties_of_secret_versions("counted")]
    await client.update_secret_properties("counted", secret.properties.version, enabled=True)

    vault = {k: v for k, v in sandbox.state.requests.items() if k.startswith("vault ")}
    assert vault == {
        "vault PUT /secrets/{name}": 2,  # the first request carries the challenge probe
        "vault GET /secrets/{name}/": 1,
        "vault GET /secrets/{name}/{version}": 1,
        "vault GET /secrets/{name}/versions": 1,
        "vault PATCH /secrets/{name}/{version}": 1,
    }


async def test_expiry_is_informational_like_keyvault(
    sandbox: Sandbox, client: SecretClient
) -> None:
    """Key Vault serves a secret past its exp (consumers decide); only disabled is refused."""
    await client.set_secret("old", "v", expires_on=datetime.now(UTC) - timedelta(days=1))

    assert (await client.get_secret("old")).value == "v"
