"""infra/ agrees with the product and with itself: every template parses, the parameter file
fits main.bicep, the Function App gets every setting the product reads (with the product's
defaults), nothing authenticates with a key, and the alerts watch events the engine logs.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from rotation.settings import Settings, load_settings
from rotation.telemetry import logs
from tests.infra import bicep

#: Settings a deployment never sets: endpoints come from ROTATION_CLOUD, the CA is the sandbox's;
#: the lease keeps its 60 s default (the longest finite lease Azure gives; tests go shorter).
NOT_DEPLOYED = {"ca_bundle", "lease_seconds"}
#: Settings whose value the template computes rather than takes from a parameter.
COMPUTED = {
    "key_vault_url",
    "key_vault_resource_id",
    "tenant_id",
    "api_client_id",  # the API registration made by infra, or EXISTING_API_CLIENT_ID
    "cloud",
    "log_format",
    "lease_blob_url",
    "lease_container",
    "key_vault_events",  # from KEY_VAULT_EVENTS, the parameter that makes the subscription
}


def deployed_name(field: str) -> str:
    return f"ROTATION_{field.upper()}"


def resource(path: Path, name: str) -> dict[str, Any]:
    found: dict[str, Any] = bicep.parse(path)["resources"][name]["config"]
    return found


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: p.name)
def test_every_bicep_file_parses(path: Path) -> None:
    assert bicep.parse(path)


def test_parameter_file_has_the_deployment_parameters_shape() -> None:
    document = bicep.parameter_file()

    assert document["$schema"].endswith("/deploymentParameters.json#")
    assert document["contentVersion"] == "1.0.0.0"
    for name, entry in document["parameters"].items():
        assert list(entry) == ["value"], name
        assert isinstance(entry["value"], str), name


def test_parameter_file_sets_only_parameters_main_bicep_declares() -> None:
    declared = bicep.parameters()

    assert set(bicep.parameter_file()["parameters"]) <= set(declared)


def test_every_parameter_without_a_default_comes_from_azd() -> None:
    given = bicep.parameter_file()["parameters"]
    required = [name for name, p in bicep.parameters().items() if p["default"] is None]

    assert sorted(required) == ["environmentName", "location"]
    for name in required:
        variable, default = bicep.azd_value(given[name]["value"])
        assert variable in {"AZURE_ENV_NAME", "AZURE_LOCATION"}
        assert default is None


def test_parameter_file_defaults_equal_the_template_defaults_and_fit_their_bounds() -> None:
    declared = bicep.parameters()
    for name, entry in bicep.parameter_file()["parameters"].items():
        variable, default = bicep.azd_value(entry["value"])
        if variable is None or default is None:
            continue
        param = declared[name]
        value = bicep.convert(param["type"], default)
        assert value == param["default"], f"{name}: file says {value!r}, Bicep {param['default']!r}"
        allowed = bicep.decorator(param, "allowed")
        assert allowed is None or value in allowed, name
        low, high = bicep.decorator(param, "min_value"), bicep.decorator(param, "max_value")
        assert low is None or value >= low, name
        assert high is None or value <= high, name


def test_template_defaults_are_the_products_defaults() -> None:
    """A ROTATION_* variable in the parameter file feeds the same-named app setting; its
    default there must be the product's own default, so a bare `azd up` changes nothing."""
    fields = Settings.model_fields
    for entry in bicep.parameter_file()["parameters"].values():
        variable, default = bicep.azd_value(entry["value"])
        if not variable or not variable.startswith("ROTATION_") or not default:
            continue
        field = fields[variable.removeprefix("ROTATION_").lower()]
        if isinstance(field.default, bool):
            assert str(field.default).lower() == default, variable
        else:
            assert str(field.default) == default or field.default == float(default), variable


def test_the_function_app_gets_every_setting_the_product_reads() -> None:
    expected = {deployed_name(f) for f in Settings.model_fields if f not in NOT_DEPLOYED}

    assert set(bicep.app_settings()) == expected


def test_every_parameter_fed_setting_is_reachable_from_the_parameter_file() -> None:
    variables = {
        bicep.azd_value(e["value"])[0] for e in bicep.parameter_file()["parameters"].values()
    }
    for field in Settings.model_fields:
        if field not in NOT_DEPLOYED | COMPUTED:
            assert deployed_name(field) in variables, field


def test_a_default_deployment_passes_the_products_settings_validation() -> None:
    """What a bare `azd up` hands the app (parameter defaults plus the computed values)
    starts the product: load_settings would stop it with one line otherwise."""
    environ = {
        "ROTATION_KEY_VAULT_URL": "https://kv-abc.vault.azure.net/",
        "ROTATION_TENANT_ID": str(uuid.uuid4()),
        "ROTATION_SUBSCRIPTION_IDS": str(uuid.uuid4()),  # the deployment's own, by default
        "ROTATION_CLOUD": "public",
        "ROTATION_LOG_FORMAT": "json",
    }
    for entry in bicep.parameter_file()["parameters"].values():
        variable, default = bicep.azd_value(entry["value"])
        if variable and variable.startswith("ROTATION_") and default:
            environ.setdefault(variable, default)

    settings = load_settings(environ)

    assert settings.secret_name_template == "acs-smtp-{app_id}"  # the template's fallback
    assert "'acs-smtp-{app_id}'" in bicep.MAIN.read_text(encoding="utf-8")


def test_nothing_in_infra_authenticates_with_a_key_or_a_connection_string() -> None:
    forbidden = re.compile(
        r"listKeys\(|AccountKey=|InstrumentationKey=|SharedAccessSignature|"
        r"FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_RUN_FROM_PACKAGE",
    )
    for path in [*bicep.bicep_files(), bicep.PARAMETERS]:
        code = "\n".join(
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("//")
        )
        assert not forbidden.search(code), path.name


def test_the_locked_down_properties_are_set() -> None:
    modules = bicep.INFRA / "modules"
    site = resource(modules / "functionapp.bicep", "site")
    storage = resource(modules / "storage.bicep", "storage")
    vault = resource(modules / "keyvault.bicep", "vault")
    insights = resource(modules / "monitoring.bicep", "appInsights")

    assert site["identity"] == {"type": "SystemAssigned"}
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["functionAppConfig"]["runtime"] == {
        "name": "python",
        "version": "3.11",
    }
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"] == {"type": "SystemAssignedIdentity"}
    assert storage["properties"]["allowSharedKeyAccess"] is False
    assert storage["properties"]["allowBlobPublicAccess"] is False
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"
    assert vault["properties"]["enableRbacAuthorization"] is True
    assert vault["properties"]["enableSoftDelete"] is True
    assert vault["properties"]["enablePurgeProtection"] is True
    assert insights["properties"]["DisableLocalAuth"] is True


#: What Microsoft's Flex Consumption samples (Azure-Samples/azure-functions-flex-consumption-
#: samples, IaC/bicep/core/host/function.bicep) put in siteConfig: app settings only.
FLEX_SITE_CONFIG = {"appSettings"}
#: siteConfig fields ARM refuses on Flex or Flex does not have: ftpsState fails with error
#: 51021 (Azure/azure-pipelines-tasks#21032); FTP, always-on, remote debugging, the HTTP/2
#: proxy, worker bitness and linuxFxVersion (runtime lives in functionAppConfig) do not exist.
FLEX_REJECTED = {
    "ftpsState",
    "alwaysOn",
    "remoteDebuggingEnabled",
    "http20Enabled",
    "use32BitWorkerProcess",
    "linuxFxVersion",
    "minimumElasticInstanceCount",
    "functionAppScaleLimit",
}


def test_site_config_holds_only_what_flex_consumption_accepts() -> None:
    site = resource(bicep.INFRA / "modules" / "functionapp.bicep", "site")
    config = site["properties"]["siteConfig"]

    assert set(config) == FLEX_SITE_CONFIG
    assert not FLEX_REJECTED & set(config)
    assert (
        "ftpsState"
        not in (bicep.INFRA / "modules" / "functionapp.bicep")
        .read_text()
        .replace("siteConfig.ftpsState", "")
        .split("siteConfig: {")[1]
    )


def test_host_storage_is_reached_by_its_service_uris_as_in_every_cloud() -> None:
    """AzureWebJobsStorage__accountName works in the public cloud only (Azure Functions
    developer guide); the service URIs come from the account's own endpoints."""
    module = bicep.INFRA / "modules" / "functionapp.bicep"
    settings = {s["name"]: s["value"] for s in bicep.variable(module, "hostSettings")}
    params = bicep.parse(bicep.MAIN)["modules"]["functionApp"]["config"]["params"]

    assert "AzureWebJobsStorage__accountName" not in settings
    assert settings["AzureWebJobsStorage__blobServiceUri"] == "storageBlobEndpoint"
    assert settings["AzureWebJobsStorage__tableServiceUri"] == "storageTableEndpoint"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    for param, output in (
        ("storageBlobEndpoint", "blobEndpoint"),
        ("storageTableEndpoint", "tableEndpoint"),
    ):
        accessor = params[param]["operator"]["operands"]
        assert accessor["operand_1"] == "storage"
        assert accessor["operand_2"]["operator"]["operands"]["operand_2"] == output
    storage = (bicep.INFRA / "modules" / "storage.bicep").read_text(encoding="utf-8")
    assert "output tableEndpoint string = storage.properties.primaryEndpoints.table" in storage


def test_nested_deployments_outside_the_environments_group_are_named_per_environment() -> None:
    """A subscription-scope deployment name is bound to its first region: a fixed name
    makes a second environment elsewhere fail with InvalidDeploymentLocation."""
    modules = bicep.parse(bicep.MAIN)["modules"]
    assert len(modules) >= 10
    for name, module in modules.items():
        config = module["config"]
        while "config" in config:  # a condition or a loop wraps the module's body
            config = config["config"]
        if config.get("scope") == "rg":
            continue  # inside this environment's own resource group
        assert "${token}" in config["name"], (name, config["name"])


def test_subscription_ids_are_lower_cased_and_deduplicated() -> None:
    main = bicep.MAIN.read_text(encoding="utf-8")

    assert "var subscriptionIdsLower = [for id in subscriptionIdsGiven: toLower(id)]" in main
    assert "var subscriptionIdList = union(subscriptionIdsLower, [])" in main
    assert "toLower(split(id, '/')[2])" in main


def test_custom_roles_wait_for_the_resource_group() -> None:
    module = bicep.parse(bicep.MAIN)["modules"]["customRoles"]

    assert module["config"]["condition"] == "useCustomRoles"
    assert module["config"]["config"]["dependsOn"] == ["rg"]


def test_graph_permission_is_not_granted_by_default() -> None:
    """A plain subscription Owner can run `azd up`; doctor names the missing grant."""
    param = bicep.parameters()["grantGraphPermission"]

    assert param["default"] is False
    assert bicep.azd_value(
        bicep.parameter_file()["parameters"]["grantGraphPermission"]["value"]
    ) == (
        "GRANT_GRAPH_PERMISSION",
        "false",
    )


def test_vault_name_takes_a_salt_that_keeps_it_a_valid_vault_name() -> None:
    param = bicep.parameters()["vaultNameSalt"]
    main = bicep.MAIN.read_text(encoding="utf-8")

    assert param["default"] == ""
    assert bicep.decorator(param, "max_length") == 8
    assert "'kv-${token}${toLower(vaultNameSalt)}'" in main
    assert len("kv-") + 13 + 8 <= 24  # uniqueString is 13 characters; vault names <= 24


def test_alert_queries_watch_events_and_fields_the_engine_logs() -> None:
    """The alert rules parse the engine's JSON log lines; renaming an event or a field in
    the engine without the alert would silence the alert, so this ties the two together."""
    alerts = (bicep.INFRA / "modules" / "alerts.bicep").read_text(encoding="utf-8")
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted((bicep.ROOT / "rotation").rglob("*.py"))
        if p.name != "events.py"  # the contract names every event; the loggers are wanted
    )
    for event, fields in {
        "run.finished": ("failed", "rotated", "unfinished", "dry_run"),
        "app.expiry_near": ("days_left",),
        "run.failed": ("error",),
    }.items():
        assert f'"{event}"' in alerts
        at = source.find(f'"{event}",')
        assert at >= 0, f"the product no longer logs {event}"
        call = "\n".join(source[at:].splitlines()[:12])  # the logging call's keyword arguments
        for field in fields:
            assert f"body.{field}" in alerts, (event, field)
            assert re.search(rf"\b{field}=", call), (event, field)


#: Every role or app role the templates grant, by the id they use, and its name in the docs.
GRANTED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "de139f84-1756-47ae-9be6-808fbbe84772": "Website Contributor",
    "18a4783c-866b-4cc7-a460-3d5e5662c884": "Application.ReadWrite.OwnedBy",
    "246dd0d5-5bd0-4def-940b-0421030a5b68": "Policy.Read.All",
    "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30": "Application.Read.All",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
}
NOT_ROLES = {
    "00000003-0000-0000-c000-000000000000",  # Microsoft Graph's application id
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46",  # Azure CLI's, pre-authorized for the API's scope
}


def test_deploy_doc_names_every_permission_the_templates_grant() -> None:
    """A role added to the templates without a line in docs/deploy.md fails here."""
    doc = (bicep.ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    guid = re.compile(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'")
    used = {g for path in bicep.bicep_files() for g in guid.findall(path.read_text())}

    assert used - NOT_ROLES == set(GRANTED_ROLES)
    for name in GRANTED_ROLES.values():
        assert f"**{name}**" in doc or f"**Microsoft Graph {name}**" in doc, name
    roles = bicep.INFRA / "modules" / "custom-roles.bicep"
    for variable in (
        "readerActions",
        "definitionReaderActions",
        "secretWriterActions",
        "secretWriterDataActions",
        "consumerCheckerActions",
    ):
        for action in bicep.variable(roles, variable):
            assert "/".join(action.split("/")[-2:]) in doc, action
    for role_name in ("reader", "role definition reader", "secret writer", "consumer checker"):
        assert f"**ACS SMTP rotation {role_name}**" in doc


def test_alert_parsing_reads_the_fields_from_a_real_log_line() -> None:
    """The alert takes the JSON from the first '{' of a trace message; the product's JSON
    log line must carry event and fields at its top level for that to work."""
    alerts = (bicep.INFRA / "modules" / "alerts.bicep").read_text(encoding="utf-8")
    pattern = re.search(r'extract\(@"(?P<regex>[^"]+)", 1, message\)', alerts)
    assert pattern
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        logs.configure("json", stream=stream)
        logs.get_logger("rotation.engine").info("run.finished", failed=2, rotated=1, unfinished=0)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    message = "Host.Function.Console: " + stream.getvalue().strip()  # a prefix must not matter

    body = json.loads(re.search(pattern["regex"], message)[1])  # type: ignore[index]

    assert body["event"] == "run.finished"
    assert (body["failed"], body["rotated"], body["unfinished"]) == (2, 1, 0)
