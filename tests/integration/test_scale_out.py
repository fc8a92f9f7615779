"""Scaling out: task families on their own queues, each served by its own worker process.

Two workers share nothing but the broker and the database: one serves compliance checks (and the
audit, notification and screening work they cause), the other settlements and webhooks. A trade
that an officer approves is checked by the first and settled by the second."""

import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from tests.conftest import start_worker, stop_worker, wait_for_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def received(log: Path, task: str) -> int:
    return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] received", log.read_text()))


def test_checks_and_settlements_run_on_separate_worker_pools(rulepacks, client_for, buyer_eu, officer, eu_health):
    tag = uuid.uuid4().hex[:8]
    checks, settling = f"checks-{tag}", f"settlement-{tag}"
    queues = {"checks": checks, "audit": checks, "notifications": checks, "screening": checks,
              "settlement": settling, "webhooks": settling}
    env = {f"ELEMENTA_QUEUE_{family.upper()}": queue for family, queue in queues.items()}
    logs = Path(settings.VAR_DIR)
    checker = start_worker([checks], name="checks", env=env, log_name=f"{checks}.log")
    settler = start_worker([settling], name="settlement", env=env, log_name=f"{settling}.log")
    try:
        with override_settings(ELEMENTA_TASK_QUEUES=queues):
            response = client_for(buyer_eu).post("/api/v1/trades/", {"dataset": str(eu_health.id)}, format="json")
            assert response.status_code == 201, response.json()
            trade_id = response.json()["id"]
            assert wait_for_status(trade_id, {"in_review"}).status == "in_review"

            approved = client_for(officer).post(
                f"/api/v1/trades/{trade_id}/approve/", {"reason": "Art. 9(2)(a) consent records reviewed"},
                format="json",
            )
            assert approved.status_code == 200, approved.json()
            assert wait_for_status(trade_id, {"settled"}).settled_at is not None
    finally:
        stop_worker(checker)
        stop_worker(settler)

    checker_log, settler_log = logs / f"{checks}.log", logs / f"{settling}.log"
    assert received(checker_log, "marketplace.trades_check_drain") == 1  # the check drain took the trade
    assert received(checker_log, "marketplace.trade_settle") == 0
    assert received(settler_log, "marketplace.trade_settle") == 1
    assert received(settler_log, "marketplace.trade_check_compliance") == 0
    assert received(settler_log, "marketplace.trades_check_drain") == 0
