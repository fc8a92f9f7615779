"""A check's cost must not grow with the exporter's history: the same check-and-settle with 1,000
and with 1,000,000 earlier exports by the exporter, side by side.

Runs in-process against the database DATABASE_URL names (PostgreSQL; never a test database): it
migrates it, seeds the demo organisations if they are missing, gives the demo retail dataset's
provider N committed export records spread over the past year (one INSERT ... SELECT
generate_series; the database's triggers keep the running tallies, as they do for real exports),
then opens M trades through the purchase service and times the worker's service,
`trade_check_compliance(settle=True)`, on each: this process's CPU (Python), the PostgreSQL
backend's CPU (from /proc), wall time and statements. Then it adds export records up to the next N
and does it again.

    createdb -h 127.0.0.1 -U postgres elementa_history_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/elementa_history_bench ELEMENTA_VAR_DIR=/tmp/benchvar-history \\
      .venv/bin/python bench/history.py          # --sizes 1000,1000000 --trades 200 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("ELEMENTA_NOTIFY_DRAIN_SECONDS", "0")  # nothing is published: no worker here

from common import cpu_seconds  # noqa: E402


def setup() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql" or connection.settings_dict["NAME"].startswith("test"):
        raise SystemExit("bench/history.py needs a PostgreSQL scratch database in DATABASE_URL (not a test database)")
    call_command("migrate", verbosity=0)
    from marketplace.models import Dataset

    if not Dataset.objects.filter(title__icontains="retail", provider__jurisdiction="DE").exists():
        call_command("seed_demo", verbosity=0)


def fixture() -> tuple[Any, Any]:
    """The demo buyer's membership (funded for the run) and the German retail dataset it buys."""
    from marketplace.models import Dataset, Membership, Wallet

    dataset = Dataset.objects.filter(title__icontains="retail", provider__jurisdiction="DE",
                                     status="published").order_by("created_at").first()
    membership = Membership.objects.select_related("organisation", "user").get(user__username="buyer-eu")
    if dataset is None:
        raise SystemExit("the demo retail dataset is missing: run `manage.py seed_demo`")
    wallet, _ = Wallet.objects.get_or_create(organisation_id=membership.organisation_id, currency=dataset.currency)
    Wallet.objects.filter(pk=wallet.pk).update(available=Decimal("900000000000.00"))
    Wallet.objects.get_or_create(organisation_id=dataset.provider_id, currency=dataset.currency)
    return membership, dataset


def history_size(exporter_id: Any) -> int:
    from compliance.models import ExportRecord

    return ExportRecord.objects.filter(exporter_id=exporter_id).count()


def grow_history(exporter_id: Any, buyer_ids: list[Any], to: int, chunk: int = 20_000) -> float:
    """Add committed export records until the exporter has `to`, `chunk` per transaction (each fires
    the tally triggers, as real exports do), then VACUUM ANALYZE both tables, as autovacuum would have
    done over the days those exports took; seconds taken."""
    from django.db import connection

    from compliance.models import ExportRecord, ExportTally

    started = time.perf_counter()
    missing = to - history_size(exporter_id)
    with connection.cursor() as cursor:
        while missing > 0:
            cursor.execute(
                f"""INSERT INTO {ExportRecord._meta.db_table}
                    (id, exporter_id, buyer_id, subject_type, subject_id, date, classification, categories,
                     subjects, state, created_at, updated_at)
                SELECT gen_random_uuid(), %(exporter)s, (%(buyers)s::uuid[])[1 + n %% %(nbuyers)s], 'history',
                       gen_random_uuid(), CURRENT_DATE - (n %% 365), CASE WHEN n %% 3 = 0 THEN 'personal'
                       ELSE 'non_personal' END, '["contact"]'::jsonb, 1 + n %% 50, 'committed', now(), now()
                FROM generate_series(1, %(rows)s) AS n""",
                {"exporter": exporter_id, "buyers": [str(b) for b in buyer_ids], "nbuyers": len(buyer_ids),
                 "rows": min(chunk, missing)},
            )
            missing -= chunk
        for model in (ExportRecord, ExportTally):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    return time.perf_counter() - started


def measure(membership: Any, dataset: Any, trades: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marketplace.services.trade_compliance import trade_check_compliance
    from marketplace.services.trades import trade_create

    ids = [trade_create(membership=membership, dataset_id=dataset.id, repeat=True).id for _ in range(trades + 5)]
    for trade_id in ids[:5]:  # warm the process's caches (rule packs, subscriptions)
        trade_check_compliance(trade_id=trade_id, settle=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    walls: list[float] = []
    statements: list[int] = []
    statuses: dict[str, int] = {}
    py0, db0 = time.process_time(), cpu_seconds(backend)
    for trade_id in ids[5:]:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            trade = trade_check_compliance(trade_id=trade_id, settle=True)
        walls.append(time.perf_counter() - started)
        statements.append(len([q for q in queries.captured_queries
                               if "SAVEPOINT" not in q["sql"] and q["sql"] not in ("BEGIN", "COMMIT")]))
        status = trade.status if trade is not None else "gone"
        statuses[status] = statuses.get(status, 0) + 1
    py, db = time.process_time() - py0, cpu_seconds(backend) - db0
    return {
        "trades": trades, "statuses": statuses,
        "python_cpu_ms": round(py / trades * 1000, 2), "postgres_cpu_ms": round(db / trades * 1000, 2),
        "wall_p50_ms": round(statistics.median(walls) * 1000, 2),
        "wall_p95_ms": round(sorted(walls)[int(len(walls) * 0.95) - 1] * 1000, 2),
        "statements": max(statements),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,1000000", help="export-history sizes to compare, ascending")
    parser.add_argument("--trades", type=int, default=200, help="checks timed at each size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    setup()
    from marketplace.models import Organisation

    membership, dataset = fixture()
    others = list(Organisation.objects.exclude(pk=dataset.provider_id).values_list("pk", flat=True)[:20])
    rows = []
    for size in sizes:
        seconds = grow_history(dataset.provider_id, others, size)
        result = {"history": history_size(dataset.provider_id), "grow_s": round(seconds, 1),
                  **measure(membership, dataset, args.trades)}
        rows.append(result)
    load = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps({"rows": rows, "load_average": load}))
        return 0
    print(f"check-and-settle of an allowed trade (trade_check_compliance, settle=True), {args.trades} trades per "
          f"size, in-process on PostgreSQL; load average at the end {load}")
    print("earlier exports | python CPU ms | PostgreSQL CPU ms | wall p50 / p95 ms | statements | statuses | "
          "history built in")
    for r in rows:
        print(f"{r['history']:,} | {r['python_cpu_ms']} | {r['postgres_cpu_ms']} | {r['wall_p50_ms']} / "
              f"{r['wall_p95_ms']} | {r['statements']} | {r['statuses']} | {r['grow_s']} s")
    first, last = rows[0], rows[-1]
    total = (last["python_cpu_ms"] + last["postgres_cpu_ms"]) / max(first["python_cpu_ms"] + first["postgres_cpu_ms"],
                                                                      1e-9)
    print(f"ratio of CPU per check, {last['history']:,} vs {first['history']:,} earlier exports: {total:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
