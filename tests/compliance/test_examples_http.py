"""Every worked example in shared/compliance/examples.md, through POST /api/v1/compliance/evaluate/."""

import pytest

from tests.engine.test_decisions import EXAMPLES, _examples

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not EXAMPLES.exists(), reason="shared/ is not beside the repository")]


@pytest.mark.parametrize(("example", "body", "expected", "requirements"), _examples() if EXAMPLES.exists() else [],
                         ids=lambda v: v if isinstance(v, str) and v.startswith("XB") else "")
def test_worked_example_over_http(client_for, rulepacks, buyer_us, example, body, expected, requirements):
    response = client_for(buyer_us).post("/api/v1/compliance/evaluate/", body, format="json")

    assert response.status_code == 200
    decision = response.json()
    assert (decision["outcome"], decision["requirements"]) == (expected, requirements)
    for finding in decision["findings"]:
        assert finding["rule"] and finding["citation"] and finding["explanation"] and finding["rulepack"] in decision["rulepacks"]
