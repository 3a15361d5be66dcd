"""A mail-sending application as an operator would write it: it reads the SMTP password
from Key Vault (the real async SecretClient, under its own identity with `get` only) and
authenticates to the relay (aiosmtplib), again and again, while rotations run.

Every attempt is classified:

- ok: AUTH accepted;
- transient: the connection dropped or the relay answered 4xx (injected faults); a mail
  client retries those, they say nothing about the password;
- rejected (535): the password did not work. The consumer then looks at the sandbox at
  once: if the credential it used was removed between its read and its AUTH, the
  rejection is *explained* by that removal; otherwise it is a broken invariant;
- read error: Key Vault could not be read even after the SDK's retries.

It also checks, at each read, that the credential behind the value Key Vault served
exists (I1 from the consumer's side), and records how long it held each value between
reading and using it (what the grace period must cover).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

import aiohttp
import aiosmtplib
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from sandbox.seed import Sender
from sandbox.state import Application
from sandbox.web_sites import WebSite
from tests.reliability.harness import World


@dataclass(frozen=True)
class Rejection:
    key_id: str
    read_at: float  # time.monotonic() when the read returned
    failed_at: float  # when the 535 came back
    removed: bool  # the credential was gone by then
    vault_moved: bool  # Key Vault already served another credential

    @property
    def held(self) -> float:
        return self.failed_at - self.read_at

    @property
    def explained(self) -> bool:
        return self.removed and self.vault_moved


@dataclass
class ConsumerStats:
    attempts: int = 0
    ok: int = 0
    transient: int = 0
    read_errors: int = 0
    waiting: int = 0  # reads before Key Vault held any password
    rejections: list[Rejection] = field(default_factory=list)
    served_dead: list[str] = field(default_factory=list)  # key ids served after removal
    max_held_ok: float = 0.0
    helds: list[float] = field(default_factory=list)  # read-to-AUTH seconds, successes
    keys_seen: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)  # exception texts, for the leak scan

    def merge(self, other: ConsumerStats) -> None:
        self.attempts += other.attempts
        self.ok += other.ok
        self.transient += other.transient
        self.read_errors += other.read_errors
        self.waiting += other.waiting
        self.rejections += other.rejections
        self.served_dead += other.served_dead
        self.max_held_ok = max(self.max_held_ok, other.max_held_ok)
        self.helds += other.helds
        self.keys_seen |= other.keys_seen
        self.errors += other.errors


class ConsumerIdentity:
    """The consumers' own Entra app with Key Vault `get` only (a Secrets User)."""

    def __init__(self, world: World) -> None:
        state = world.state
        tenant = world.sandbox.tenant_id
        self.app = state.add_application(tenant, "mail-consumer")
        state.add_service_principal(self.app)
        self.secret = state.add_password(self.app, display_name="consumer").secret_text
        state.vault_permissions[self.app.app_id.lower()] = frozenset({"get"})
        self.world = world

    def client(self) -> tuple[SecretClient, ClientSecretCredential]:
        """A SecretClient as a consumer builds it; its TLS context is made once (an
        azure-core `connection_verify` path would build one per request)."""
        sandbox = self.world.sandbox
        credential = ClientSecretCredential(
            sandbox.tenant_id,
            self.app.app_id,
            self.secret,
            authority=sandbox.login_url,
            disable_instance_discovery=True,
            connection_verify=str(sandbox.ca_path),
        )
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=sandbox.client_ssl()))
        transport = AioHttpTransport(session=session, session_owner=True)
        client = SecretClient(
            self.world.settings.key_vault_url,
            credential,
            transport=transport,
            retry_total=10,
            retry_backoff_factor=0.05,
        )
        return client, credential


class Consumer:
    def __init__(
        self, world: World, sender: Sender, client: SecretClient, interval: float = 0.1
    ) -> None:
        self.world = world
        self.sender = sender
        self.client = client
        self.interval = interval
        self.stats = ConsumerStats()
        self.tls = world.sandbox.client_ssl()

    async def run(self, stop: asyncio.Event) -> ConsumerStats:
        while not stop.is_set():
            await self.once()
            try:
                async with asyncio.timeout(self.interval):
                    await stop.wait()
            except TimeoutError:
                pass
        return self.stats

    async def once(self) -> None:
        name = self.world.secret_name(self.sender)
        try:
            secret = await self.client.get_secret(name)
        except ResourceNotFoundError:
            self.stats.waiting += 1
            return
        except AzureError as exc:
            self.stats.read_errors += 1
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            return
        read_at = time.monotonic()
        key_id = (secret.properties.tags or {}).get("key-id", "")
        self.stats.keys_seen.add(key_id)
        if not _exists(self.sender.app, key_id):
            self.stats.served_dead.append(key_id)
        self.stats.attempts += 1
        try:
            await self._authenticate(secret.value or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            self._rejected(key_id, read_at)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            self.stats.transient += 1
        else:
            held = time.monotonic() - read_at
            self.stats.ok += 1
            self.stats.helds.append(held)
            self.stats.max_held_ok = max(self.stats.max_held_ok, held)

    async def _authenticate(self, password: str) -> None:
        await smtp_login(self.world, self.tls, self.sender.username, password, "consumer.example")

    def _rejected(self, key_id: str, read_at: float) -> None:
        self.stats.rejections.append(rejection(self.world, self.sender, key_id, read_at))


async def smtp_login(
    world: World, tls: ssl.SSLContext, username: str, password: str, local_hostname: str
) -> None:
    """One SMTP AUTH against the relay, as a mail client makes it."""
    smtp = aiosmtplib.SMTP(
        hostname=world.settings.smtp_host,
        port=world.settings.smtp_port,
        tls_context=tls,
        start_tls=True,
        local_hostname=local_hostname,
        timeout=10,
    )
    async with smtp:
        await smtp.login(username, password)


def rejection(world: World, sender: Sender, key_id: str, read_at: float) -> Rejection:
    """Looks, the moment the 535 arrives, at why: is the credential still there?"""
    failed_at = time.monotonic()
    removed = not _exists(sender.app, key_id)
    moved = world.live_key_id(sender) != key_id
    return Rejection(key_id, read_at, failed_at, removed, moved)


def _exists(app: Application, key_id: str) -> bool:
    return any(p.key_id == key_id for p in app.passwords)


class AppServiceConsumer:
    """An App Service / Functions app that reads its SMTP settings as app settings whose
    values are Key Vault references: what its code sees is what App Service resolved and
    cached (refetched every 24 hours of the sandbox clock, or on a refresh), not what Key
    Vault serves now. Attempts are classified as for `Consumer`."""

    def __init__(self, world: World, sender: Sender, site: WebSite) -> None:
        self.world = world
        self.sender = sender
        self.site = site
        self.stats = ConsumerStats()
        self.tls = world.sandbox.client_ssl()

    def setting(self, name: str) -> str | None:
        state = self.world.state
        return self.site.value(name, state.vault, state.vault_name, state.clock.now())

    def cached_key_id(self) -> str:
        """The credential behind the password the site holds (its Key Vault tags)."""
        resolution = self.site.cache.get("SMTP_PASSWORD")
        versions = self.world.state.vault.get(self.world.secret_name(self.sender).lower(), [])
        version = next(
            (v for v in versions if resolution and v.version == resolution.active_version), None
        )
        return version.tags.get("key-id", "") if version else ""

    async def once(self) -> None:
        password, username = self.setting("SMTP_PASSWORD"), self.setting("SMTP_USERNAME")
        if not password or not username:
            self.stats.waiting += 1
            return
        read_at = time.monotonic()
        key_id = self.cached_key_id()
        self.stats.keys_seen.add(key_id)
        self.stats.attempts += 1
        try:
            await smtp_login(self.world, self.tls, username, password, "appservice.example")
        except aiosmtplib.SMTPAuthenticationError as exc:
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            self.stats.rejections.append(rejection(self.world, self.sender, key_id, read_at))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            self.stats.transient += 1
        else:
            self.stats.ok += 1
