"""The sandbox as one object: every fake Azure service on its own loopback port, over TLS.

``async with Sandbox() as sb:`` starts Entra (login), Microsoft Graph, Key Vault, ARM, the
admin surface and the ACS-like SMTP relay in the running event loop, each on its own
port because the real services live on separate hosts. A throw-away CA (``sb.ca_path``)
signs a certificate for localhost/127.0.0.1/::1; clients trust it as an extra CA and keep
every certificate and hostname check.

The home tenant, one subscription and the rotator's own identity (``sb.rotator``: an app
with Graph's Application.ReadWrite.OwnedBy and ARM Reader) exist from the start;
``sb.env()`` hands the product ready settings and ``sb.add_sender()`` seeds an ACS
sender in one call.

Blob storage (the rotator's per-app leases) is Azurite, shared by every sandbox in the
process (sandbox/azurite.py); each sandbox has a container of its own, and its CA file
also holds the CA of Azurite's certificate, so one ``ROTATION_CA_BUNDLE`` trusts both.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from aiohttp import web

from rotation.resource_ids import system_topic_id
from sandbox import admin_api, arm_api, entra_api, event_grid, graph_api, vault_api, web_api
from sandbox.api_app import (
    AZURE_CLI_APP_ID,
    ROLES,
    ProtectedApi,
    User,
    add_protected_api,
    app_token,
    user_token,
)
from sandbox.azurite import Azurite, shared_azurite
from sandbox.event_grid import EVENTS, EventGrid
from sandbox.http_common import BASE_URL, CHALLENGE, arm_challenge, graph_challenge
from sandbox.seed import (
    DEFAULT_SENDER_ADDRESS,
    Principal,
    Sender,
    Via,
    add_acs_resource,
    add_managed_identity_holder,
    add_other_tenant_holder,
    add_rotator,
    add_sender,
)
from sandbox.smtp_relay import SmtpRelay
from sandbox.state import AcsResource, RoleDefinition, SandboxState, ServicePrincipal
from sandbox.tls import SandboxTls, create_tls
from sandbox.web_sites import WebSite

HOST = "127.0.0.1"
SMTP_HOST = "localhost"  # ACS accepts SMTP by DNS name only; the certificate names localhost


@dataclass
class _Service:
    name: str
    app: web.Application
    sock: socket.socket
    runner: web.AppRunner | None = field(default=None)

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.sock.getsockname()[1]}"


class Sandbox:
    """A running local stand-in for Entra, Graph, Key Vault, ARM and the ACS SMTP relay."""

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        propagation_delay: timedelta = timedelta(0),
        max_secret_lifetime: timedelta | None = None,
    ) -> None:
        self.state = state or SandboxState()
        self.state.propagation_delay = propagation_delay
        self.tenant_id = self.state.add_tenant(max_secret_lifetime=max_secret_lifetime)
        self.subscription_id = self.state.add_subscription()
        self.rotator: Principal = add_rotator(self.state, self.tenant_id, self.subscription_id)
        #: The rotator's HTTP API as an app registration (its tokens: `user_token`, `app_token`).
        self.api: ProtectedApi = add_protected_api(self.state, self.tenant_id, "acs-smtp-rotation")
        self.state.vault_resource_id = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/rg-sandbox"
            "/providers/Microsoft.KeyVault/vaults/kv-sandbox"
        )
        self._default_resource: AcsResource | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tls: SandboxTls | None = None
        self._services: dict[str, _Service] = {}
        self._relay: SmtpRelay | None = None
        self._azurite: Azurite | None = None
        #: Key Vault's Event Grid system topic (sandbox/event_grid.py), made at start.
        self.event_grid: EventGrid | None = None
        self._grid_task: asyncio.Task[None] | None = None
        #: This sandbox's blob container for the rotator's leases (Azurite is shared).
        self.lease_container = f"leases-{secrets.token_hex(6)}"

    # ----- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Binds every port first (so each service knows the others' URLs), then serves."""
        self._tmp = tempfile.TemporaryDirectory(prefix="acs-sandbox-")
        self._tls = create_tls(Path(self._tmp.name))
        self._azurite = shared_azurite()
        with self._tls.ca_path.open("ab") as bundle:
            bundle.write(self._azurite.ca_pem)
        apps = {
            "login": entra_api.build_app(self.state),
            "graph": graph_api.build_app(self.state),
            "vault": vault_api.build_app(self.state),
            "arm": arm_api.build_app(self.state),
            "admin": admin_api.build_app(self.state, self),
        }
        web_api.add_routes(apps["arm"])  # Microsoft.Web lives on the same Resource Manager
        event_grid.add_routes(apps["arm"])  # and Microsoft.EventGrid (the vault's system topic)
        self._services = {
            name: _Service(name, app, _vault_socket() if name == "vault" else _bound_socket())
            for name, app in apps.items()
        }
        for service in self._services.values():
            service.app[BASE_URL] = service.url
        # App Service names a vault by its host's first label (myvault.vault.azure.net).
        self.state.vault_name = HOST.split(".", 1)[0]
        self.state.add_resource(self.graph_url, "graph")
        self.state.add_resource(self.arm_url, "arm")
        self.state.add_resource(vault_api.challenge_resource(self.vault_url), "vault")
        vault = self._services["vault"].app
        vault[CHALLENGE] = vault_api.challenge_header(
            self.vault_url, self.login_url, self.tenant_id
        )
        self._services["arm"].app[CHALLENGE] = arm_challenge(self.login_url, self.tenant_id)
        self.event_grid = EventGrid(self.state, self.state.vault_resource_id or "", self.vault_url)
        vault[EVENTS] = self.event_grid
        self._services["arm"].app[EVENTS] = self.event_grid
        # doctor reads the subscription and its metrics: Reader on the topic, as infra grants.
        topic_id = system_topic_id(self.state.vault_resource_id or "")
        self.state.assign_role(topic_id, self.rotator.sp, "Reader")
        self.event_grid.subscribe(event_grid.SUBSCRIPTION, "", begins_with="acs-smtp-")
        self._services["graph"].app[CHALLENGE] = graph_challenge(self.login_url)
        try:
            for service in self._services.values():
                service.runner = web.AppRunner(service.app, access_log=None, shutdown_timeout=0.1)
                await service.runner.setup()
                site = web.SockSite(service.runner, service.sock, ssl_context=self.server_ssl)
                await site.start()
            self._relay = SmtpRelay(self.state, self.server_ssl, host=HOST, port=0)
            await self._relay.start()
            self._grid_task = asyncio.create_task(self.event_grid.run(self.client_ssl()))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._grid_task is not None:
            self._grid_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._grid_task
            self._grid_task = None
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        for service in self._services.values():
            if service.runner is not None:
                await service.runner.cleanup()
            service.sock.close()
        self._services = {}
        self._azurite = None  # shared by the process's sandboxes: it stops at exit
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ----- endpoints ------------------------------------------------------------------

    def _url(self, name: str) -> str:
        if name not in self._services:
            raise RuntimeError("the sandbox is not running")
        return self._services[name].url

    @property
    def login_url(self) -> str:
        return self._url("login")

    @property
    def graph_url(self) -> str:
        return self._url("graph")

    @property
    def vault_url(self) -> str:
        return self._url("vault")

    @property
    def arm_url(self) -> str:
        return self._url("arm")

    @property
    def admin_url(self) -> str:
        return self._url("admin")

    @property
    def lease_blob_url(self) -> str:
        """Azurite's blob endpoint (HTTPS, bearer tokens from this sandbox's Entra)."""
        if self._azurite is None:
            raise RuntimeError("the sandbox is not running")
        return self._azurite.blob_url

    @property
    def smtp_host(self) -> str:
        return SMTP_HOST

    @property
    def smtp_port(self) -> int:
        if self._relay is None:
            raise RuntimeError("the sandbox is not running")
        return self._relay.port

    @property
    def ca_path(self) -> Path:
        if self._tls is None:
            raise RuntimeError("the sandbox is not running")
        return self._tls.ca_path

    @property
    def server_ssl(self) -> ssl.SSLContext:
        if self._tls is None:
            raise RuntimeError("the sandbox is not running")
        return self._tls.server_context

    def client_ssl(self) -> ssl.SSLContext:
        """A client context trusting the sandbox CA (TLS 1.2+), for tests' own clients."""
        if self._tls is None:
            raise RuntimeError("the sandbox is not running")
        return self._tls.client_context()

    def env(self, **overrides: object) -> dict[str, str]:
        """ROTATION_* settings and the AZURE_* variables EnvironmentCredential reads.

        Overrides may be full names (``ROTATION_GRACE_HOURS=0``) or setting names
        (``grace_hours=0``); a value of None removes the variable.
        """
        env = {
            "ROTATION_KEY_VAULT_URL": self.vault_url,
            "ROTATION_KEY_VAULT_RESOURCE_ID": self.state.vault_resource_id or "",
            "ROTATION_TENANT_ID": self.tenant_id,
            "ROTATION_SUBSCRIPTION_IDS": self.subscription_id,
            "ROTATION_AUTHORITY_HOST": self.login_url,
            "ROTATION_GRAPH_URL": self.graph_url,
            "ROTATION_ARM_URL": self.arm_url,
            "ROTATION_SMTP_HOST": self.smtp_host,
            "ROTATION_SMTP_PORT": str(self.smtp_port),
            "ROTATION_CA_BUNDLE": str(self.ca_path),
            "ROTATION_LEASE_BLOB_URL": self.lease_blob_url,
            "ROTATION_LEASE_CONTAINER": self.lease_container,
            "ROTATION_API_CLIENT_ID": self.api.client_id,
            "AZURE_CLIENT_ID": self.rotator.client_id,
            "AZURE_CLIENT_SECRET": self.rotator.client_secret,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_AUTHORITY_HOST": self.login_url,
        }
        for key, value in overrides.items():
            name = key if key.isupper() else f"ROTATION_{key.upper()}"
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        return env

    # ----- callers of the rotator's API -------------------------------------------------

    def add_api_user(
        self, roles: Iterable[str] = ROLES, name: str = "operator@sandbox.example"
    ) -> User:
        """A user of the home tenant holding `roles` of the API (none: `roles=()`)."""
        user = self.state.add_user(self.tenant_id, name, name.split("@")[0])
        for role in roles:
            self.api.assign(user.object_id, role)
        return user

    def add_api_client(self, roles: Iterable[str] = ROLES, name: str = "pipeline") -> Principal:
        """A workload (app registration, service principal, client secret) holding `roles`
        of the API as application permissions."""
        app = self.state.add_application(self.tenant_id, name)
        sp = self.state.add_service_principal(app)
        password = self.state.add_password(app, timedelta(days=365), name)
        for role in roles:
            self.api.assign(sp.object_id, role)
        return Principal(app, sp, password)

    def user_token(self, user: User, client_id: str = AZURE_CLI_APP_ID) -> str:
        """The token Azure CLI would print for `user` (`az account get-access-token
        --resource <application ID URI>`); raises api_app.TokenRefused as Entra refuses."""
        return user_token(self.state, self.api, user, self.login_url, client_id)

    def app_token(self, client: Principal) -> str:
        """The token the client-credentials flow gives `client` for the API (the token
        endpoint serves the same: sandbox/entra_api.py)."""
        return app_token(self.state, self.api, client.sp, self.login_url)

    # ----- seeding --------------------------------------------------------------------

    @property
    def default_resource(self) -> AcsResource:
        """The ACS resource senders join unless told otherwise (made on first use)."""
        if self._default_resource is None:
            self._default_resource = self.add_acs_resource("acs-sandbox")
        return self._default_resource

    def add_acs_resource(
        self,
        name: str | None = None,
        *,
        resource_group: str = "rg-email",
        senders: Iterable[str] = (DEFAULT_SENDER_ADDRESS,),
        subscription_id: str | None = None,
    ) -> AcsResource:
        return add_acs_resource(
            self.state,
            subscription_id or self.subscription_id,
            name,
            resource_group=resource_group,
            senders=senders,
        )

    def add_managed_identity_holder(
        self, resource: AcsResource | None = None, *, role: str | RoleDefinition = "Contributor"
    ) -> ServicePrincipal:
        """A managed identity with `role` on the resource (see sandbox.seed)."""
        return add_managed_identity_holder(
            self.state, resource or self.default_resource, tenant_id=self.tenant_id, role=role
        )

    def add_other_tenant_holder(
        self, resource: AcsResource | None = None, *, role: str | RoleDefinition = "Contributor"
    ) -> Principal:
        """Another tenant's multi-tenant app with `role` on the resource (see sandbox.seed)."""
        return add_other_tenant_holder(
            self.state, resource or self.default_resource, tenant_id=self.tenant_id, role=role
        )

    def add_sender(
        self,
        resource: AcsResource | None = None,
        *,
        via: Via = "role",
        role: str | RoleDefinition | None = "Contributor",
        lifetime: timedelta = timedelta(days=180),
        owned: bool = True,
        name: str | None = None,
        senders: Iterable[str] = (),
    ) -> Sender:
        """An ACS sender (app + SP + secret + role/SMTP Username), owned by the rotator
        unless ``owned=False``. See sandbox.seed.add_sender."""
        return add_sender(
            self.state,
            resource or self.default_resource,
            tenant_id=self.tenant_id,
            owner=self.rotator.sp if owned else None,
            via=via,
            role=role,
            lifetime=lifetime,
            name=name,
            senders=senders,
        )

    def add_consumer_site(
        self,
        name: str,
        secret_name: str,
        *,
        form: str = "uri",
        slot: str | None = None,
        kind: str = "app",
        version: str | None = None,
        resource_group: str = "rg-apps",
        grant_rotator: bool = True,
        connection_strings: bool = False,
    ) -> WebSite:
        """An App Service site (or slot) whose app settings SMTP_PASSWORD and SMTP_USERNAME
        are Key Vault references to `secret_name` and its username companion, in the
        ``SecretUri=`` form (`form="uri"`) or the ``VaultName=;SecretName=`` form
        (`form="name"`), pinned to `version` if given. With `connection_strings` the two
        are connection strings instead (the site's only references). With `grant_rotator`
        the rotator holds Website Contributor on the site's resource group (it may refresh
        it)."""

        def reference(secret: str, pinned: str | None) -> str:
            if form == "uri":
                tail = f"/{pinned}" if pinned else ""
                return f"@Microsoft.KeyVault(SecretUri={self.vault_url}/secrets/{secret}{tail})"
            tail = f";SecretVersion={pinned}" if pinned else ""
            return (
                f"@Microsoft.KeyVault(VaultName={self.state.vault_name};SecretName={secret}{tail})"
            )

        references = {
            "SMTP_PASSWORD": reference(secret_name, version),
            "SMTP_USERNAME": reference(f"{secret_name}-username", None),
        }
        settings = {"SMTP_HOST": "smtp.azurecomm.net"}
        if not connection_strings:
            settings = references | settings
        site = self.state.add_web_site(
            self.subscription_id,
            resource_group,
            name,
            settings,
            slot=slot,
            kind=kind,
            connection_strings=references if connection_strings else None,
        )
        scope = f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}"
        held = any(
            a.scope.lower() == scope.lower() and a.principal_id == self.rotator.sp.object_id
            for a in self.state.role_assignments
        )
        if grant_rotator and not held:
            self.state.assign_role(scope, self.rotator.sp, "Website Contributor")
        return site


#: Every port a sandbox vault has listened on in this process (see `_vault_socket`).
_VAULT_PORTS: set[int] = set()


def _vault_socket() -> socket.socket:
    """A port no earlier sandbox vault in this process used.

    azure-keyvault-secrets caches each vault's challenge (its tenant) process-wide by
    host:port. A real vault's address never moves to another tenant; a reused loopback
    port would, and the SDK would then ask for a token in the previous sandbox's tenant.
    """
    while True:
        sock = _bound_socket()
        port = sock.getsockname()[1]
        if port not in _VAULT_PORTS:
            _VAULT_PORTS.add(port)
            return sock
        sock.close()


def unreachable_vault_url() -> str:
    """A vault URL on a closed loopback port no sandbox vault here has used (or will use),
    so that the SDK's challenge cache holds nothing for it: for "vault unreachable" tests."""
    with _vault_socket() as sock:
        return f"https://{HOST}:{sock.getsockname()[1]}"


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock
