"""GET /healthz: is the database answering, and is the broker reachable?"""

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.celery_app import app

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report, don't raise: this is the page that says what is down
        logger.warning("health: database down: %s", exc)
        checks["database"] = "down"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        logger.warning("health: broker down: %s", exc)
        checks["broker"] = "down"
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if ok else "degraded", **checks}, status=200 if ok else 503)
