"""Catalogue list and search throughput (req/s, p50/p95/p99, statements and CPU per request) on N published
listings, against a real gunicorn, with a baseline endpoint measured in the same run.

It works on the database DATABASE_URL names (never a test database): migrates it, builds N published
listings once (PostgreSQL: COPY with the table's secondary indexes dropped and rebuilt; SQLite: bulk_create),
skips the build when exactly N bench listings are already there, then starts gunicorn on a free loopback port,
signs in a bench buyer and drives each scenario with C client threads for S seconds.

    createdb -h 127.0.0.1 -U postgres elementa_catalogue_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/elementa_catalogue_bench ELEMENTA_VAR_DIR=/tmp/benchvar-cat
    .venv/bin/python bench/catalogue.py                 # 1,000,000 listings
    .venv/bin/python bench/catalogue.py --rows 200000 --duration 20 --concurrency 8 --workers 4 --json

Figures:
- req/s and latency percentiles seen by the client (threads in this process, over fresh TCP connections:
  gunicorn's sync workers close each one);
- statements per request: counted in-process (Django test client + CaptureQueriesContext) for one request of
  each scenario; Django's connection health check (one `SELECT 1` per request on a reused connection) is not
  a captured statement and comes on top;
- CPU per request: user + system time of the gunicorn workers and of this database's PostgreSQL backends, read
  from /proc before and after each scenario, divided by the requests served;
- the machine's load average at the start and the end (other work on the machine slows every figure).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

from common import cpu_seconds, quantile, sign_in

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_PROVIDER = "Bench provider"
BENCH_USER = "bench-catalogue-buyer"
BENCH_PASSWORD = "bench-catalogue-password-1"  # a local bench database only
PROVIDERS = 200
LIST = "/api/v1/datasets/"

CITIES = ["Berlin", "Shanghai", "Lagos", "Lyon", "Osaka", "Austin", "Leeds", "Porto", "Seoul", "Lima", "Oslo",
          "Pune", "Perth", "Quito", "Turin", "Hanoi", "Cairo", "Dubai", "Kyiv", "Nairobi", "Boston", "Denver",
          "Madrid", "Milan", "Munich", "Prague", "Riga", "Sofia", "Tbilisi", "Tunis", "Vienna", "Warsaw", "Zagreb",
          "Bogota", "Manila", "Jakarta", "Dhaka", "Accra", "Dakar", "Lusaka"]
SECTORS = ["retail", "health", "mobility", "energy", "insurance", "banking", "telecom", "logistics", "farming",
           "education", "tourism", "media", "gaming", "housing", "pharma", "aviation", "shipping", "fashion",
           "grocery", "fitness", "weather", "satellite", "payroll", "legal", "automotive", "robotics", "mining",
           "fishery", "forestry", "water", "waste", "security", "hospitality", "gambling", "charity", "sports",
           "music", "publishing", "advertising", "recruiting"]
KINDS = ["panel", "footfall", "transactions", "survey", "sensor feed", "loyalty cards", "claims", "orders",
         "sessions", "prices", "inventory", "bookings", "visits", "ratings", "routes", "readings", "tickets",
         "invoices", "subscriptions", "returns"]
SEARCHES = ["retail", "retail loyalty", "antarctic", "pharm", "berlin footfall"]
FALLBACK = "etail"  # no word starts with it: full-text finds nothing, the trigram fallback does


def syllable_words(count: int, rng: random.Random) -> list[str]:
    syllables = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "da", "pe", "zu", "bo", "xa", "li", "qu", "ne"]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(count)]


# --- the data ------------------------------------------------------------------------------------

def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def ensure_people() -> list[tuple[str, str, list[str]]]:
    """The bench providers (id, jurisdiction, exporter flags) and a bench buyer who can sign in."""
    from django.contrib.auth.models import User

    from marketplace.models import Membership, Organisation

    jurisdictions = ["DE", "CN", "US", "FR", "JP", "BR", "IN", "NG", "GB", "KR"]
    providers = []
    for n in range(PROVIDERS):
        org, _ = Organisation.objects.get_or_create(
            name=f"{BENCH_PROVIDER} {n:03d}", defaults={"jurisdiction": jurisdictions[n % len(jurisdictions)]}
        )
        providers.append((str(org.id), org.jurisdiction, list(org.exporter_flags)))
    buyer_org, _ = Organisation.objects.get_or_create(name="Bench catalogue buyer", defaults={"jurisdiction": "US"})
    user, created = User.objects.get_or_create(username=BENCH_USER)
    if created or not user.check_password(BENCH_PASSWORD):
        user.set_password(BENCH_PASSWORD)
        user.save()
    Membership.objects.get_or_create(user=user, defaults={"organisation": buyer_org, "role": Membership.Role.BUYER})
    return providers


def bench_rows() -> int:
    from marketplace.models import Dataset

    return Dataset.objects.filter(provider__name__startswith=BENCH_PROVIDER, status="published").count()


def generate(rows: int, providers: list[tuple[str, str, list[str]]], seed: int = 7) -> Any:
    """Rows as tuples of the Dataset columns, deterministic for a seed."""
    rng = random.Random(seed)
    filler = syllable_words(3000, rng)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    currencies = ["EUR", "EUR", "USD", "USD", "JPY", "GBP", "CNY"]
    for n in range(rows):
        provider_id, jurisdiction, _ = providers[n % len(providers)]
        city, sector, kind = rng.choice(CITIES), rng.choice(SECTORS), rng.choice(KINDS)
        other = rng.choice(SECTORS)
        title = f"{city} {sector} {kind} {2015 + n % 11}"
        words = " ".join(rng.choice(filler) for _ in range(rng.randint(15, 45)))
        description = f"{kind.capitalize()} from {city} with {other} context. {words}."
        if n % 5000 == 0:
            description += " Includes antarctic stations."
        published = start + timedelta(seconds=n * 60 + rng.randint(0, 59))
        currency = rng.choice(currencies)
        price = f"{rng.randint(1, 200_000) if currency == 'JPY' else rng.randint(100, 2_000_000) / 100:.2f}"
        yield (
            str(uuid.uuid4()), provider_id, title, description, json.dumps([jurisdiction]), jurisdiction,
            "non_personal" if n % 3 else "personal", json.dumps(["purchase_history"] if n % 2 else ["contact"]),
            str(0 if n % 3 else rng.randint(100, 1_000_000)), "false", "[]", "[]", "false", price, currency, "one_time",
            json.dumps({"term_days": 365, "resale": False}), "published", f"|{jurisdiction}|",
            "|purchase_history|" if n % 2 else "|contact|", published.isoformat(), published.isoformat(),
            published.isoformat(), "1", "1", json.dumps(["text/csv"]), str(rng.randint(10_000, 50_000_000)), "1",
            published.isoformat(),
        )


COLUMNS = ("id", "provider_id", "title", "description", "subject_jurisdictions", "storage_jurisdiction",
           "classification", "categories", "subjects", "de_identified", "flags", "exporter_flags",
           "pi_duties_attested", "price", "currency", "pricing", "licence", "status", "jurisdiction_index",
           "category_index", "published_at", "created_at", "updated_at", "licence_version", "file_count",
           "file_formats", "file_total_bytes", "latest_file_version", "latest_file_uploaded_at")


def build(rows: int, providers: list[tuple[str, str, list[str]]]) -> dict[str, float]:
    """Replace the bench listings with `rows` new ones; seconds taken by each step."""
    from django.db import connection, transaction

    from marketplace.models import Dataset

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    table = Dataset._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE provider_id IN "
                       f"(SELECT id FROM marketplace_organisation WHERE name LIKE %s)", [f"{BENCH_PROVIDER}%"])
    timings["delete_s"] = time.perf_counter() - t0
    if connection.vendor != "postgresql":
        t0 = time.perf_counter()
        batch: list[Dataset] = []
        for values in generate(rows, providers):
            row = dict(zip(COLUMNS, values, strict=True))
            for key in ("subject_jurisdictions", "categories", "flags", "exporter_flags", "licence", "file_formats"):
                row[key] = json.loads(row[key])
            row["de_identified"] = row["pi_duties_attested"] = False
            batch.append(Dataset(**row))
            if len(batch) == 5000:
                Dataset.objects.bulk_create(batch)
                batch = []
        Dataset.objects.bulk_create(batch)
        timings["insert_s"] = time.perf_counter() - t0
        return timings
    # One transaction (PostgreSQL's DDL is transactional): a build that fails part-way leaves the
    # table with its indexes, never without them.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
                       "(SELECT conname FROM pg_constraint)", [table])
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        t0 = time.perf_counter()
        raw = cursor.cursor  # psycopg 3
        with raw.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            chunk = StringIO()
            for n, values in enumerate(generate(rows, providers), 1):
                chunk.write("\t".join(values))
                chunk.write("\n")
                if n % 20_000 == 0:
                    copy.write(chunk.getvalue())
                    chunk = StringIO()
            copy.write(chunk.getvalue())
        timings["copy_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # Django's deferred foreign keys: checked now, not at
        cursor.execute("SET maintenance_work_mem = '256MB'")  # commit (an index can't be built while they pend)
        for _, definition in indexes:
            cursor.execute(definition)
        timings["indexes_s"] = time.perf_counter() - t0
    with connection.cursor() as cursor:
        t0 = time.perf_counter()
        cursor.execute(f"VACUUM ANALYZE {table}")
        timings["vacuum_analyze_s"] = time.perf_counter() - t0
    return timings


# --- the server and the load ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**os.environ, "ELEMENTA_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [str(gunicorn), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers), "--log-level", "warning"],
        cwd=REPO_ROOT, env=env, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _ = request(port, "/api/v1/me/", None)  # 401 without a token: up
            if status:
                return server, port
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not start within 60 s")


def request(port: int, path: str, token: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == master:
                pids.append(int(entry))
    return pids


def backend_pids() -> list[int]:
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        return [row[0] for row in cursor.fetchall()]


def cpu_of(pids: list[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = cpu_seconds(pid)
        except OSError:
            pass
    return seconds


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings by the processes alive at the second (new ones from zero;
    a backend that exited in between is lost, so this can only undercount)."""
    return sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items())


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    app_cpu: float
    db_cpu: float
    statements: int | None = None
    matches: str = ""

    def row(self) -> dict[str, Any]:
        ok = self.latencies or [0.0]
        return {
            "scenario": self.name, "requests": self.requests, "errors": self.errors,
            "req_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(quantile(ok, 50) * 1000, 1), "p95_ms": round(quantile(ok, 95) * 1000, 1),
            "p99_ms": round(quantile(ok, 99) * 1000, 1), "statements": self.statements,
            "app_cpu_ms": round(self.app_cpu / max(self.requests, 1) * 1000, 2),
            "db_cpu_ms": round(self.db_cpu / max(self.requests, 1) * 1000, 2), "matches": self.matches,
        }


def load(name: str, port: int, token: str, paths: list[str], seconds: float, concurrency: int,
         master: int) -> Result:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def drive(offset: int) -> None:
        mine: list[float] = []
        n = offset
        while time.monotonic() < stop:
            path = paths[n % len(paths)]
            n += 1
            t0 = time.perf_counter()
            try:
                status, _ = request(port, path, token)
            except OSError:
                status = 0
            if status == 200:
                mine.append(time.perf_counter() - t0)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    pids, backends = worker_pids(master), backend_pids()
    app0, db0 = cpu_of(pids), cpu_of(backends)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    backends = sorted(set(backends) | set(backend_pids()))  # connections opened during the run count too
    return Result(name, len(latencies) + errors[0], errors[0], elapsed, latencies,
                  cpu_used(app0, cpu_of(pids)), cpu_used(db0, cpu_of(backends)))


def statements(paths: list[str], token: str) -> int:
    """The most statements one of `paths` costs, counted in-process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    worst = 0
    for path in paths:
        client.get(path)  # warm: the first request of a connection may differ
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        worst = max(worst, len(queries.captured_queries))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="listings (default 1,000,000 on PostgreSQL, 20,000 "
                                                                "on SQLite)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when N bench listings exist")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if "DATABASE_URL" not in os.environ:
        print("note: no DATABASE_URL: the embedded SQLite database of ELEMENTA_VAR_DIR", file=sys.stderr)
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    rows = args.rows or (1_000_000 if connection.vendor == "postgresql" else 20_000)
    load_start = os.getloadavg()
    call_command("migrate", verbosity=0)
    providers = ensure_people()
    report: dict[str, Any] = {"rows": rows, "database": connection.vendor, "cpus": os.cpu_count(),
                              "workers": args.workers, "concurrency": args.concurrency, "duration_s": args.duration}
    if args.rebuild or bench_rows() != rows:
        print(f"building {rows:,} published listings ...", file=sys.stderr)
        report["build"] = {k: round(v, 1) for k, v in build(rows, providers).items()}
    else:
        report["build"] = "already built"
    connection.close()

    server, port = start_server(args.workers)
    try:
        token = sign_in(f"http://127.0.0.1:{port}", BENCH_USER, BENCH_PASSWORD)
        deep = max(1, min(200, rows // 40))
        searches = [f"{LIST}?q={q.replace(' ', '+')}" for q in SEARCHES]
        scenarios = [
            ("baseline /api/v1/me/", ["/api/v1/me/"]),
            ("list (20 items)", [LIST]),
            (f"list page {deep}", [f"{LIST}?page={deep}"]),
            ("list EUR price>=100 by price", [f"{LIST}?currency=EUR&price_min=100&ordering=price"]),
            ("search (5 queries, rotating)", searches),
            ("search trigram fallback", [f"{LIST}?q={FALLBACK}"]),
        ]
        results = []
        for name, paths in scenarios:
            result = load(name, port, token, paths, args.duration, args.concurrency, server.pid)
            result.statements = statements(paths, token)
            if paths[0].startswith(LIST):
                counts = [json.loads(request(port, p, token)[1])["count"] for p in paths]
                result.matches = ", ".join(f"{c:,}" for c in counts)
            results.append(result)
            connection.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    report["load_average_start"] = [round(x, 2) for x in load_start]
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["scenarios"] = [r.row() for r in results]
    baseline = report["scenarios"][0]["req_s"] or 1
    for row in report["scenarios"]:
        row["vs_baseline"] = round(row["req_s"] / baseline, 2)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{rows:,} published listings on {connection.vendor}; {args.workers} gunicorn workers, "
          f"{args.concurrency} client threads, {args.duration:.0f} s each; build: {report['build']}")
    print(f"load average at start {report['load_average_start']}, at end {report['load_average_end']}")
    header = ("scenario", "req_s", "p50_ms", "p95_ms", "p99_ms", "statements", "app_cpu_ms", "db_cpu_ms",
              "vs_baseline", "errors", "matches")
    print(" | ".join(header))
    for row in report["scenarios"]:
        print(" | ".join(str(row[h]) for h in header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
