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
    return MembershipFactory(organisation=OrganisationFactory(name="Lion City Analytics", jurisdiction="SG"), role=Membership.Role.BUYER)


@pytest.fixture
def guangdong(provider_cn: Membership) -> Dataset:
    dataset = DatasetFactory(provider=provider_cn.organisation, title="Guangdong retail baskets", subjects=150_000,
                             subject_jurisdictions=["CN"], storage_jurisdiction="CN", categories=["purchase_history"],
                             pi_duties_attested=True, currency="USD")
    dataset_file_upload(dataset_id=dataset.id, membership=provider_cn, upload=SimpleUploadedFile("orders.csv", demo_orders_csv()))
    return dataset


@pytest.fixture
def offer_compute(client_for: Callable[[Membership | None], APIClient], provider_cn: Membership) -> Callable[..., dict[str, Any]]:
    def put(dataset: Dataset, **changes: Any) -> dict[str, Any]:
        response = client_for(provider_cn).put(f"/api/v1/datasets/{dataset.id}/compute-offer/", {**OFFER, **changes}, format="json")
        assert response.status_code == 200, response.json()
        return response.json()

    return put
