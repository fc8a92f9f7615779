"""The worked cases of compliance/rulepacks/cases/ (those given as complete request bodies), through
POST /api/v1/compliance/evaluate/:
the API decides as the engine does, and every finding names its rule, citation, explanation and pack."""

import pytest

from tests.engine.cases import load_cases

pytestmark = pytest.mark.django_db

CASES = [c for c in load_cases() if c.worked and not c.parameters]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_over_http(client_for, rulepacks, buyer_us, case):
    response = client_for(buyer_us).post("/api/v1/compliance/evaluate/", case.body, format="json")

    assert response.status_code == 200
    decision = response.json()
    assert (decision["outcome"], decision["requirements"]) == (case.outcome, case.requirements)
    assert [r for r in case.rules if r not in [f["rule"] for f in decision["findings"]]] == []
    for finding in decision["findings"]:
        assert (
            finding["rule"]
            and finding["citation"]
            and finding["explanation"]
            and finding["rulepack"] in decision["rulepacks"]
        )
