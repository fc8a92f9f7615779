"""When a download would be denied or need a regulator's approval and the dataset is offered for
computation, the decision says so (`alternatives: ["compute"]`) and the preview shows both."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketplace.compute.demo import demo_orders_csv
from marketplace.services.dataset_files import dataset_file_upload
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_million(provider_cn):
    """2,000,000 people's personal information: a download needs a CAC security assessment (CN-PI-SA)."""
    dataset = DatasetFactory(
        provider=provider_cn.organisation,
        title="Pearl River delta shoppers",
        subjects=2_000_000,
        subject_jurisdictions=["CN"],
        storage_jurisdiction="CN",
        pi_duties_attested=True,
        currency="USD",
    )
    dataset_file_upload(
        dataset_id=dataset.id, membership=provider_cn, upload=SimpleUploadedFile("orders.csv", demo_orders_csv(200))
    )
    return dataset


def test_a_download_needing_the_regulator_names_compute_as_the_alternative(
    in_process, rulepacks, buyer_sg, two_million, offer_compute
):
    offer_compute(two_million)

    trade = trade_check_compliance(trade_id=trade_create(membership=buyer_sg, dataset_id=two_million.id).id)

    assert trade.decision.outcome == "needs_approval" and trade.decision.decision["alternatives"] == ["compute"]


def test_no_alternative_without_a_compute_offer(in_process, rulepacks, buyer_sg, two_million):
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer_sg, dataset_id=two_million.id).id)

    assert trade.decision.outcome == "needs_approval" and "alternatives" not in trade.decision.decision


def test_the_preview_shows_download_and_compute_side_by_side(
    client_for, rulepacks, buyer_sg, two_million, offer_compute
):
    offer_compute(two_million)

    body = client_for(buyer_sg).get(f"/api/v1/datasets/{two_million.id}/compliance-preview/").json()

    assert body["outcome"] == "needs_approval" and body["alternatives"] == ["compute"]
    assert body["by_delivery"]["download"]["requirements"] == [["cn_security_assessment"]]
    assert body["by_delivery"]["compute"]["outcome"] == "allow_flagged"
    assert "CN-COMPUTE-1" in {f["rule"] for f in body["by_delivery"]["compute"]["findings"]}
    only_compute = (
        client_for(buyer_sg).get(f"/api/v1/datasets/{two_million.id}/compliance-preview/?delivery=compute").json()
    )
    assert only_compute["outcome"] == "allow_flagged" and "by_delivery" not in only_compute
