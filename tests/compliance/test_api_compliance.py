"""The dry run, the buyer's preview, and rule-pack loading."""

import pytest

from compliance.errors import RulePackImmutableError
from compliance.models import ComplianceCheck, RulePack
from compliance.services.rulepacks import rulepack_load, rulepack_load_shipped
from tests.engine.conftest import base_facts

pytestmark = pytest.mark.django_db


def test_evaluate_returns_the_contract_decision(client_for, rulepacks, buyer_us):
    response = client_for(buyer_us).post(
        "/api/v1/compliance/evaluate/", base_facts(buyer__jurisdiction="US"), format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "needs_mechanism" and body["requirements"] == [["eu_scc"], ["eu_tia"]]
    assert {"rule", "regime", "outcome", "requirements", "explanation", "citation", "rulepack", "four_eyes"} == set(
        body["findings"][0]
    )
    assert body["rulepacks"] == ["sanctions@2025.07.01", "eu@2026.01.26"]
    assert not ComplianceCheck.objects.exists()  # a dry run records nothing


def test_evaluate_names_every_bad_field(client_for, rulepacks, buyer_us):
    facts = base_facts(buyer__jurisdiction="XX", data__classification="secret", mechanisms=[{"code": "nope"}])

    response = client_for(buyer_us).post("/api/v1/compliance/evaluate/", facts, format="json")

    assert response.status_code == 400 and response.json()["code"] == "invalid_facts"
    assert {"buyer.jurisdiction", "data.classification", "mechanisms[0].code"} <= set(response.json()["fields"])


@pytest.mark.parametrize("body", [[], "text", {"data": "x", "buyer": 1}])
def test_evaluate_refuses_non_objects_without_a_500(client_for, rulepacks, buyer_us, body):
    response = client_for(buyer_us).post("/api/v1/compliance/evaluate/", body, format="json")

    assert response.status_code == 400


def test_buyer_preview_uses_its_own_organisation_and_changes_nothing(
    client_for, rulepacks, buyer_us, provider_eu, eu_personal
):
    response = client_for(buyer_us).get(f"/api/v1/datasets/{eu_personal.id}/compliance-preview/")
    to_swiss = client_for(buyer_us).get(f"/api/v1/datasets/{eu_personal.id}/compliance-preview/?destination=CH")

    assert response.status_code == 200 and response.json()["outcome"] == "needs_mechanism"
    # a US buyer saying the data goes to Switzerland is still a US buyer: the declaration adds law, removes none
    assert to_swiss.json()["outcome"] == "needs_mechanism"
    assert client_for(provider_eu).get(f"/api/v1/datasets/{eu_personal.id}/compliance-preview/").status_code == 403
    assert (
        client_for(buyer_us).get(f"/api/v1/datasets/{eu_personal.id}/compliance-preview/?destination=ZZ").status_code
        == 400
    )
    assert not ComplianceCheck.objects.exists()


def test_shipped_packs_load_once(rulepacks):
    count = RulePack.objects.count()

    results = rulepack_load_shipped()

    assert RulePack.objects.count() == count >= 4
    assert not any(created for _, created in results)


def test_a_loaded_version_never_changes(rulepacks):
    pack = RulePack.objects.get(regime="SANCTIONS", version="2025.07.01")
    altered = {**pack.content, "title": "Quietly edited"}

    with pytest.raises(RulePackImmutableError):
        rulepack_load(content=altered)
    pack.refresh_from_db()
    assert pack.content["title"] == "Sanctions and embargo screen"


def test_rulepacks_are_listed_for_officers_only(client_for, rulepacks, officer, buyer_us):
    assert client_for(buyer_us).get("/api/v1/rulepacks/").status_code == 403
    refs = {p["ref"] for p in client_for(officer).get("/api/v1/rulepacks/?page_size=100").json()["results"]}
    assert {"sanctions@2025.07.01", "eu@2026.01.26", "eu@2023.07.10", "baseline@2026.11.01"} <= refs
