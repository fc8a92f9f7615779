"""Compute-to-data fixtures: the Guangdong orders table offered for computation, and a buyer in Singapore."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from marketplace.compute.demo import COLUMNS, demo_orders_csv
from marketplace.models import Dataset, Membership
from marketplace.services.dataset_files import dataset_file_upload
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

OFFER: dict[str, Any] = {"table_name": "orders", "columns": COLUMNS, "min_group_size": 10, "max_result_rows": 100,
                         "price": "800.00", "currency": "USD", "pricing": "per_period", "term_days": 30}


@pytest.fixture
def buyer_sg(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Lion City Analytics", jurisdiction="SG"),
        role=Membership.Role.BUYER,
    )


@pytest.fixture
def guangdong(provider_cn: Membership) -> Dataset:
    dataset = DatasetFactory.create(
        provider=provider_cn.organisation,
        title="Guangdong retail baskets",
        subjects=150_000,
        subject_jurisdictions=["CN"],
        storage_jurisdiction="CN",
        categories=["purchase_history"],
        pi_duties_attested=True,
        currency="USD",
        with_file=False,  # its file is the orders table, uploaded next as version 1
    )
    dataset_file_upload(
        dataset_id=dataset.id, membership=provider_cn, upload=SimpleUploadedFile("orders.csv", demo_orders_csv())
    )
    return dataset


@pytest.fixture
def offer_compute(
    client_for: Callable[[Membership | None], APIClient], provider_cn: Membership
) -> Callable[..., dict[str, Any]]:
    def put(dataset: Dataset, **changes: Any) -> dict[str, Any]:
        response = client_for(provider_cn).put(
            f"/api/v1/datasets/{dataset.id}/compute-offer/", {**OFFER, **changes}, format="json"
        )
        assert response.status_code == 200, response.json()
        return response.json()

    return put


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, no_trade_work: None) -> None:
    """Drive the services in this process: nothing is published for a worker (the tests call the
    compliance check, settlement and query runs themselves)."""
    from marketplace.services import compute

    monkeypatch.setattr(compute, "compute_query_enqueue", lambda *args, **kwargs: None)


def settled_compute_grant(buyer: Membership, dataset: Dataset, **trade: Any) -> Any:
    """Buy compute access and take it through the real compliance check and settlement services."""
    from marketplace.models import AccessGrant
    from marketplace.services.settlement import trade_settle
    from marketplace.services.trade_compliance import trade_check_compliance
    from marketplace.services.trades import trade_create

    bought = trade_create(membership=buyer, dataset_id=dataset.id, delivery="compute", **trade)
    checked = trade_check_compliance(trade_id=bought.id)
    assert checked is not None and checked.status == "approved", (
        checked and checked.decision and checked.decision.decision
    )
    trade_settle(trade_id=bought.id)
    return AccessGrant.objects.get(trade=bought)
