"""A small demo tenant for `python -m sandbox`: a few ACS senders in the states that matter.

- ``billing-app``: its secret expires in 12 days, so the rotator's next run rotates it;
- ``alerts-app``: found through an ACS SMTP Username, secret fresh (nothing to do);
- ``reports-app``: both username forms, secret 90 days old;
- ``legacy-app``: the rotator is *not* an owner, so rotating it shows Graph's 403 and the
  operator hint (`az ad app owner add ...`);
- a Function App's managed identity and another tenant's multi-tenant app, both holding
  Contributor on the resource: shown as skipped, with the reason, never failed.

Consumer sites (App Service Key Vault references, for ROTATION_CONSUMERS_ENABLED):
``billing-web`` and its ``staging`` slot read billing-app's password and username (both
reference forms); the Functions app ``reports-func`` reads reports-app's.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.seed import Sender
from sandbox.server import Sandbox

SENDER_ADDRESS = "DoNotReply@contoso.example"


def seed_demo(sandbox: Sandbox, *, unowned: bool = True) -> list[Sender]:
    """Seeds the demo senders on one ACS resource and returns them (`unowned=False`
    leaves out legacy-app, for a demo in which every rotation succeeds)."""
    resource = sandbox.add_acs_resource("acs-contoso", senders=[SENDER_ADDRESS])
    senders = [
        sandbox.add_sender(resource, name="billing-app", lifetime=timedelta(days=12)),
        sandbox.add_sender(resource, name="alerts-app", via="smtp-username"),
        sandbox.add_sender(resource, name="reports-app", via="both", lifetime=timedelta(days=90)),
    ]
    if unowned:
        senders.append(sandbox.add_sender(resource, name="legacy-app", owned=False))
    sandbox.add_managed_identity_holder(resource)
    sandbox.add_other_tenant_holder(resource)
    billing, _, reports = senders[:3]
    sandbox.add_consumer_site("billing-web", demo_secret_name(billing.client_id), form="uri")
    sandbox.add_consumer_site(
        "billing-web", demo_secret_name(billing.client_id), form="name", slot="staging"
    )
    sandbox.add_consumer_site(
        "reports-func", demo_secret_name(reports.client_id), form="name", kind="functionapp"
    )
    return senders


def demo_secret_name(app_id: str) -> str:
    """The product's default ROTATION_SECRET_NAME_TEMPLATE, acs-smtp-{app_id}."""
    return f"acs-smtp-{app_id.lower()}"
