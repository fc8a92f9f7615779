"""Schemathesis against /api/schema/, in process: every operation, bounded examples, the
stateless checks. No 5xx, and every response matches what the schema says.

Runs as a signed-in buyer and as an officer (the officers' endpoints answer 403 to a buyer, so only
the officer run reaches their serializers).
"""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application
from marketplace.models import Membership
from marketplace.services.sessions import session_create
from tests.factories import MembershipFactory, OrganisationFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
pytestmark = pytest.mark.schemathesis  # CI runs it once, in the first pass (.ci/run)


@pytest.fixture(autouse=True)
def keep_the_test_connection() -> Iterator[None]:
    """The WSGI handler closes "old" connections around each request, which would close the test's
    open transaction; Django's own test client disconnects these receivers in the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(params=["buyer", "officer"])
def auth_headers(request: pytest.FixtureRequest, db: None) -> dict[str, str]:
    if request.param == "officer":
        member = MembershipFactory.create(
            organisation=OrganisationFactory.create(name="Platform", is_operator=True), role=Membership.Role.OFFICER
        )
    else:
        member = MembershipFactory.create(
            organisation=OrganisationFactory.create(name="Berlin Insights", jurisdiction="DE"),
            role=Membership.Role.BUYER,
        )
    _, token = session_create(user=member.user)
    return {"Authorization": f"Bearer {token}"}


# Every other check is on, response_schema_conformance, status_code_conformance (each operation
# documents every error it can answer: config/openapi.py), content_type_conformance and
# response_headers_conformance among them: an undocumented status, code or shape fails the test.
# Two stay off, for reasons the schema cannot express:
# negative_data_rejection (ST201): Django/DRF are lenient where the schema is strict: an empty query
#   filter is ignored (`?provider=`, `?until=`, `?transaction__trade=` answer 200) and `?page_size=null`
#   falls back to the default page size. Not a leak and not a 5xx.
# positive_data_acceptance (ST202): the schema cannot say that a username/password pair must exist
#   (POST /auth/token/ → 400 invalid_credentials) nor the cross-field rules of the evaluate facts, rule
#   packs and trades: schema-valid bodies get a 400 by design.
EXCLUDED_CHECKS = [negative_data_rejection, positive_data_acceptance]


# Real bugs found by this suite, left to the app's owners (the test turns green — XPASS — once fixed):
@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api(case: Any, auth_headers: dict[str, str], request: pytest.FixtureRequest) -> None:
    case.call_and_validate(headers=auth_headers, excluded_checks=EXCLUDED_CHECKS)
