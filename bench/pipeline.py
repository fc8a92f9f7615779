"""Measures trade pipeline throughput (trades settled/s, POST→settled p50/p95) against a no-op Celery task on the
same broker.

Run it against a running API and worker, with the worker's environment (same DATABASE_URL,
CELERY_BROKER_URL, ELEMENTA_VAR_DIR, ELEMENTA_CELERY_QUEUE), so the no-op tasks go to the same queue.

Embedded defaults (SQLite + kombu filesystem broker):
    export ELEMENTA_VAR_DIR=/tmp/benchvar ELEMENTA_CELERY_QUEUE=bench ELEMENTA_THROTTLE_WRITE=100000/min
    .venv/bin/python manage.py migrate -v0 && .venv/bin/python manage.py seed_demo
    .venv/bin/gunicorn config.wsgi -b 127.0.0.1:8123 -w 2 &
    .venv/bin/celery -A config worker -l warning -c 2 --without-mingle --without-gossip &
    .venv/bin/python bench/pipeline.py --url http://127.0.0.1:8123

PostgreSQL + Redis:
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/elementa_bench \
           CELERY_BROKER_URL=redis://127.0.0.1:6379/5 ELEMENTA_VAR_DIR=/tmp/benchvar-pg ELEMENTA_CELERY_QUEUE=bench \
           ELEMENTA_THROTTLE_WRITE=100000/min
    (then the same migrate, seed_demo, gunicorn on 127.0.0.1:8124, celery worker)
    .venv/bin/python bench/pipeline.py --url http://127.0.0.1:8124

Options: --trades N (500), --concurrency C (8), --rate R (paced posting, trades/s), --noop M (2000), --timeout S
(300), --json, --note TEXT,
--serve (start gunicorn on --url's port with ELEMENTA_THROTTLE_WRITE=1000000/min; --web-workers N),
--post-only (only the POST phase; with --serve the trades go to a queue nobody reads and are cancelled after).
Trade states are read from the database (one SELECT per poll round); CPU per trade per process
group comes from /proc (bench/procs.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from common import calibration_ms, percentile, sign_in
from procs import CpuSample, cpu_delta, sample

REPO_ROOT = Path(__file__).resolve().parent.parent
FINAL_STATUSES = frozenset({"settled", "rejected", "cancelled"})
PARKED_STATUSES = frozenset({"needs_documents", "in_review"})  # wait for a person: never settle on their own
PENDING_STATUSES = ("checking", "approved")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
HTTP_TIMEOUT = 30.0
POLL_INTERVAL = 0.5
PAGE_SIZE = 100


# --- small helpers -------------------------------------------------------------------------------

def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rate(count: int, seconds: float | None) -> float | None:
    return count / seconds if seconds and seconds > 0 else None


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --- HTTP ----------------------------------------------------------------------------------------

class Api:
    """A thread-safe client: one requests.Session per thread, all with the same bearer token."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._local = threading.local()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if self.token:
                session.headers["Authorization"] = f"Bearer {self.token}"
            self._local.session = session
        return session

    def get(self, path: str, params: Any = None) -> dict[str, Any]:
        response = self.session().get(f"{self.base_url}{path}", params=params, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session().post(f"{self.base_url}{path}", json=body, timeout=HTTP_TIMEOUT)


def login(base_url: str, username: str, password: str) -> Api:
    return Api(base_url, sign_in(base_url, username, password, timeout=HTTP_TIMEOUT))


def find_dataset(api: Api) -> str:
    page = api.get("/api/v1/datasets/", params={"q": "retail", "jurisdiction": "DE"})
    results = page.get("results") or []
    if not results:
        raise SystemExit("dataset 'German online retail customers 2026' not found: run `manage.py seed_demo`")
    return str(results[0]["id"])


def fund_buyer(
    buyer: Api, base_url: str, dataset_id: str, trades: int, officer: tuple[str, str], second_officer: tuple[str, str]
) -> None:
    """Every purchase holds its price in escrow: have an officer credit the buyer enough for the run,
    and a second officer approve the credit (nobody approves money they asked for)."""
    dataset = buyer.get(f"/api/v1/datasets/{dataset_id}/")
    organisation = buyer.get("/api/v1/me/")["organisation"]["id"]
    amount = f"{float(dataset['price']) * trades * 1.1:.2f}"
    operator = login(base_url, *officer)
    response = operator.post(
        "/api/v1/wallet/deposits/", {"organisation": organisation, "amount": amount, "currency": dataset["currency"]}
    )
    if response.status_code != 201:
        raise SystemExit(f"funding the buyer failed: HTTP {response.status_code} {response.text[:300]}")
    approval = login(base_url, *second_officer).post(f"/api/v1/wallet/deposits/{response.json()['id']}/approve/", {})
    if approval.status_code != 200:
        raise SystemExit(f"approving the credit failed: HTTP {approval.status_code} {approval.text[:300]}")


# --- phase 1: trades -----------------------------------------------------------------------------

@dataclass
class PostOutcome:
    started: float
    finished: float
    trade_id: str | None
    error: str | None


@dataclass
class TradeReport:
    posted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    post_seconds: float | None = None
    post_round_trips: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    span_seconds: float | None = None
    wait_seconds: float = 0.0
    timed_out: bool = False
    post_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group while posting
    drain_cpu: dict[str, float] = field(default_factory=dict)  # … from the first POST until all settled
    load_after_post: tuple[float, float, float] | None = None
    load_after_drain: tuple[float, float, float] | None = None


def post_trade(api: Api, dataset_id: str) -> PostOutcome:
    started = time.perf_counter()
    try:
        # The same buyer buys the same dataset over and over: each is a repeat (else 409 already_held).
        response = api.post("/api/v1/trades/", {"dataset": dataset_id, "repeat": True})
    except requests.RequestException as exc:
        return PostOutcome(started, time.perf_counter(), None, f"{type(exc).__name__}: {exc}"[:200])
    finished = time.perf_counter()
    if response.status_code != 201:
        return PostOutcome(started, finished, None, f"HTTP {response.status_code}: {response.text[:200]}")
    return PostOutcome(started, finished, str(response.json()["id"]), None)


def post_trades(api: Api, dataset_id: str, count: int, concurrency: int,
                rate: float | None = None) -> list[PostOutcome]:
    """As fast as `concurrency` threads can, or paced at `rate` trades/s (trade i is posted at i/rate s,
    an open loop: a slow answer does not delay the next trade's turn)."""
    started = time.perf_counter()

    def one(n: int) -> PostOutcome:
        if rate:
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        return post_trade(api, dataset_id)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(count)))


def pending_ids(api: Api, dataset_id: str) -> set[str]:
    """Ids of the dataset's trades still moving through the pipeline (checking or approved)."""
    found: set[str] = set()
    params: dict[str, Any] = {
        "status": list(PENDING_STATUSES),
        "dataset": dataset_id,
        "page_size": PAGE_SIZE,
        "page": 1,
    }
    first = api.get("/api/v1/trades/", params=params)
    found.update(str(t["id"]) for t in first["results"])
    pages = math.ceil(first["count"] / PAGE_SIZE)
    for page in range(2, pages + 1):  # bounded by the count seen on the first page
        params["page"] = page
        try:
            found.update(str(t["id"]) for t in api.get("/api/v1/trades/", params=params)["results"])
        except requests.HTTPError as exc:  # the list shrank while paging: 404 on a page past the end
            if exc.response is not None and exc.response.status_code == 404:
                break
            raise
    return found


def wait_until_done(api: Api, dataset_id: str, ours: set[str], deadline: float) -> bool:
    """Poll until none of our trades is pending; False on timeout."""
    while time.monotonic() < deadline:
        if not ours & pending_ids(api, dataset_id):
            return True
        time.sleep(POLL_INTERVAL)
    return not ours & pending_ids(api, dataset_id)


def trade_timeline(api: Api, trade_id: str) -> tuple[str, datetime | None, datetime | None]:
    """(status, time it entered checking, time it settled) from the trade's server-side events."""
    detail = api.get(f"/api/v1/trades/{trade_id}/")
    checking = settled = None
    for event in detail.get("events", []):
        if event["to"] == "checking" and checking is None:
            checking = parse_ts(event["at"])
        elif event["to"] == "settled":
            settled = parse_ts(event["at"])
    return str(detail["status"]), checking, settled


# --- reading trade states from the database (no API calls while trades drain) ---------------------

def pending_in_db(ours: set[str]) -> set[str]:
    """Our trades still moving through the pipeline: one SELECT for all of them."""
    from marketplace.models import Trade

    rows = Trade.objects.filter(pk__in=list(ours), status__in=PENDING_STATUSES).values_list("pk", flat=True)
    return {str(pk) for pk in rows}


def wait_until_done_db(ours: set[str], deadline: float) -> bool:
    """Poll the database until none of our trades is pending; False on timeout."""
    while time.monotonic() < deadline:
        if not pending_in_db(ours):
            return True
        time.sleep(POLL_INTERVAL)
    return not pending_in_db(ours)


def timelines_from_db(ours: set[str]) -> list[tuple[str, datetime | None, datetime | None]]:
    """(status, entered checking, settled) of each of our trades, from two queries."""
    from marketplace.models import Trade, TradeEvent

    ids = list(ours)
    statuses = dict(Trade.objects.filter(pk__in=ids).values_list("pk", "status"))
    times: dict[str, dict[str, datetime]] = {}
    events = TradeEvent.objects.filter(trade_id__in=ids, to_status__in=("checking", "settled")).order_by("id")
    for trade_id, to, at in events.values_list("trade_id", "to_status", "at"):
        entry = times.setdefault(str(trade_id), {})
        if to == "checking":
            entry.setdefault("checking", at)
        else:
            entry["settled"] = at
    return [(str(statuses[pk]), times.get(str(pk), {}).get("checking"), times.get(str(pk), {}).get("settled"))
            for pk in statuses]


def cpu_probe() -> tuple[str, str]:
    """(ELEMENTA_VAR_DIR, database name) identifying this run's server processes."""
    from django.conf import settings

    return str(settings.VAR_DIR), str(settings.DATABASES["default"]["NAME"]).rsplit("/", 1)[-1]


def take_sample() -> CpuSample:
    return sample(*cpu_probe())


def run_trades(api: Api, dataset_id: str, count: int, concurrency: int, timeout: float,
               post_only: bool = False, rate: float | None = None) -> TradeReport:
    report = TradeReport()
    start = take_sample()
    outcomes = post_trades(api, dataset_id, count, concurrency, rate)
    posted = take_sample()
    report.post_cpu = cpu_delta(start, posted)
    report.load_after_post = os.getloadavg()
    ours = {o.trade_id for o in outcomes if o.trade_id}
    report.posted = len(ours)
    report.errors = Counter(o.error for o in outcomes if o.error)
    report.post_round_trips = [o.finished - o.started for o in outcomes]
    report.post_seconds = max(o.finished for o in outcomes) - min(o.started for o in outcomes) if outcomes else None
    if post_only or not ours:
        return report

    waited_from = time.monotonic()
    report.timed_out = not wait_until_done_db(ours, waited_from + timeout)
    report.wait_seconds = time.monotonic() - waited_from
    report.drain_cpu = cpu_delta(start, take_sample())
    report.load_after_drain = os.getloadavg()

    timelines = timelines_from_db(ours)
    report.statuses = Counter(status for status, _, _ in timelines)
    settled = [(c, s) for _, c, s in timelines if c is not None and s is not None]
    report.latencies = [(s - c).total_seconds() for c, s in settled]
    if settled:
        report.span_seconds = (max(s for _, s in settled) - min(c for c, _ in settled)).total_seconds()
    return report


# --- phase 2: no-op Celery tasks -----------------------------------------------------------------

@dataclass
class NoopReport:
    published: int = 0
    publish_seconds: float | None = None
    consumed: int = 0
    consume_seconds: float | None = None  # first publish → last date_done recorded by the worker
    client_seconds: float | None = None  # first publish → last result seen by this process
    failed: int = 0
    timed_out: bool = False


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # "No hostname was supplied" on each connect


def wait_result(result: Any, deadline: float) -> tuple[str, datetime | None]:
    """("ok" | "failed" | "timeout", the worker's date_done) of one AsyncResult, waiting until deadline."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return "timeout", None
    try:
        result.get(timeout=remaining, interval=0.01, propagate=True)
    except CeleryTimeout:
        return "timeout", None
    except Exception:  # the task raised
        return "failed", None
    done = result.date_done
    if isinstance(done, str):
        done = parse_ts(done)
    if done is not None and done.tzinfo is None:
        done = done.replace(tzinfo=UTC)
    return "ok", done


def run_noop(count: int, timeout: float) -> NoopReport:
    from config.celery_app import noop

    report = NoopReport()
    started_wall = datetime.now(UTC)
    started = time.perf_counter()
    results = [noop.delay() for _ in range(count)]
    report.published = len(results)
    report.publish_seconds = time.perf_counter() - started

    deadline = time.monotonic() + timeout
    finished: list[datetime] = []
    for result in results:
        outcome, done = wait_result(result, deadline)
        if outcome == "timeout":
            report.timed_out = True
            break
        report.consumed += outcome == "ok"
        report.failed += outcome == "failed"
        if done is not None:
            finished.append(done)
    report.client_seconds = time.perf_counter() - started
    if finished and report.consumed == count:
        report.consume_seconds = (max(finished) - started_wall).total_seconds()
    forget_results(results)
    return report


def forget_results(results: list[Any]) -> None:
    """Delete the stored results so repeated runs do not pile them up; best effort."""
    for result in results:
        try:
            result.forget()
        except Exception:  # a backend without delete: the results expire on their own
            return


# --- environment description ---------------------------------------------------------------------

def describe_environment(note: str) -> dict[str, str]:
    from django.conf import settings
    from django.db import connections
    from kombu.utils.url import maybe_sanitize_url

    return {
        "broker": maybe_sanitize_url(settings.CELERY_BROKER_URL),
        "queue": settings.CELERY_TASK_DEFAULT_QUEUE,
        "database": connections["default"].vendor,
        "workers": note or describe_workers(),
    }


def describe_workers() -> str:
    """Ask the workers for their pool size; best effort, a second at most."""
    from config.celery_app import app

    try:
        stats = app.control.inspect(timeout=1.0).stats() or {}
    except Exception as exc:  # the broker refuses broadcast: not worth failing the bench
        return f"unknown ({type(exc).__name__})"
    if not stats:
        return "unknown (no reply to inspect)"
    sizes = [str(s.get("pool", {}).get("max-concurrency", "?")) for s in stats.values()]
    return f"{len(stats)} worker(s), concurrency {'+'.join(sizes)}"


# --- report --------------------------------------------------------------------------------------

def figures(env: dict[str, str], args: argparse.Namespace, trades: TradeReport, noops: NoopReport) -> dict[str, Any]:
    settled = trades.statuses.get("settled", 0)
    trades_per_s = rate(settled, trades.span_seconds)
    noop_per_s = rate(noops.consumed, noops.consume_seconds)
    return {
        **env,
        "url": args.url,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "trades_requested": args.trades,
        "trades_posted": trades.posted,
        "post_errors": sum(trades.errors.values()),
        "post_error_kinds": dict(trades.errors),
        "trade_statuses": dict(trades.statuses),
        "trades_timed_out": trades.timed_out,
        "trades_settled": settled,
        "settle_span_s": trades.span_seconds,
        "trades_per_s": trades_per_s,
        "latency_p50_s": percentile(trades.latencies, 50),
        "latency_p95_s": percentile(trades.latencies, 95),
        "latency_p99_s": percentile(trades.latencies, 99),
        "latency_max_s": max(trades.latencies) if trades.latencies else None,
        "post_req_per_s": rate(len(trades.post_round_trips), trades.post_seconds),
        "post_rtt_p50_s": percentile(trades.post_round_trips, 50),
        "post_rtt_p95_s": percentile(trades.post_round_trips, 95),
        "post_rtt_p99_s": percentile(trades.post_round_trips, 99),
        "post_cpu_ms_per_trade": per_trade_ms(trades.post_cpu, trades.posted),
        "drain_cpu_ms_per_trade": per_trade_ms(trades.drain_cpu, trades.posted),
        "load_after_post": trades.load_after_post,
        "load_after_drain": trades.load_after_drain,
        "noop_published": noops.published,
        "noop_publish_per_s": rate(noops.published, noops.publish_seconds),
        "noop_consumed": noops.consumed,
        "noop_failed": noops.failed,
        "noop_timed_out": noops.timed_out,
        "noop_consume_span_s": noops.consume_seconds,
        "noop_per_s": noop_per_s,
        "noop_per_s_client": rate(noops.consumed, noops.client_seconds),
        "ratio": trades_per_s / noop_per_s if trades_per_s and noop_per_s else None,
    }


def per_trade_ms(cpu: dict[str, float], trades: int) -> dict[str, float]:
    return {name: seconds * 1000 / trades for name, seconds in cpu.items()} if trades else {}


def render_cpu(label: str, per_trade: dict[str, float], load: Any) -> str:
    parts = ", ".join(f"{name} {value:.2f}" for name, value in per_trade.items())
    loads = " ".join(f"{x:.2f}" for x in load) if load else "n/a"
    return f"CPU ms per trade {label}: {parts or 'n/a'} (total {sum(per_trade.values()):.2f})   load average {loads}"


def render(f: dict[str, Any]) -> str:
    others = {k: v for k, v in f["trade_statuses"].items() if k != "settled"}
    paced = f", paced at {f['rate']:g}/s" if f.get("rate") else ""
    lines = [
        f"broker: {f['broker']} (queue {f['queue']})   database: {f['database']}   workers: {f['workers']}",
        f"trades: {f['trades_posted']} posted ({f['post_errors']} errors), {f['trades_settled']} settled in "
        f"{num(f['settle_span_s'], 2)} s → {num(f['trades_per_s'])} trades/s"
        + (f"   not settled: {others}" if others else "")
        + ("   TIMED OUT waiting" if f["trades_timed_out"] else ""),
        f"POST→settled latency: p50 {ms(f['latency_p50_s'])}, p95 {ms(f['latency_p95_s'])}, "
        f"p99 {ms(f['latency_p99_s'])}, max {ms(f['latency_max_s'])}",
        f"POST round trip (client, {f['concurrency']} threads{paced}): {num(f['post_req_per_s'])} req/s, "
        f"p50 {ms(f['post_rtt_p50_s'])}, p95 {ms(f['post_rtt_p95_s'])}, p99 {ms(f['post_rtt_p99_s'])}",
        render_cpu("while posting", f["post_cpu_ms_per_trade"], f["load_after_post"]),
        render_cpu("first POST → all settled", f["drain_cpu_ms_per_trade"], f["load_after_drain"]),
        f"no-op tasks: {f['noop_published']} published at {num(f['noop_publish_per_s'], 0)} msg/s; "
        f"{f['noop_consumed']} consumed at {num(f['noop_per_s'])} tasks/s "
        f"(client-observed {num(f['noop_per_s_client'])} tasks/s)"
        + (f"   {f['noop_failed']} failed" if f["noop_failed"] else "")
        + ("   TIMED OUT waiting" if f["noop_timed_out"] else ""),
        f"ratio trades/s ÷ no-op tasks/s = {num(f['ratio'], 3)}"
        "   (an allowed trade is 1 task, check and settle, plus its notifications)",
    ]
    if f.get("calibration_ms"):
        before, after = f["calibration_ms"]
        drained = sum(f["drain_cpu_ms_per_trade"].values())
        phase, total = ("first POST → all settled", drained) if drained else (
            "while posting", sum(f["post_cpu_ms_per_trade"].values()))
        lines.append(
            f"machine speed: the calibration loop took {before} ms of CPU before the run, {after} ms after; "
            f"CPU per trade, {phase} = {total / ((before + after) / 2):.2f} calibration loops"
        )
    for error, count in f["post_error_kinds"].items():
        lines.append(f"  POST error ×{count}: {error}")
    return "\n".join(lines)


def cancel_posted(dataset_id: str) -> None:
    """After --post-only, nothing will ever check the posted trades: cancel them (releasing their
    escrow) so later runs and the sweeper do not pick them up."""
    from marketplace.models import Trade
    from marketplace.services.trade_transitions import trade_transition

    stranded = Trade.objects.filter(dataset_id=dataset_id, status=Trade.Status.CHECKING).values_list("pk", flat=True)
    for trade_id in stranded:
        trade_transition(trade_id=trade_id, to=Trade.Status.CANCELLED, actor_label="bench", reason="bench --post-only")


# --- entry point ---------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="API base URL (loopback only)")
    parser.add_argument("--trades", type=int, default=500, help="trades to post")
    parser.add_argument("--concurrency", type=int, default=8, help="threads posting trades")
    parser.add_argument("--rate", type=float, default=None,
                        help="post at this many trades/s (paced, open loop) instead of as fast as possible: "
                             "latency at a given load, e.g. half the rate a full-speed run sustained")
    parser.add_argument("--noop", type=int, default=2000, help="no-op Celery tasks to publish")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each phase to drain")
    parser.add_argument("--username", default="buyer-eu")
    parser.add_argument("--password", default="elementa-demo")
    parser.add_argument("--officer", default="officer", help="operator who credits the buyer's wallet before the run")
    parser.add_argument("--second-officer", default="officer-2", help="a different officer, who approves that credit")
    parser.add_argument("--no-fund", action="store_true", help="do not top up the buyer first")
    parser.add_argument(
        "--note", default=os.environ.get("ELEMENTA_BENCH_NOTE", ""), help="describes the workers in the report"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--serve", action="store_true",
                        help=f"start gunicorn on --url's port for the run (write throttle {BENCH_THROTTLE_WRITE})")
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "4")),
                        help="gunicorn workers with --serve")
    parser.add_argument("--post-only", action="store_true",
                        help="only post (with --serve: to a queue no worker reads, so posting runs alone)")
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK_HOSTS:
        parser.error("--url must point at 127.0.0.1")
    if min(args.trades, args.concurrency, args.noop) < 1 or args.timeout <= 0:
        parser.error("--trades, --concurrency, --noop and --timeout must be positive")
    return args


# The default write throttle (120/min per user) would refuse most of the run: the server the bench
# starts (--serve) gets this instead; a server started by hand needs ELEMENTA_THROTTLE_WRITE set to it.
BENCH_THROTTLE_WRITE = "1000000/min"


def serve(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """gunicorn for this run, with the bench's throttle; --post-only publishes to a queue nobody reads."""
    port = urlsplit(args.url).port or 80
    env = {**os.environ, "ELEMENTA_THROTTLE_WRITE": BENCH_THROTTLE_WRITE}
    if args.post_only:
        env["ELEMENTA_CELERY_QUEUE"] = f"bench-post-only-{os.getpid()}"
    command = [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi", "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.web_workers), "--timeout", "60"]
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{args.url.rstrip('/')}/healthz", timeout=1)
            return server
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start within 30 s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()
    server = serve(args) if args.serve else None
    try:
        return run(args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)


def run(args: argparse.Namespace) -> int:
    env = describe_environment(args.note)
    calibration_before = calibration_ms()
    api = login(args.url, args.username, args.password)
    dataset_id = find_dataset(api)
    if not args.no_fund:
        fund_buyer(
            api, args.url, dataset_id, args.trades, (args.officer, args.password), (args.second_officer, args.password)
        )
    trades = run_trades(api, dataset_id, args.trades, args.concurrency, args.timeout, post_only=args.post_only,
                        rate=args.rate)
    noops = NoopReport() if args.post_only else run_noop(args.noop, args.timeout)
    result = figures(env, args, trades, noops)
    result["calibration_ms"] = [round(calibration_before, 1), round(calibration_ms(), 1)]
    print(json.dumps(result, default=str) if args.json else render(result))
    healthy = not (trades.timed_out or noops.timed_out or trades.errors or noops.failed)
    if args.post_only:
        cancel_posted(dataset_id)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
