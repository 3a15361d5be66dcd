"""Typed settings from the environment (prefix ROTATION_), validated once at start-up.

`load_settings()` is called at the edges (function_app.py, cli.py) and the result is
passed down; nothing deeper reads os.environ. An invalid value stops start-up with
one line that names the setting.

Each field's type, default, bounds, `description` and `examples` are the documentation too:
README's settings table and local.settings.example.json are generated from them (`make docs`),
and infra's parameters are held to the same bounds (tests/infra/test_settings_bounds.py).
"""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rotation import ncrontab
from rotation.errors import SettingsError
from rotation.model import USERNAME_SUFFIX, Rules, RunConfig

ENV_PREFIX = "ROTATION_"
KEY_VAULT_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
#: The resource types of the ids settings name (ARM's ``Namespace/type``).
ACS_RESOURCE = "Microsoft.Communication/communicationServices"
#: An App Service / Functions site, or one of its deployment slots (ROTATION_CONSUMER_SITES).
WEB_SITE, WEB_SLOT = "Microsoft.Web/sites", "slots"
KEY_VAULT = "Microsoft.KeyVault/vaults"
VAULT_NAME = re.compile(r"^[0-9A-Za-z-]{3,24}$")
ALL = "all"

#: Entra authority, Microsoft Graph and ARM endpoints of each Azure cloud. US Government
#: DoD (L5) tenants use Graph at https://dod-graph.microsoft.us: set ROTATION_GRAPH_URL to it
#: with ROTATION_CLOUD=usgov (https://learn.microsoft.com/graph/deployments).
CLOUDS: dict[str, tuple[str, str, str]] = {
    "public": (
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
        "https://management.azure.com",
    ),
    "usgov": (
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us",
        "https://management.usgovcloudapi.net",
    ),
    "china": (
        "https://login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn",
        "https://management.chinacloudapi.cn",
    ),
}

#: Blob container names: 3-63 lowercase letters, digits and single hyphens, starting and
#: ending with a letter or digit ("Naming and referencing containers, blobs, and metadata").
CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")

CommaList = Annotated[list[str], NoDecode]


def accepts(text: str) -> JsonDict:
    """What a text setting takes, for the settings table (README) where pydantic has no
    bound to show: the validators below enforce it."""
    return {"accepts": text}


class Settings(BaseSettings):
    # An empty value means "not set", as in local.settings.example.json.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True
    )

    key_vault_url: str = Field(
        description="the vault consumers read from (`azd up` sets it)",
        json_schema_extra=accepts("`https://` URL"),
        examples=["https://<your-vault>.vault.azure.net"],
    )
    key_vault_resource_id: str | None = Field(
        None,
        description="the vault's ARM id; lets `doctor` check the Key Vault permissions without writing "
        "(`azd up` sets it)",
        json_schema_extra=accepts("a Key Vault resource id"),
    )
    key_vault_events: bool = Field(
        False,
        description="the vault's Key Vault events are meant to reach the `key_vault_events` "
        "function (`azd up` sets it from `KEY_VAULT_EVENTS`); `doctor` fails on a missing event "
        "subscription only then",
    )
    tenant_id: str = Field(
        description="the Entra tenant of the sender apps (part of the SMTP username; `azd up` "
        "sets the deployment's)",
        json_schema_extra=accepts("GUID"),
        examples=["<Entra tenant id (GUID) of the ACS apps>"],
    )
    subscription_ids: CommaList = Field(
        default_factory=list,
        description="subscriptions to search for ACS resources",
        json_schema_extra=accepts("GUIDs, comma-separated"),
        examples=["<subscription GUIDs to search for ACS resources, comma-separated>"],
    )
    acs_resource_ids: CommaList = Field(
        default_factory=list,
        description="or exactly these ACS resources",
        json_schema_extra=accepts("ACS resource ids, comma-separated"),
    )
    app_ids: CommaList = Field(
        default_factory=list,
        description="allow-list of apps, each with the SMTP username it sends with if given",
        json_schema_extra=accepts("`<appId>` or `<appId>=<smtp username>`, comma-separated"),
    )
    exclude_app_ids: CommaList = Field(
        default_factory=list,
        description="apps never touched",
        json_schema_extra=accepts("GUIDs, comma-separated"),
    )

    rotate_before_days: int = Field(
        30,
        ge=1,
        le=365,
        description="rotate when the current secret expires within this many days (shorter "
        "than the lifetime)",
    )
    secret_lifetime_days: int = Field(
        180, ge=2, le=730, description="lifetime of each new secret, in days"
    )
    grace_hours: float = Field(
        48,
        ge=0,
        le=24 * 30,
        description="how long old secrets keep working after a promotion (App Service Key "
        "Vault references refresh every 24 h)",
    )
    verify_timeout_seconds: float = Field(
        300,
        gt=0,
        le=1800,
        description="how long SMTP AUTH is retried for a new secret; with 60 s for the other "
        "steps, one app's worst case, which must fit the timer's budget (host.json)",
    )
    http_verify_timeout_seconds: float = Field(
        150,
        gt=0,
        le=200,
        description="the same, on the HTTP path (front-end limit 230 s)",
    )
    max_concurrency: int = Field(
        16,
        ge=1,
        le=64,
        description="apps rotated at once (ACS allows 250 authenticated SMTP connections per "
        "subscription)",
    )
    secret_name_template: str = Field(
        "acs-smtp-{app_id}",  # a name, not a secret
        description="Key Vault secret name per app",
        json_schema_extra=accepts("a Key Vault name with `{app_id}` in it"),
    )

    smtp_host: str = Field(
        "smtp.azurecomm.net",
        description="where SMTP AUTH is proven; required when `ROTATION_CLOUD` is not "
        "`public` (ACS documents no SMTP host there)",
        json_schema_extra=accepts("a DNS name"),
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="its port (STARTTLS)")
    schedule: str = Field(
        "0 0 3 * * *",
        description="the timer's schedule, NCRONTAB with six fields (second minute hour day "
        "month day-of-week; daily 03:00 UTC). The Functions host reads it from this app setting "
        "(`%ROTATION_SCHEDULE%`), not from this default: `azd up` sets it; unset, the host "
        "cannot resolve the timer's schedule and the timer never runs",
        json_schema_extra=accepts("NCRONTAB, six fields"),
    )

    api_client_id: str | None = Field(
        None,
        description="the client id of the HTTP API's app registration (`azd up` sets it): the "
        "audience of callers' tokens. Unset, every route but health answers 503 "
        "`api_not_configured`",
        json_schema_extra=accepts("GUID"),
    )
    cloud: Literal["public", "usgov", "china"] = Field(
        "public",
        description="sets the three endpoints below (`azd up` sets the cloud it deploys to; US "
        "Government DoD tenants: also `ROTATION_GRAPH_URL=https://dod-graph.microsoft.us`)",
    )
    authority_host: str | None = Field(
        None,
        description="override the Entra endpoint (default: per cloud)",
        json_schema_extra=accepts("`https://` URL"),
    )
    graph_url: str | None = Field(
        None,
        description="override the Microsoft Graph endpoint (default: per cloud)",
        json_schema_extra=accepts("`https://` URL"),
    )
    arm_url: str | None = Field(
        None,
        description="override the Resource Manager endpoint (default: per cloud)",
        json_schema_extra=accepts("`https://` URL"),
    )
    ca_bundle: Path | None = Field(
        None,
        description="extra CA certificates to trust (on top of the system's; the sandbox uses it)",
        json_schema_extra=accepts("path of a PEM file"),
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="`json` (Azure; `azd up` sets it), `console`, or `auto` (console on a "
        "terminal)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO",
        description="`DEBUG` also lets the SDKs' own records through (scrubbed like every record)",
    )
    #: azure-core's network trace (`logging_enable`): every request's and response's headers
    #: and bodies at DEBUG, scrubbed like every record (rotation/telemetry/redaction.py). For diagnosis.
    http_logging: bool = Field(
        False,
        description="`true` turns on azure-core's network trace (`logging_enable`): headers and "
        "bodies at DEBUG; tokens, client secrets and passwords are blanked in every record",
    )

    # Consumers (opt-in): App Service / Functions sites whose Key Vault references use our
    # secrets are refreshed after a promotion and their resolved version read back.
    consumers_enabled: bool = Field(
        False,
        description="refresh and confirm the App Service / Functions sites whose Key Vault "
        'references use the secrets (README, "Consumer sites")',
    )
    consumer_sites: CommaList = Field(
        default_factory=list,
        description="the sites to check; empty: every site and slot in `ROTATION_SUBSCRIPTION_IDS`",
        json_schema_extra=accepts("site or slot resource ids, comma-separated"),
    )
    consumers_fully_covered: CommaList = Field(
        default_factory=list,
        description="apps whose every consumer is such a site: their old secrets go once all "
        "confirmed",
        json_schema_extra=accepts("GUIDs, comma-separated, or `all`"),
    )
    consumer_confirm_timeout_seconds: float = Field(
        120,
        gt=0,
        le=900,
        description="how long a run waits for the sites after a promotion",
    )

    # The per-app lease (rotation/azure/blob_lease.py): a blob container in the Function App's own
    # storage account (AzureWebJobsStorage), reached with the identity. Unset: no lease,
    # only this process's own busy marks (a single operator's CLI run).
    lease_blob_url: str | None = Field(
        None,
        description="blob service of the per-app leases (`azd up` sets the app's own storage "
        "account); unset: only this process's own busy marks (a lone CLI run)",
        json_schema_extra=accepts("`https://` URL"),
        examples=["https://<storage-account-of-AzureWebJobsStorage>.blob.core.windows.net"],
    )
    lease_container: str = Field(
        "rotation-leases",
        description="container of the lease blobs (one empty blob per app; `azd up` creates it)",
        json_schema_extra=accepts("a blob container name"),
    )
    # Azure takes 15-60 s (or infinite, which a dead worker would never give back).
    lease_seconds: int = Field(
        60,
        ge=15,
        le=60,
        description="lease duration (Azure's finite range): how soon a dead worker's apps are "
        "free again",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "subscription_ids",
        "acs_resource_ids",
        "app_ids",
        "exclude_app_ids",
        "consumer_sites",
        "consumers_fully_covered",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in re.split(r"[,;\s]+", value) if item.strip()]
        return value

    @field_validator("consumer_sites")
    @classmethod
    def _site_ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if _resource_id(value, WEB_SITE, child=WEB_SLOT) is None:
                raise ValueError(
                    f"{value!r} is not a site or slot resource id (/subscriptions/<id>/"
                    "resourceGroups/<rg>/providers/Microsoft.Web/sites/<name>[/slots/<slot>])"
                )
        return values

    @field_validator("consumers_fully_covered")
    @classmethod
    def _covered(cls, values: list[str]) -> list[str]:
        if [v.lower() for v in values] == [ALL]:
            return [ALL]
        return [_guid(v) for v in values]

    @field_validator("key_vault_url", "authority_host", "graph_url", "arm_url", "lease_blob_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https://[^/\s]+", value):
            raise ValueError("must be an https:// URL")
        if re.search(r"[?#]|^https://[^/]*@", value):
            # The rotator signs in with its identity; a SAS token or a user:password here
            # would be a credential in every error message that names the URL.
            raise ValueError("must be a plain https:// URL, with no query string or user info")
        return value.rstrip("/")

    @field_validator("lease_container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not CONTAINER_NAME.match(value):
            raise ValueError(
                "must be a blob container name: 3-63 lowercase letters, digits and single "
                "hyphens, starting and ending with a letter or digit"
            )
        return value

    @field_validator("tenant_id")
    @classmethod
    def _tenant_guid(cls, value: str) -> str:
        return _guid(value)

    @field_validator("api_client_id")
    @classmethod
    def _client_guid(cls, value: str | None) -> str | None:
        return None if value is None else _guid(value)

    @field_validator("subscription_ids", "exclude_app_ids")
    @classmethod
    def _guids(cls, values: list[str]) -> list[str]:
        return [_guid(v) for v in values]

    @field_validator("app_ids")
    @classmethod
    def _allow_list(cls, values: list[str]) -> list[str]:
        # "<appId>" or "<appId>=<smtp username>"
        return [
            f"{_guid(v.partition('=')[0])}{v.partition('=')[1]}{v.partition('=')[2]}"
            for v in values
        ]

    @field_validator("acs_resource_ids")
    @classmethod
    def _resource_ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if _resource_id(value, ACS_RESOURCE) is None:
                raise ValueError(
                    f"{value!r} is not an ACS resource id (/subscriptions/<id>/resourceGroups/<rg>"
                    "/providers/Microsoft.Communication/communicationServices/<name>)"
                )
        return values

    @field_validator("key_vault_resource_id")
    @classmethod
    def _vault_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = _resource_id(value, KEY_VAULT)
        if parts is None or not VAULT_NAME.match(parts["name"]):
            raise ValueError(
                "must be a Key Vault resource id (/subscriptions/<id>/resourceGroups/<rg>"
                "/providers/Microsoft.KeyVault/vaults/<name>)"
            )
        return value

    @field_validator("secret_name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{app_id}" not in value:
            raise ValueError("must contain {app_id} so that every app gets its own secret")
        try:
            sample = value.format(app_id=str(uuid.UUID(int=0)))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{app_id}} may be used ({exc})") from None
        if not KEY_VAULT_NAME.match(sample + USERNAME_SUFFIX):
            raise ValueError(
                "must render to a Key Vault name (letters, digits and '-', at most "
                f"{127 - len(USERNAME_SUFFIX)} characters)"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        ncrontab.parse(value)  # what the Functions host would refuse, refused by name
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        if value is not None:
            _loadable_pem(value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if not (self.subscription_ids or self.acs_resource_ids or self.app_ids):
            raise ValueError(
                "set ROTATION_SUBSCRIPTION_IDS, ROTATION_ACS_RESOURCE_IDS or ROTATION_APP_IDS "
                "so the rotator knows where to look"
            )
        if self.consumers_enabled and not (self.subscription_ids or self.consumer_sites):
            raise ValueError(
                "ROTATION_CONSUMERS_ENABLED needs ROTATION_SUBSCRIPTION_IDS (sites are scanned "
                "there) or ROTATION_CONSUMER_SITES (a list of site ids)"
            )
        if self.rotate_before_days >= self.secret_lifetime_days:
            raise ValueError(
                "ROTATION_ROTATE_BEFORE_DAYS must be shorter than ROTATION_SECRET_LIFETIME_DAYS"
            )
        if self.cloud != "public" and "smtp_host" not in self.model_fields_set:
            # ACS documents smtp.azurecomm.net for the public cloud only; guessing a host in
            # a sovereign cloud would send every new secret to the wrong endpoint.
            raise ValueError(
                f"ROTATION_SMTP_HOST must be set explicitly when ROTATION_CLOUD is "
                f"{self.cloud!r}: ACS documents an SMTP endpoint (smtp.azurecomm.net) for the "
                "public cloud only"
            )
        return self

    # ----- derived values ----------------------------------------------------------

    @property
    def authority(self) -> str:
        return self.authority_host or CLOUDS[self.cloud][0]

    @property
    def graph_endpoint(self) -> str:
        return self.graph_url or CLOUDS[self.cloud][1]

    @property
    def arm_endpoint(self) -> str:
        return self.arm_url or CLOUDS[self.cloud][2]

    @property
    def rotate_before(self) -> timedelta:
        return timedelta(days=self.rotate_before_days)

    @property
    def secret_lifetime(self) -> timedelta:
        return timedelta(days=self.secret_lifetime_days)

    @property
    def grace(self) -> timedelta:
        return timedelta(hours=self.grace_hours)

    @property
    def verify_window(self) -> timedelta:
        """How long a new credential may legitimately sit outside Key Vault (I5)."""
        return timedelta(seconds=self.verify_timeout_seconds * 2 + 300)

    def rules(self) -> Rules:
        """The settings the policy decides with (policy.py imports no settings library)."""
        return Rules(self.rotate_before, self.secret_lifetime, self.grace, self.verify_window)

    def run_config(self) -> RunConfig:
        """The settings the engine runs with (the engine imports no settings library)."""
        return RunConfig(
            self.rules(),
            self.key_vault_url,
            self.smtp_host,
            self.smtp_port,
            max_concurrency=self.max_concurrency,
            verify_timeout_seconds=self.verify_timeout_seconds,
            consumer_confirm_timeout_seconds=self.consumer_confirm_timeout_seconds,
            fully_covered=frozenset(a.lower() for a in self.consumers_fully_covered),
            schedule=self.schedule,
        )

    @property
    def key_vault_name(self) -> str:
        """The vault's name as App Service reports it in a reference (`vaultName`): the
        first label of the vault's host (myvault.vault.azure.net -> myvault)."""
        host = self.key_vault_url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        return host.split(".", 1)[0].lower()

    def secret_name(self, app_id: str) -> str:
        return self.secret_name_template.format(app_id=app_id.lower())

    def app_id_of(self, secret_name: str) -> str | None:
        """The app whose secret `secret_name` is, by the template; None for any other name
        (a companion `-username` secret, a secret of someone else's)."""
        prefix, _, suffix = self.secret_name_template.partition("{app_id}")
        name = secret_name.lower()
        if not (name.startswith(prefix.lower()) and name.endswith(suffix.lower())):
            return None
        middle = name[len(prefix) : len(name) - len(suffix)]
        guid = canonical_guid(middle)
        return guid if guid is not None and self.secret_name(guid) == name else None


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Builds settings from `environ` (default: the process environment) or raises
    SettingsError with one line naming each bad setting."""
    try:
        if environ is None:
            return Settings(**overrides)  # type: ignore[arg-type]
        values = {
            key[len(ENV_PREFIX) :].lower(): value
            for key, value in environ.items()
            if key.startswith(ENV_PREFIX) and value.strip()
        }
        return Settings.model_validate({**values, **overrides})
    except ValidationError as exc:
        raise InvalidSettings(_one_line(exc), _one_line(exc, hide_values=True)) from None


class InvalidSettings(SettingsError):
    """Settings that did not validate. `public` is the same line with every value the
    operator gave replaced by ``<value>``: what the HTTP API and health probe may show."""

    def __init__(self, message: str, public: str) -> None:
        super().__init__(message)
        self.public = public


def _one_line(exc: ValidationError, *, hide_values: bool = False) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]).upper() if error["loc"] else ""
        name = f"{ENV_PREFIX}{field}" if field else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        if hide_values:
            message = _without_values(message, error.get("input"))
        problems.append(f"{name}: {message}")
    return "invalid settings: " + "; ".join(problems)


def _without_values(message: str, given: object) -> str:
    """`message` with the given value(s) taken out: quoted forms always, bare forms when
    long enough not to be mistaken for a bound such as "0" or "64"."""
    values = given if isinstance(given, list) else [given]
    for value in (str(v) for v in values if isinstance(v, str | int | float) and str(v)):
        message = message.replace(repr(value), "<value>")
        if len(value) >= 6:
            message = message.replace(value, "<value>")
    return message


def canonical_guid(value: object) -> str | None:
    """A GUID in its canonical form (lower case, hyphenated), or None if `value` is not one
    (the length cap keeps uuid.UUID, which drops every hyphen, from parsing long junk)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _resource_id(value: str, kind: str, *, child: str | None = None) -> dict[str, str] | None:
    """The parts of `value` when it is the ARM id of a `kind` resource (or, with `child`, of
    such a child of one) in a subscription named by its GUID; else None."""
    # azure.mgmt.core loads azure.core: imported here, so a cold start without such a
    # setting does not pay for it.
    from rotation.resource_ids import resource_parts

    parts = resource_parts(value, kind, child=child)
    if parts is None or canonical_guid(parts["subscription"]) != parts["subscription"].lower():
        return None
    return parts


def _guid(value: str) -> str:
    found = canonical_guid(value.strip())
    if found is None:
        raise ValueError(f"{value!r} is not a GUID")
    return found


def _loadable_pem(bundle: Path) -> None:
    """Refuse a bundle no TLS client can load here, at start-up and naming the setting,
    rather than as an SSL traceback from the first client that reads it."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=bundle)
    except (ssl.SSLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{bundle} holds no PEM certificate that TLS can load") from exc
    except OSError as exc:  # a file this process may not read
        raise ValueError(f"{bundle} is not a readable file ({type(exc).__name__})") from exc
