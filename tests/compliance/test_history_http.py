"""Fail closed and rules with history, through the HTTP API: the dry run refuses a trade date no
rule pack can speak to, decides an earlier date by the law then in force, and a backtest replays
an earlier-dated check under that law."""

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from compliance.models import RulePack
from compliance.services.checks import compliance_check_perform
from tests.engine.conftest import base_facts

pytestmark = pytest.mark.django_db

EVALUATE = "/api/v1/compliance/evaluate/"
PUBLIC = {"data__classification": "public", "data__categories": []}


@pytest.mark.parametrize("trade_date", ["0001-01-01", "2016-03-15"])
def test_a_trade_date_before_every_rule_pack_is_refused(client_for, rulepacks, buyer_us, trade_date):
    response = client_for(buyer_us).post(EVALUATE, base_facts(**PUBLIC, trade_date=trade_date), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "trade_date_out_of_range"
    assert "2016-03-16" in response.json()["fields"]["trade_date"][0]


def test_a_trade_date_too_far_ahead_is_refused(client_for, rulepacks, buyer_us):
    api = client_for(buyer_us)
    too_far = (timezone.localdate() + timedelta(days=367)).isoformat()
    within = (timezone.localdate() + timedelta(days=366)).isoformat()

    refused = api.post(EVALUATE, base_facts(trade_date=too_far), format="json")
    accepted = api.post(EVALUATE, base_facts(trade_date=within), format="json")

    assert refused.status_code == 400 and refused.json()["code"] == "trade_date_out_of_range"
    assert set(refused.json()["fields"]) == {"trade_date"}
    assert accepted.status_code == 200


@override_settings(ELEMENTA_TRADE_DATE_MAX_DAYS_AHEAD=30)
def test_how_far_ahead_is_configurable(client_for, rulepacks, buyer_us):
    response = client_for(buyer_us).post(
        EVALUATE, base_facts(trade_date=(timezone.localdate() + timedelta(days=31)).isoformat()), format="json"
    )

    assert response.status_code == 400 and response.json()["code"] == "trade_date_out_of_range"


def test_iran_before_the_current_sanctions_version_is_denied(client_for, rulepacks, buyer_us):
    response = client_for(buyer_us).post(
        EVALUATE, base_facts(**PUBLIC, buyer__jurisdiction="IR", trade_date="2025-06-01"), format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "deny"
    assert [(f["rule"], f["rulepack"]) for f in body["findings"] if f["regime"] == "SANCTIONS"] == [
        ("SAN-US-1", "sanctions@2022.10.06")
    ]


def test_without_a_screen_in_force_the_dry_run_is_review_not_allow(client_for, rulepacks, buyer_us):
    # every sanctions version before 2025-07-01 is gone (a database that never had them): nothing screens 2025-06-01
    RulePack.objects.filter(regime="SANCTIONS").exclude(version="2025.07.01").update(status=RulePack.Status.DRAFT)

    response = client_for(buyer_us).post(
        EVALUATE, base_facts(**PUBLIC, buyer__jurisdiction="IR", trade_date="2025-06-01"), format="json"
    )

    body = response.json()
    assert response.status_code == 200 and body["outcome"] == "review"
    [finding] = [f for f in body["findings"] if f["regime"] == "SANCTIONS"]
    assert finding["rule"] == "BASE-NO-PACK" and finding["rulepack"] == "sanctions@2025.07.01"
    assert (
        finding["explanation"].startswith("no rule pack in force on 2025-06-01 for SANCTIONS") and finding["citation"]
    )


@pytest.mark.parametrize(("trade_date", "outcome", "pack"), [
    ("2019-06-01", "allow", "eu@2019.01.23"),            # SCCs alone sufficed before Schrems II
    ("2021-06-01", "needs_mechanism", "eu@2020.07.16"),  # SCCs and a transfer impact assessment
])
def test_the_dry_run_of_an_earlier_date_applies_the_law_then_in_force(
    client_for, rulepacks, buyer_us, trade_date, outcome, pack
):
    response = client_for(buyer_us).post(EVALUATE, base_facts(buyer__jurisdiction="US", trade_date=trade_date,
                                                              mechanisms=[{"code": "eu_scc"}]), format="json")

    assert response.status_code == 200
    assert response.json()["outcome"] == outcome and pack in response.json()["rulepacks"]


def test_a_backtest_replays_an_earlier_dated_check_under_the_law_then_in_force(client_for, rulepacks, officer):
    """A 2019 sale to a US importer under SCCs was allowed then (eu@2019.01.23). A draft sanctions
    version that puts the United States under review changes it; the old side is the 2019 law."""
    compliance_check_perform(
        subject_type="trade",
        subject_id=uuid.uuid4(),
        raw_facts=base_facts(buyer__jurisdiction="US", trade_date="2019-06-01", mechanisms=[{"code": "eu_scc"}]),
    )
    api = client_for(officer)
    current = RulePack.objects.get(regime="SANCTIONS", version="2025.07.01")
    draft = api.post("/api/v1/rulepacks/", {"based_on": str(current.id), "version": "2026.12.01"}, format="json").json()
    content = draft["content"]
    content["parameters"]["sectoral_review"] = [*content["parameters"]["sectoral_review"], "US"]
    assert (
        api.patch(
            f"/api/v1/rulepacks/{draft['id']}/",
            {"content": content | {"effective_from": timezone.localdate().isoformat()}},
            format="json",
        ).status_code
        == 200
    )

    response = api.post(f"/api/v1/rulepacks/{draft['id']}/backtest/", {"scope": "period"}, format="json")

    assert response.status_code == 201, response.json()
    [item] = response.json()["items"]
    assert item["as_of"] == "2019-06-01"
    assert item["old"] == {"outcome": "allow", "requirements": []}
    assert item["new"]["outcome"] == "review"
    assert {f["rule"] for f in item["changed_findings"]} == {"SAN-CLEAR", "SAN-RU-1"}
