"""Compute-to-data latency: an aggregate over 1,000,000 rows, end to end, and what the checks cost.

Two measurements:

1. In process (always): the same aggregate on the same prepared DuckDB file, (a) bare — plain
   `duckdb.connect(file).execute(sql)` — and (b) checked — sqlglot check and rewrite, a guarded
   connection (external access off, configuration locked, memory/thread/time limits) and the
   release policy (k-suppression). The difference is the overhead of the checks.
2. Over HTTP (with --url): POST /grants/{id}/queries/ → poll GET /queries/{id}/ until released, with
   the API and a worker serving the compute queues running. The bench uploads a 1,000,000-row file
   as a new version of the demo's Guangdong dataset (as `provider`), buys compute access (as
   `buyer-sg`) and runs the query --runs times. The first run prepares the table (once per file
   version, reported separately); p50/p95 are over the runs after it.

    export ELEMENTA_VAR_DIR=/tmp/benchvar ELEMENTA_THROTTLE_WRITE=100000/min
    .venv/bin/python manage.py migrate -v0 && .venv/bin/python manage.py seed_demo
    .venv/bin/gunicorn config.wsgi -b 127.0.0.1:8125 -w 2 &
    .venv/bin/celery -A config worker -l warning -c 2 --without-mingle --without-gossip -Q elementa,compute.cn &
    .venv/bin/python bench/compute.py --url http://127.0.0.1:8125

Options: --rows N (1,000,000), --runs N (30), --url URL, --json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import duckdb  # noqa: E402

from marketplace.compute.demo import COLUMNS, demo_orders_csv  # noqa: E402
from marketplace.compute.engine import Limits, prepare_table, prepared_meta, prepared_path, run_query  # noqa: E402
from marketplace.compute.release import ReleasePolicy, release  # noqa: E402
from marketplace.compute.sqlcheck import check_query, runnable_sql  # noqa: E402

SQL = ("SELECT province, AVG(basket_size) AS avg_basket, COUNT(*) AS customers FROM orders GROUP BY province ORDER BY "
       "province")
PASSWORD = "elementa-demo"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(samples, 50) * 1000, 1), "p95_ms": round(percentile(samples, 95) * 1000, 1),
            "mean_ms": round(statistics.fmean(samples) * 1000, 1), "runs": len(samples)}


def in_process(csv_path: Path, folder: Path, runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    database = prepare_table(
        csv_path,
        prepared_path(folder, file_sha256="bench", table="orders", columns=list(COLUMNS)),
        table="orders",
        columns=list(COLUMNS),
        identifier="customer_id",
    )
    unit = None if prepared_meta(database).get("identifier_unique") else "customer_id"
    prepare_s = time.perf_counter() - started
    bare: list[float] = []
    bare_counted: list[float] = []
    checked_runs: list[float] = []
    counted_sql = runnable_sql(
        check_query(SQL, {"orders": dict(COLUMNS)}), unit_column="customer_id", fetch_limit=100_000
    )
    limits = Limits(memory_mb=512, threads=2, timeout_seconds=20)
    policy = ReleasePolicy(k=10, max_rows=1000)
    for _ in range(runs):
        t0 = time.perf_counter()
        con = duckdb.connect(str(database), read_only=True)
        con.execute(SQL).fetchall()
        con.close()
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        con = duckdb.connect(str(database), read_only=True)
        con.execute(counted_sql).fetchall()
        con.close()
        bare_counted.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        checked = check_query(SQL, {"orders": dict(COLUMNS)})
        raw = run_query(runnable_sql(checked, unit_column=unit, fetch_limit=100_000), database=database, table="orders",
                        limits=limits)
        release(raw, checked, policy)
        checked_runs.append(time.perf_counter() - t0)
    b, bc, c = summary(bare), summary(bare_counted), summary(checked_runs)
    return {
        "prepare_table_s": round(prepare_s, 2),
        "bare_duckdb": b,
        "bare_duckdb_with_k_count": bc,
        "checked": c,
        "overhead_p50_ms": round(c["p50_ms"] - b["p50_ms"], 1),
        "note": "checked adds the sqlglot check, the engine's contributor count per group (COUNT(*) when preparation "
                "verified "
        "one row per customer, else COUNT(DISTINCT customer_id)), the guarded connection and k-suppression",
    }


def over_http(url: str, csv_bytes: bytes, runs: int) -> dict[str, Any]:
    import requests

    def login(username: str) -> requests.Session:
        session = requests.Session()
        token = session.post(
            f"{url}/api/v1/auth/token/", json={"username": username, "password": PASSWORD}, timeout=30
        ).json()["token"]
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    provider, buyer = login("provider"), login("buyer-sg")
    datasets = buyer.get(f"{url}/api/v1/datasets/", params={"q": "Guangdong"}, timeout=30).json()
    dataset = next(d for d in datasets.get("results", datasets) if d["title"].startswith("Guangdong"))
    upload = provider.post(
        f"{url}/api/v1/datasets/{dataset['id']}/files/", files={"file": ("orders-1m.csv", csv_bytes)}, timeout=300
    )
    assert upload.status_code == 201, upload.text
    trade = buyer.post(
        f"{url}/api/v1/trades/", json={"dataset": dataset["id"], "delivery": "compute", "repeat": True}, timeout=30
    ).json()
    deadline = time.monotonic() + 120
    while buyer.get(f"{url}/api/v1/trades/{trade['id']}/", timeout=30).json()["status"] != "settled":
        assert time.monotonic() < deadline, "the compute trade did not settle"
        time.sleep(0.2)
    grants = buyer.get(f"{url}/api/v1/grants/", params={"dataset": dataset["id"]}, timeout=30).json()
    grant = next(g for g in grants.get("results", grants) if g["trade"] == trade["id"])

    def one() -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        accepted = buyer.post(f"{url}/api/v1/grants/{grant['id']}/queries/", json={"sql": SQL}, timeout=30)
        assert accepted.status_code == 202, accepted.text
        while True:
            body = buyer.get(f"{url}/api/v1/queries/{accepted.json()['id']}/", timeout=30).json()
            if body["status"] not in ("queued", "running"):
                return time.perf_counter() - t0, body
            time.sleep(0.01)

    first, body = one()
    assert body["status"] == "released", body
    samples = [one()[0] for _ in range(runs)]
    return {"first_run_with_table_preparation_s": round(first, 2), "rows_read": body["report"]["rows_read"],
            "end_to_end": summary(samples), "goal": "p50 ≤ 1000 ms"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--url", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    csv_bytes = demo_orders_csv(args.rows)
    report: dict[str, Any] = {
        "rows": args.rows,
        "csv_mb": round(len(csv_bytes) / 1e6, 1),
        "generate_s": round(time.perf_counter() - t0, 1),
        "cpus": os.cpu_count(),
        "sql": SQL,
    }
    with tempfile.TemporaryDirectory(prefix="elementa-compute-bench-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "orders.csv"
        csv_path.write_bytes(csv_bytes)
        report["in_process"] = in_process(csv_path, folder, args.runs)
    if args.url:
        report["http"] = over_http(args.url.rstrip("/"), csv_bytes, args.runs)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.rows:,} rows ({report['csv_mb']} MB CSV), {report['cpus']} CPUs")
    ip = report["in_process"]
    print(f"  prepare table once per file version: {ip['prepare_table_s']} s")
    print(f"  bare DuckDB      p50 {ip['bare_duckdb']['p50_ms']} ms  p95 {ip['bare_duckdb']['p95_ms']} ms")
    print(f"  bare DuckDB with COUNT(DISTINCT customer_id) per group (identifier not known unique) "
          f"p50 {ip['bare_duckdb_with_k_count']['p50_ms']} ms")
    print(f"  checked pipeline p50 {ip['checked']['p50_ms']} ms  p95 {ip['checked']['p95_ms']} ms  "
          f"(overhead over bare DuckDB p50 {ip['overhead_p50_ms']} ms)")
    if "http" in report:
        h = report["http"]
        print(f"  HTTP end to end  p50 {h['end_to_end']['p50_ms']} ms  p95 {h['end_to_end']['p95_ms']} ms  "
              f"(first run, preparing the table: {h['first_run_with_table_preparation_s']} s; goal p50 ≤ 1 s)")


if __name__ == "__main__":
    main()
