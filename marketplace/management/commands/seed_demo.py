"""Create the demo marketplace (organisations, users, datasets and rule packs; see README.md). Idempotent: running it
again changes nothing."""

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace.compute.demo import COLUMNS, demo_orders_csv
from marketplace.models import ComputeOffer, Dataset, Membership, Organisation
from marketplace.services.compute import compute_offer_put
from marketplace.services.dataset_files import dataset_file_upload
from marketplace.services.datasets import dataset_create, dataset_publish
from marketplace.services.deposits import deposit_record

PASSWORD = "elementa-demo"

ORGANISATIONS = [
    # name, jurisdiction, extra fields
    ("Huaxia Retail Data Co.", "CN", {}),
    ("Rhein Data GmbH", "DE", {}),
    ("Acme Analytics Inc.", "US", {}),
    ("Berlin Insights GmbH", "DE", {}),
    ("Lion City Labs Pte. Ltd.", "SG", {}),
    ("Volga Research LLC", "RU", {}),
    ("Elementa Platform", "DE", {"is_operator": True}),
]

USERS = [
    ("provider", "Huaxia Retail Data Co.", Membership.Role.PROVIDER),
    ("provider-eu", "Rhein Data GmbH", Membership.Role.PROVIDER),
    ("buyer", "Acme Analytics Inc.", Membership.Role.BUYER),
    ("buyer-eu", "Berlin Insights GmbH", Membership.Role.BUYER),
    ("buyer-sg", "Lion City Labs Pte. Ltd.", Membership.Role.BUYER),
    ("buyer-ru", "Volga Research LLC", Membership.Role.BUYER),
    ("officer", "Elementa Platform", Membership.Role.OFFICER),
    ("officer-2", "Elementa Platform", Membership.Role.OFFICER),  # four eyes: a second, different officer
]

DATASETS = [
    ("Rhein Data GmbH", {
        "title": "German online retail customers 2026",
        "description": "Contact details and twelve months of purchase history of German online shoppers.",
        "subject_jurisdictions": ["DE"], "storage_jurisdiction": "DE", "classification": "personal",
        "categories": ["contact", "purchase_history"], "subjects": 50000,
        "price": Decimal("1200.00"), "currency": "EUR", "licence": {"term_days": 365, "resale": False},
    }),
    ("Rhein Data GmbH", {
        "title": "EU wholesale electricity prices (hourly)",
        "description": "Public day-ahead electricity prices for EU bidding zones, 2015 to date.",
        "subject_jurisdictions": ["DE"], "storage_jurisdiction": "DE", "classification": "public",
        "categories": ["statistics"], "subjects": 0, "price": Decimal("99.00"), "currency": "EUR",
        "licence": {"term_days": 365, "resale": True},
    }),
    ("Rhein Data GmbH", {
        "title": "German wearable heart-rate telemetry",
        "description": "Pseudonymised heart-rate series from consenting wearable users in Germany.",
        "subject_jurisdictions": ["DE"], "storage_jurisdiction": "DE", "classification": "sensitive_personal",
        "categories": ["health", "telemetry"], "subjects": 8000, "de_identified": True,
        "price": Decimal("4800.00"), "currency": "EUR", "licence": {"term_days": 180, "resale": False},
    }),
    ("Huaxia Retail Data Co.", {
        "title": "Shanghai retail panel 2026",
        "description": "Loyalty-card shoppers in Shanghai: contact details and purchase history.",
        "subject_jurisdictions": ["CN"], "storage_jurisdiction": "CN", "classification": "personal",
        "categories": ["contact", "purchase_history"], "subjects": 50000, "pi_duties_attested": True,
        "price": Decimal("1200.00"), "currency": "USD", "licence": {"term_days": 365, "resale": False},
    }),
    ("Huaxia Retail Data Co.", {
        "title": "Guangdong mobile subscribers 2026",
        "description": "Contact details and plan types of 150,000 mobile subscribers in Guangdong.",
        "subject_jurisdictions": ["CN"], "storage_jurisdiction": "CN", "classification": "personal",
        "categories": ["contact", "profile"], "subjects": 150000, "pi_duties_attested": True,
        "price": Decimal("5000.00"), "currency": "USD", "licence": {"term_days": 365, "resale": False},
    }),
    ("Huaxia Retail Data Co.", {
        "title": "Yangtze river freight rates",
        "description": "Published weekly container freight rates on the Yangtze.",
        "subject_jurisdictions": ["CN"], "storage_jurisdiction": "CN", "classification": "public",
        "categories": ["statistics"], "subjects": 0, "price": Decimal("250.00"), "currency": "USD",
        "licence": {"term_days": 365, "resale": True},
    }),
    ("Huaxia Retail Data Co.", {
        "title": "East China logistics hub throughput",
        "description": "Daily throughput of logistics hubs, notified to the regulator as important data.",
        "subject_jurisdictions": ["CN"], "storage_jurisdiction": "CN", "classification": "important",
        "categories": ["statistics"], "subjects": 0, "price": Decimal("9000.00"), "currency": "USD",
        "licence": {"term_days": 90, "resale": False},
    }),
]


# Offered for computation as well as download: a deterministic synthetic orders table (5,000
# customers) that a buyer can aggregate where it is stored (docs/compute.md).
COMPUTE_OFFERS = {
    "Guangdong mobile subscribers 2026": {
        "table_name": "orders", "columns": COLUMNS, "min_group_size": 10, "max_result_rows": 1000,
        "price": Decimal("800.00"), "currency": "USD", "pricing": "per_period", "term_days": 30,
    },
}


def _sample_file(title: str) -> SimpleUploadedFile:
    """A small synthetic CSV (no real person in it) so the demo has something to download."""
    if title in COMPUTE_OFFERS:
        return SimpleUploadedFile("guangdong-orders.csv", demo_orders_csv(5000), content_type="text/csv")
    rows = ["record_id,region,value"] + [
        f"{i},{['north', 'south', 'east', 'west'][i % 4]},{(i * 37) % 1000}" for i in range(1, 201)
    ]
    name = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-") + ".csv"
    return SimpleUploadedFile(name, ("\n".join(rows) + "\n").encode(), content_type="text/csv")


class Command(BaseCommand):
    help = "Seed demo organisations, users (password elementa-demo), published datasets and rule packs."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        call_command("load_rulepacks", stdout=self.stdout)
        orgs = {}
        for name, jurisdiction, extra in ORGANISATIONS:
            orgs[name], _ = Organisation.objects.get_or_create(
                name=name, defaults={"jurisdiction": jurisdiction, "headquarters": jurisdiction, **extra}
            )
        User = get_user_model()
        for username, org_name, role in USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@demo.elementa.example"}
            )
            if created:
                user.set_password(PASSWORD)
                user.is_staff = role == Membership.Role.OFFICER  # officers also use the admin workspace
                user.save()
            Membership.objects.update_or_create(user=user, defaults={"organisation": orgs[org_name], "role": role})
        for _, org_name, role in USERS:
            org = orgs[org_name]
            if role == Membership.Role.BUYER and not org.wallets.exists():
                for currency in ("EUR", "USD"):
                    deposit_record(
                        organisation=org,
                        amount=Decimal("50000.00"),
                        currency=currency,
                        actor_label="system:seed_demo",
                        note="demo funds",
                    )
        for org_name, values in DATASETS:
            provider = orgs[org_name]
            if Dataset.objects.filter(provider=provider, title=values["title"]).exists():
                continue
            membership = Membership.objects.filter(organisation=provider).first()
            assert membership is not None
            dataset = dataset_create(membership=membership, values=values, actor=membership.user)
            # A listing is published with its data: the file first (publishing without one is refused).
            dataset_file_upload(dataset_id=dataset.id, membership=membership, upload=_sample_file(dataset.title))
            dataset_publish(dataset_id=dataset.id, actor=membership.user)
        for title, offer in COMPUTE_OFFERS.items():
            offered = Dataset.objects.filter(title=title).first()
            if offered is not None and not ComputeOffer.objects.filter(dataset=offered).exists():
                membership = Membership.objects.filter(organisation_id=offered.provider_id).first()
                assert membership is not None
                compute_offer_put(dataset_id=offered.id, membership=membership, values=offer)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (password elementa-demo):"))
        for username, org_name, role in USERS:
            self.stdout.write(f"  {username:<12} {role:<9} {org_name}")
