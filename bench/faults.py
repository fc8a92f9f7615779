"""Scripted fault injection against a real PostgreSQL + Redis stack.

Scenarios (each starts its own gunicorn, Celery worker and Celery beat, as three processes like
config/supervisord.conf does, and kills only those):
  1. the worker is SIGKILLed (whole process group: main and pool children) while checks are in
     flight, then restarted: every trade reaches a final state and settles at most once;
  2. the broker (a private redis-server on its own port; the shared 6379 is never touched) is
     stopped while trades are posted and restarted: the API still answers 201, and every trade
     accepted during the outage is settled afterwards by the sweeper, none lost, none doubled;
  3. the worker's PostgreSQL connections are terminated (pg_terminate_backend) at intervals during
     a burst: the tasks retry (OperationalError/InterfaceError) and every trade settles once;
  4. the broker (the private redis-server) is killed with SIGKILL five times while trades are being
     posted, then frozen with SIGSTOP for 12 s: every POST answers 201, the same worker process is
     alive afterwards (nobody restarted it), every trade is final, the ledger balances and the audit
     chain verifies.

After each scenario: every trade final and settled, exactly one hold per trade, and the invariants
of tests/invariants.py (the function the tests use, run through `manage.py shell`): one `settle`
and one Settlement per settled trade, no duplicate status transition, every ledger transaction
balanced, every wallet equal to the sum of its entries, none negative; plus the buyer's arithmetic
(available + held + spent == deposits).

Everything it uses is its own: database elementa_faults (dropped and re-created; --database), Redis
DB 9 on 127.0.0.1:6379 (flushed; --redis-db) for scenarios 1 and 3 and as the API's cache in 2 and 4
(so the request path does not depend on the Redis being killed), a redis-server on 127.0.0.1:6390
(--redis-port) for scenarios 2 and 4, /tmp/elementa-faults, queue `faults`, gunicorn on 127.0.0.1:8131.

    .venv/bin/python bench/faults.py                      # all scenarios, 40 trades each
    .venv/bin/python bench/faults.py --scenario 2 --trades 20
    .venv/bin/python bench/faults.py --database proc --redis-db 2 --api-port 8133 --var-dir /tmp/proc-faults --queue
    proc-faults

Exit code 0 only if every check passed. Needs psql, redis-server and a PostgreSQL on 127.0.0.1:5432
with trust auth for `postgres`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
DB_NAME = "elementa_faults"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
SHARED_REDIS = ("127.0.0.1", 6379, 9)
OWN_REDIS = ("127.0.0.1", 6390, 0)
VAR_DIR = Path("/tmp/elementa-faults")
QUEUE = "faults"
API_PORT = 8131
API = f"http://127.0.0.1:{API_PORT}"
PASSWORD = "elementa-demo"
BUYER = "buyer-eu"
WORKER_APP = "elementa-faults-worker"   # PGAPPNAME of the worker, so scenario 3 kills only its connections
WEB_APP = "elementa-faults-web"
CHECKER_APP = "elementa-faults-checker"
FINAL = {"settled", "rejected", "cancelled", "refunded"}
TOPUP = Decimal("1000000.00")


def now() -> str:
    return time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"


def say(line: str = "") -> None:
    print(line, flush=True)


class Report:
    """Collects "checked: ... OK/FAIL" lines; any FAIL makes the exit code 1."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def injected(self, text: str) -> None:
        say(f"  injected: {text}")

    def note(self, text: str) -> None:
        say(f"  observed: {text}")

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        say(f"  checked: {name}: {'OK' if ok else 'FAIL'}{(' — ' + detail) if detail else ''}")
        if not ok:
            self.failures.append(name)
        return ok


# --- processes we own -----------------------------------------------------------------------------

class Stack:
    """gunicorn, the Celery worker and (scenario 2) a redis-server, all started here, all in their
    own process group so they can be killed as a group without touching anything else."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def env(self, broker: str, app_name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": PG_URL, "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker,
            "ELEMENTA_VAR_DIR": str(VAR_DIR), "ELEMENTA_CELERY_QUEUE": QUEUE, "CELERY_VISIBILITY_TIMEOUT": "15",
            "ELEMENTA_STUCK_AFTER": "5", "ELEMENTA_SWEEP_INTERVAL": "3", "PGAPPNAME": app_name,
            "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1",
            # the API's cache and throttles stay on the shared Redis: the broker outages are the subject
            "ELEMENTA_CACHE_URL": shared_broker(),
            # one buyer posts hundreds of trades a minute here; throttling has its own tests
            "ELEMENTA_THROTTLE_WRITE": "100000/min",
        })
        return env

    def start(self, name: str, argv: list[str], env: dict[str, str] | None) -> subprocess.Popen:
        self.logs[name] = VAR_DIR / f"{name}.log"
        log = open(self.logs[name], "ab")
        log.write(f"\n===== {now()} start {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def start_api(self, broker: str) -> None:
        self.start("gunicorn", [str(VENV_BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{API_PORT}", "-w", "4",
                                "--timeout", "60"], self.env(broker, WEB_APP))
        wait_for(lambda: http_ok(f"{API}/healthz"), 30, "gunicorn to answer /healthz")
        if self.procs["gunicorn"].poll() is not None:  # someone else's server answered on our port
            raise RuntimeError(f"our gunicorn exited (port {API_PORT} taken?); see {self.logs['gunicorn']}")

    def start_worker(self, broker: str) -> subprocess.Popen:
        """The worker as config/supervisord.conf runs it; beat is a separate process (start_beat)."""
        proc = self.start("worker", [str(VENV_BIN / "celery"), "-A", "config", "worker", "-c", "2", "-l", "info",
                                     "-Q", QUEUE, "--without-mingle", "--without-gossip", "--without-heartbeat"],
                          self.env(broker, WORKER_APP))
        wait_for(lambda: "ready." in self.logs["worker"].read_text(errors="replace").rsplit("===== ", 1)[-1], 60,
                 "the Celery worker to be ready")
        if "beat" not in self.procs:
            self.start_beat(broker)
        return proc

    def start_beat(self, broker: str) -> subprocess.Popen:
        argv = [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "beat",
            "-l",
            "info",
            "-s",
            str(VAR_DIR / "celerybeat-schedule"),
            "--pidfile=",
        ]
        return self.start("beat", argv, self.env(broker, WORKER_APP))

    def start_redis(self) -> subprocess.Popen:
        host, port, _ = OWN_REDIS
        proc = self.start(
            "redis",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                host,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            None,
        )
        wait_for(lambda: redis_ping(host, port), 15, f"redis-server on {port}")
        return proc

    def group_members(self, name: str) -> list[int]:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return []
        out = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    def kill(self, name: str, sig: int = signal.SIGTERM, wait: float = 15) -> list[int]:
        """Signal the whole process group of a process we started; SIGKILL if it outlives `wait`."""
        proc = self.procs.get(name)
        if proc is None:
            return []
        members = self.group_members(name)
        if proc.poll() is None or members:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            # pool children may outlive the main process for a moment
            deadline = time.monotonic() + 10
            while self.group_members_raw(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.group_members_raw(proc.pid):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        del self.procs[name]
        return members

    @staticmethod
    def group_members_raw(pgid: int) -> list[int]:
        out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.kill(name, signal.SIGTERM)
            except Exception as exc:  # keep stopping the others
                say(f"  (could not stop {name}: {exc})")

    def log_tail(self, name: str, grep: str | None = None, lines: int = 15) -> str:
        path = self.logs.get(name)
        if not path or not path.exists():
            return ""
        text = path.read_text(errors="replace").splitlines()
        if grep:
            text = [t for t in text if grep in t]
        return "\n".join(text[-lines:])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def redis_ping(host: str, port: int) -> bool:
    try:
        return bool(redis.Redis(host=host, port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def manage(*args: str, broker: str, input_text: str | None = None) -> str:
    env = Stack().env(broker, CHECKER_APP)
    result = subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300, input=input_text)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- database -------------------------------------------------------------------------------------

def psql_admin(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, timeout=60,
                   capture_output=True, text=True)


def db() -> psycopg.Connection:
    return psycopg.connect(PG_URL, application_name=CHECKER_APP, autocommit=True, connect_timeout=10)


def prepare_database(broker: str) -> None:
    psql_admin(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DB_NAME}' AND pid <> "
        "pg_backend_pid()"
    )
    psql_admin(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql_admin(f"CREATE DATABASE {DB_NAME}")
    manage("migrate", "-v0", broker=broker)
    manage("seed_demo", broker=broker)
    # 1200 EUR a trade and 50,000 EUR of demo funds: top the buyer up so every scenario can buy.
    manage(
        "shell",
        "-c",
        (
            "from decimal import Decimal;"
            "from marketplace.models import Membership; from marketplace.services.deposits import deposit_record;"
            f"m = Membership.objects.get(user__username='{BUYER}');"
            f"deposit_record(organisation=m.organisation, amount=Decimal('{TOPUP}'), currency='EUR', "
            "actor_label='system:faults', note='faults run')"
        ),
        broker=broker,
    )


# --- API ------------------------------------------------------------------------------------------

class Client:
    def __init__(self) -> None:
        response = requests.post(
            f"{API}/api/v1/auth/token/", json={"username": BUYER, "password": PASSWORD}, timeout=30
        )
        response.raise_for_status()
        self.token = response.json()["token"]
        self.local = threading.local()
        page = (
            self.session()
            .get(f"{API}/api/v1/datasets/", params={"q": "retail", "jurisdiction": "DE"}, timeout=30)
            .json()
        )
        self.dataset = str(page["results"][0]["id"])

    def session(self) -> requests.Session:
        if not hasattr(self.local, "s"):
            self.local.s = requests.Session()
            self.local.s.headers["Authorization"] = f"Bearer {self.token}"
        return self.local.s

    def post_trade(self) -> tuple[int, str | None, float, str]:
        started = time.monotonic()
        try:
            response = self.session().post(  # the same dataset again and again: each a repeat purchase
                f"{API}/api/v1/trades/", json={"dataset": self.dataset, "repeat": True}, timeout=60
            )
        except requests.RequestException as exc:
            return 0, None, time.monotonic() - started, type(exc).__name__
        elapsed = time.monotonic() - started
        trade_id = response.json().get("id") if response.status_code == 201 else None
        return response.status_code, trade_id, elapsed, "" if response.status_code == 201 else response.text[:200]

    def burst(self, count: int, concurrency: int = 8) -> list[tuple[int, str | None, float, str]]:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(lambda _: self.post_trade(), range(count)))


# --- checks ---------------------------------------------------------------------------------------

def statuses(conn: psycopg.Connection, ids: list[str]) -> Counter[str]:
    rows = conn.execute(
        "SELECT status, count(*) FROM marketplace_trade WHERE id = ANY(%s::uuid[]) GROUP BY status", (ids,)
    ).fetchall()
    return Counter({s: n for s, n in rows})


def wait_final(conn: psycopg.Connection, ids: list[str], timeout: float) -> tuple[bool, float, Counter[str]]:
    started = time.monotonic()
    counts: Counter[str] = Counter()
    while time.monotonic() - started < timeout:
        counts = statuses(conn, ids)
        if sum(n for s, n in counts.items() if s in FINAL) == len(ids):
            return True, time.monotonic() - started, counts
        time.sleep(0.5)
    return False, time.monotonic() - started, counts


def check_trades(report: Report, conn: psycopg.Connection, ids: list[str], stack: Stack) -> None:
    """Every trade settled with one hold, then tests/invariants.py (per trade for `ids`, ledger-wide)."""
    counts = statuses(conn, ids)
    report.check(f"all {len(ids)} trades exist", sum(counts.values()) == len(ids), f"found {sum(counts.values())}")
    report.check("all trades settled", counts.get("settled", 0) == len(ids), f"statuses {dict(counts)}")
    holds: dict[str, int] = dict(
        conn.execute(
            "SELECT trade_id::text, count(*) FROM marketplace_ledgertransaction WHERE kind = 'hold' AND trade_id = "
            "ANY(%s::uuid[]) "
            "GROUP BY trade_id",
            (ids,),
        ).fetchall()
    )
    report.check("exactly one hold per trade", all(holds.get(t, 0) == 1 for t in ids))
    problems = invariant_violations(ids)
    report.check("tests/invariants.py: one settle and one Settlement per settled trade, no repeated transition, "
                 "every ledger transaction balanced, every wallet = its entries, none negative",
                 not problems, "; ".join(problems[:5]))
    for line in problems[:3]:
        trade_id = line.split()[1] if line.startswith("trade ") else ""
        if trade_id:
            say("    worker log:\n" + stack.log_tail("worker", trade_id, 20))
    check_buyer(report, conn)


def invariant_violations(ids: list[str]) -> list[str]:
    """tests/invariants.py's invariant_violations, run in Django against the bench database."""
    out = manage("shell", "-c", "import json, sys; from tests.invariants import invariant_violations; "
                 "print(json.dumps(invariant_violations(json.loads(sys.stdin.read()))))",
                 broker=shared_broker(), input_text=json.dumps(ids))
    return json.loads(out.strip().splitlines()[-1])


def check_audit(report: Report) -> None:
    env = Stack().env(shared_broker(), CHECKER_APP)
    result = subprocess.run([str(VENV_BIN / "python"), "manage.py", "verify_audit"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    output = (result.stdout + result.stderr).strip()
    report.check("audit chain verifies (manage.py verify_audit)", result.returncode == 0,
                 output.splitlines()[-1] if output else "")


def check_buyer(report: Report, conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT w.available, w.held, "
        "  (SELECT coalesce(sum(e.amount), 0) FROM marketplace_ledgerentry e JOIN marketplace_ledgertransaction t ON "
        "t.id = e.transaction_id "
        "     WHERE e.wallet_id = w.id AND t.kind = 'deposit'), "
        "  (SELECT coalesce(sum(tr.price), 0) FROM marketplace_trade tr JOIN marketplace_ledgertransaction t ON "
        "t.trade_id = tr.id "
        "     WHERE t.kind = 'settle' AND tr.buyer_id = w.organisation_id AND tr.currency = w.currency "
        "       AND NOT EXISTS (SELECT 1 FROM marketplace_ledgertransaction r WHERE r.trade_id = tr.id AND r.kind = "
        "'refund')) "
        "FROM marketplace_wallet w JOIN marketplace_membership m ON m.organisation_id = w.organisation_id "
        "JOIN auth_user u ON u.id = m.user_id WHERE u.username = %s AND w.currency = 'EUR'",
        (BUYER,),
    ).fetchone()
    assert row is not None, f"no EUR wallet for {BUYER}"
    available, held, deposits, spent = row
    report.check("buyer wallet: available + held + spent == deposits", available + held + spent == deposits,
                 f"{available} + {held} + {spent} = {available + held + spent} vs deposits {deposits}")


def unacked_trade_ids(client: redis.Redis) -> list[str]:
    """`task:trade id` of the messages the worker holds unacknowledged (delivered, not finished)."""
    ids = []
    try:
        for raw in client.hvals("unacked"):
            message = json.loads(raw)[0]
            body = json.loads(base64.b64decode(message["body"]))
            task = message.get("headers", {}).get("task", "")
            ids.append(f"{task.rsplit('.', 1)[-1]}:{body[0][0] if body[0] else ''}")  # a check drain has no id
    except (redis.RedisError, ValueError, KeyError, IndexError):
        pass
    return ids


def posted_ids(report: Report, results: list[tuple[int, str | None, float, str]]) -> list[str]:
    codes = Counter(code for code, *_ in results)
    errors = Counter(err for code, _, _, err in results if code != 201)
    report.check(f"API answered 201 to all {len(results)} POSTs", codes.get(201, 0) == len(results),
                 f"codes {dict(codes)}" + (f"; errors {dict(errors)}" if errors else ""))
    return [t for code, t, _, _ in results if code == 201 and t]


def count_in_log(stack: Stack, needle: str, since: int) -> int:
    path = stack.logs.get("worker")
    if not path or not path.exists():
        return 0
    with open(path, "rb") as f:
        f.seek(since)
        return f.read().decode(errors="replace").count(needle)


def log_size(stack: Stack, name: str = "worker") -> int:
    path = stack.logs.get(name)
    return path.stat().st_size if path and path.exists() else 0


# --- scenarios ------------------------------------------------------------------------------------

def shared_broker() -> str:
    host, port, number = SHARED_REDIS
    return f"redis://{host}:{port}/{number}"


def scenario_worker_kill(report: Report, stack: Stack, trades: int, timeout: float) -> None:
    say("\n=== Scenario 1: worker SIGKILLed mid-check, then restarted ===")
    broker = shared_broker()
    host, port, number = SHARED_REDIS
    rc = redis.Redis(host=host, port=port, db=number, socket_timeout=2)
    stack.start_api(broker)
    worker = stack.start_worker(broker)
    client = Client()
    conn = db()
    results: list[Any] = []
    poster = threading.Thread(target=lambda: results.extend(client.burst(trades)), daemon=True)
    t0 = time.monotonic()
    poster.start()
    # Kill once the worker is demonstrably processing (some trades already moved on) and holds a
    # check it has not acknowledged (acks_late: the message is unacked until the task returns).
    in_flight: list[str] = []
    progressed: Counter[str] = Counter()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        in_flight = unacked_trade_ids(rc)
        progressed = Counter(
            {
                s: n
                for s, n in conn.execute(
                    "SELECT status, count(*) FROM marketplace_trade WHERE status <> 'checking' AND created_at > now() "
                    "- interval '1 minute' "
                    "GROUP BY status"
                ).fetchall()
            }
        )
        checking = ("trade_check_compliance:", "trades_check_drain:")  # one trade's task, or a drain of many
        if sum(progressed.values()) >= 2 and any(t.startswith(checking) for t in in_flight):
            break
        time.sleep(0.005)
    members = stack.group_members("worker")
    kill_at = now()
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    killed_after = time.monotonic() - t0
    stack.procs.pop("worker", None)
    poster.join(timeout=120)
    ids = posted_ids(report, results)
    at_kill = statuses(conn, ids)
    report.injected(
        f"SIGKILL to worker process group {worker.pid} (PIDs {members}: main and 2 pool children) at {kill_at}, "
        f"{killed_after:.2f} s after the burst of {trades} POSTs began"
    )
    report.note(f"messages held unacknowledged by the worker at the kill: {len(in_flight)} {in_flight[:4]}; "
                f"trades already past `checking` then: {dict(progressed)}")
    report.note(f"trade statuses once the burst finished (worker dead): {dict(at_kill)}")
    time.sleep(1)
    unacked_after = unacked_trade_ids(rc)
    report.note(f"messages still in Redis 'unacked' after the kill (to be redelivered after visibility_timeout=15 s): "
                f"{len(unacked_after)}; queue length {rc.llen(QUEUE)}")
    since = log_size(stack)
    restart = time.monotonic()
    stack.start_worker(broker)
    report.injected(f"worker restarted at {now()} (new PIDs {stack.group_members('worker')})")
    done, waited, counts = wait_final(conn, ids, timeout)
    report.check(f"every trade final within {timeout:.0f} s of the restart", done,
                 f"{waited:.1f} s after restart; {dict(counts)}")
    # The killed worker's unacked messages come back after visibility_timeout, at the next kombu
    # restore sweep (every unacked_restore_interval x unacked_restore_throttle = 10 x 10 s by default,
    # so up to ~115 s here): wait for them to be redelivered and consumed (as no-ops) before
    # checking, so a double effect would show.
    drained = time.monotonic()
    while time.monotonic() - drained < 150 and (rc.hlen("unacked") or rc.llen(QUEUE)):
        time.sleep(0.5)
    report.check("the killed worker's unacknowledged messages were redelivered and consumed",
                 not rc.hlen("unacked") and not rc.llen(QUEUE),
                 f"unacked {rc.hlen('unacked')}, queued {rc.llen(QUEUE)} after {time.monotonic() - drained:.1f} s more")
    time.sleep(1)
    redelivered = sum(1 for t in in_flight if t.split(":", 1)[1] in set(ids))
    report.note(
        f"worker log since restart: {count_in_log(stack, 'duplicate delivery ignored', since)} duplicate check "
        "deliveries "
        f"ignored, {count_in_log(stack, 'nothing to settle', since)} duplicate settle deliveries ignored, "
        f"{count_in_log(stack, 'sweeper re-enqueued', since)} sweeps that re-enqueued; {redelivered} in-flight trades "
        f"were ours; {time.monotonic() - restart:.1f} s from the restart to the last redelivery consumed"
    )
    check_trades(report, conn, ids, stack)
    conn.close()
    stack.kill("worker")
    stack.kill("gunicorn")


def scenario_redis_down(report: Report, stack: Stack, trades: int, timeout: float) -> None:
    say("\n=== Scenario 2: Redis (the broker) stopped while trades are posted, then restarted ===")
    host, port, number = OWN_REDIS
    broker = f"redis://{host}:{port}/{number}"
    stack.start_redis()
    stack.start_api(broker)
    stack.start_worker(broker)
    client = Client()
    conn = db()
    warm = posted_ids(report, client.burst(3, 3))  # the stack works before the outage
    wait_final(conn, warm, 30)
    redis_pid = stack.procs["redis"].pid
    stack.kill("redis", signal.SIGTERM)
    down_at = time.monotonic()
    report.injected(
        f"SIGTERM to our redis-server on {host}:{port} (PID {redis_pid}, no persistence: its queue is gone) at {now()}"
    )
    since = log_size(stack)
    since_web = log_size(stack, "gunicorn")
    results = client.burst(trades, 4)
    rtts = sorted(r[2] for r in results)
    ids = posted_ids(report, results)
    report.note(
        f"{len(ids)} trades accepted while Redis was down; POST round trip median {rtts[len(rtts) // 2]:.2f} s, "
        f"max {rtts[-1]:.2f} s"
    )
    during = statuses(conn, ids)
    report.check("trades accepted during the outage stay in `checking` (nothing processed them)",
                 during.get("checking", 0) == len(ids), f"{dict(during)}")
    # config/enqueue.py's warning, per failed publish of a check drain (or of a trade's own check
    # task). A trade that commits while another request holds the drain claim publishes nothing
    # (the claim is given back when its publish fails), so there may be fewer warnings than trades.
    warning = "could not enqueue marketplace.trade"
    web_warnings = (stack.logs["gunicorn"].read_bytes()[since_web:]).decode(errors="replace").count(warning)
    report.check("the API logged its failed publishes (broker error swallowed)", 1 <= web_warnings <= len(ids),
                 f"{web_warnings} '{warning}' warnings for {len(ids)} trades")
    slowest = max(r[2] for r in results)
    report.check("no POST waited on the broker for more than its publish timeout", slowest < 5,
                 f"slowest POST {slowest:.2f} s")
    time.sleep(max(0.0, 8 - (time.monotonic() - down_at)))  # an outage of at least 8 s
    stack.start_redis()
    outage = time.monotonic() - down_at
    up_at = time.monotonic()
    report.injected(
        f"redis-server restarted (empty) at {now()}, PID {stack.procs['redis'].pid}; outage lasted {outage:.1f} s"
    )
    done, waited, counts = wait_final(conn, ids, timeout)
    report.check(f"every trade accepted during the outage final within {timeout:.0f} s of the restart", done,
                 f"{waited:.1f} s after Redis came back; {dict(counts)}")
    report.note(f"time from Redis restart to the last trade final: {time.monotonic() - up_at:.1f} s; worker log: "
                f"{count_in_log(stack, 'sweeper re-enqueued', since)} sweeps re-enqueued stuck trades, "
                f"{count_in_log(stack, 'duplicate delivery ignored', since)} duplicate check deliveries ignored")
    check_trades(report, conn, warm + ids, stack)
    check_audit(report)
    conn.close()
    stack.kill("worker")
    stack.kill("gunicorn")
    stack.kill("redis")


def scenario_db_drop(report: Report, stack: Stack, trades: int, timeout: float) -> None:
    say("\n=== Scenario 3: the worker's database connections terminated inside tasks ===")
    broker = shared_broker()
    stack.start_api(broker)
    stack.start_worker(broker)
    client = Client()
    conn = db()
    since = log_size(stack)
    stop = threading.Event()
    kills: list[tuple[str, int]] = []
    states: Counter[str] = (
        Counter()
    )  # what each terminated backend was doing (active / idle in transaction = inside a task)

    def terminator() -> None:
        killer = db()
        try:
            while not stop.is_set():
                rows = killer.execute(
                    "SELECT coalesce(state, '?'), pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid() "
                    "AND application_name = %s AND backend_type = 'client backend'",
                    (DB_NAME, WORKER_APP),
                ).fetchall()
                if rows:
                    kills.append((now(), len(rows)))
                    states.update(state for state, _ in rows)
                stop.wait(0.25)
        finally:
            killer.close()

    thread = threading.Thread(target=terminator, daemon=True)
    started = now()
    thread.start()
    t0 = time.monotonic()
    results = client.burst(trades, 8)
    ids = posted_ids(report, results)
    # Keep killing while the worker is busy with our trades (bounded), then let it finish.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(n for s, n in statuses(conn, ids).items() if s in FINAL) < len(ids) * 0.8:
        time.sleep(0.25)
    stop.set()
    thread.join(timeout=10)
    report.injected(
        f"pg_terminate_backend on every connection with application_name={WORKER_APP} every 0.25 s from {started} "
        f"for {time.monotonic() - t0:.1f} s: {sum(n for _, n in kills)} backends terminated in {len(kills)} rounds "
        f"(the API's and this checker's connections spared); their state when terminated: {dict(states)}"
    )
    done, waited, counts = wait_final(conn, ids, timeout)
    report.check(
        f"every trade final within {timeout:.0f} s after the terminations stopped",
        done,
        f"{waited:.1f} s; {dict(counts)}",
    )
    retries = count_in_log(stack, "retry: Retry in", since)
    errors = count_in_log(stack, "OperationalError", since) + count_in_log(stack, "InterfaceError", since)
    failed = count_in_log(stack, "] raised unexpected", since)
    report.note(f"worker log: {retries} task retries, {errors} lines naming OperationalError/InterfaceError, "
                f"{failed} tasks failed outright (the sweeper re-drives those)")
    report.check("the dropped connections were hit inside tasks and retried", retries > 0, f"{retries} retries logged")
    sample = stack.log_tail("worker", "retry: Retry in", 2)
    if sample:
        say("    e.g. " + sample.replace("\n", "\n    e.g. ")[:600])
    check_trades(report, conn, ids, stack)
    conn.close()
    stack.kill("worker")
    stack.kill("gunicorn")


def scenario_redis_kills(report: Report, stack: Stack, trades: int, timeout: float) -> None:
    say("\n=== Scenario 4: Redis (the broker) killed five times under load, then frozen with SIGSTOP ===")
    host, port, number = OWN_REDIS
    broker = f"redis://{host}:{port}/{number}"
    stack.start_redis()
    stack.start_api(broker)
    worker = stack.start_worker(broker)
    worker_pid, beat_pid = worker.pid, stack.procs["beat"].pid
    client = Client()
    conn = db()
    since = log_size(stack)
    stop = threading.Event()
    results: list[tuple[int, str | None, float, str]] = []

    def load() -> None:  # a steady stream of purchases (about 3 a second), across every fault, until told to stop
        with ThreadPoolExecutor(8) as pool:
            futures: list[Future[Any]] = []
            while not stop.is_set() and len(futures) < 1000:
                futures.append(pool.submit(client.post_trade))
                time.sleep(0.3)
            results.extend(f.result() for f in futures)

    poster = threading.Thread(target=load, daemon=True)
    poster.start()
    time.sleep(2)
    for round_ in range(1, 6):
        pid = stack.procs["redis"].pid
        stack.kill("redis", signal.SIGKILL)
        report.injected(f"round {round_}: SIGKILL to redis-server PID {pid} at {now()} "
                        "(in flight: whatever the worker held)")
        time.sleep(2.5)
        stack.start_redis()
        time.sleep(4)
    pid = stack.procs["redis"].pid
    os.kill(pid, signal.SIGSTOP)
    report.injected(f"SIGSTOP to redis-server PID {pid} at {now()}: connections stay open, nothing answers")
    time.sleep(12)
    os.kill(pid, signal.SIGCONT)
    report.injected(f"SIGCONT at {now()}")
    time.sleep(3)
    stop.set()
    poster.join(timeout=300)
    say(f"  POST statuses, in order ({len(results)} requests):")
    for i in range(0, len(results), 20):
        say(f"    {i + 1:3d}-{min(i + 20, len(results)):3d}: " + " ".join(str(code) for code, *_ in results[i:i + 20]))
    rtts = sorted(r[2] for r in results)
    report.note(f"POST round trip median {rtts[len(rtts) // 2]:.2f} s, max {rtts[-1]:.2f} s")
    ids = posted_ids(report, results)
    up = time.monotonic()
    done, waited, counts = wait_final(conn, ids, timeout)
    report.check(f"every trade final within {timeout:.0f} s of the last fault", done, f"{waited:.1f} s; {dict(counts)}")
    report.check("the same worker process is alive (no crash, nobody restarted it)",
                 worker.poll() is None and stack.procs.get("worker") is worker and worker.pid == worker_pid,
                 f"PID {worker_pid}")
    beat = stack.procs["beat"]
    report.check("beat is alive", beat.poll() is None and beat.pid == beat_pid, f"PID {beat_pid}")
    crashes = count_in_log(stack, "Unrecoverable error", since)
    report.check("no 'Unrecoverable error' in the worker log", crashes == 0, f"{crashes} found")
    report.note(f"worker log: {count_in_log(stack, 'Connection to broker lost', since)} connection losses, "
                f"{count_in_log(stack, 'Restoring', since)} 'Restoring … unacknowledged message(s)', "
                f"{count_in_log(stack, 'Connected to redis', since)} reconnects, "
                f"{count_in_log(stack, 'sweeper re-enqueued', since)} sweeps that re-enqueued, "
                f"{count_in_log(stack, 'duplicate delivery ignored', since)} duplicate check deliveries ignored; "
                f"last trade final {time.monotonic() - up:.1f} s after the last fault")
    check_trades(report, conn, ids, stack)
    check_audit(report)
    conn.close()
    stack.kill("worker")
    stack.kill("beat")
    stack.kill("gunicorn")
    stack.kill("redis")


SCENARIOS = {"1": scenario_worker_kill, "2": scenario_redis_down, "3": scenario_db_drop, "4": scenario_redis_kills}


def main() -> int:
    global DB_NAME, PG_URL, SHARED_REDIS, OWN_REDIS, API_PORT, API, VAR_DIR, QUEUE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--trades", type=int, default=40, help="trades per scenario (default 40)")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for trades to become final (default 120)"
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the database for inspection")
    parser.add_argument("--database", default=DB_NAME, help="PostgreSQL database to drop, re-create and use")
    parser.add_argument("--redis-db", type=int, default=SHARED_REDIS[2], help="DB number on the shared Redis")
    parser.add_argument("--redis-port", type=int, default=OWN_REDIS[1], help="port of the private redis-server")
    parser.add_argument("--api-port", type=int, default=API_PORT, help="port for the bench's gunicorn")
    parser.add_argument("--var-dir", type=Path, default=VAR_DIR, help="scratch folder, wiped at the start")
    parser.add_argument("--queue", default=QUEUE, help="Celery queue")
    args = parser.parse_args()
    VAR_DIR, QUEUE = args.var_dir, args.queue
    API_PORT, API = args.api_port, f"http://127.0.0.1:{args.api_port}"
    DB_NAME, SHARED_REDIS = args.database, (*SHARED_REDIS[:2], args.redis_db)
    OWN_REDIS = (OWN_REDIS[0], args.redis_port, 0)
    PG_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
    for tool in ("psql", "redis-server", "pgrep"):
        if not shutil.which(tool):
            say(f"{tool} not found")
            return 2
    report = Report()
    stack = Stack()
    shutil.rmtree(VAR_DIR, ignore_errors=True)
    VAR_DIR.mkdir(parents=True)
    if redis_ping(OWN_REDIS[0], OWN_REDIS[1]):
        say(f"something already listens on {OWN_REDIS[0]}:{OWN_REDIS[1]}; refusing to use it")
        return 2
    if http_ok(f"{API}/healthz") or port_taken(API_PORT):
        say(f"something already listens on 127.0.0.1:{API_PORT} (another bench run?); pass --api-port")
        return 2
    say(f"Elementa fault injection — {time.strftime('%Y-%m-%d %H:%M:%S')}; database {DB_NAME}, queue {QUEUE}, "
        f"private Redis on port {OWN_REDIS[1]}, shared Redis DB {SHARED_REDIS[2]}, "
        f"visibility_timeout 15 s, stuck after 5 s, sweep every 3 s; logs in {VAR_DIR}")
    started = time.monotonic()
    try:
        host, port, number = SHARED_REDIS
        redis.Redis(host=host, port=port, db=number, socket_timeout=2).flushdb()  # our own DB number only
        prepare_database(shared_broker())
        say(
            f"prepared: database re-created, migrated, seeded, buyer {BUYER} topped up by {TOPUP} EUR; Redis DB "
            f"{number} flushed"
        )
        for key in (list(SCENARIOS) if args.scenario == "all" else [args.scenario]):
            try:
                SCENARIOS[key](report, stack, args.trades, args.timeout)
            except Exception as exc:  # a scenario that cannot run is a failure, the others still run
                report.check(f"scenario {key} ran to completion", False, f"{type(exc).__name__}: {exc}")
                say(stack.log_tail("worker", None, 20))
            finally:
                stack.stop_all()
    finally:
        stack.stop_all()
        if not args.keep_db:
            try:
                psql_admin(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DB_NAME}' AND pid <> "
                    "pg_backend_pid()"
                )
                psql_admin(f"DROP DATABASE IF EXISTS {DB_NAME}")
            except Exception as exc:
                say(f"(could not drop {DB_NAME}: {exc})")
    say(f"\n{'ALL CHECKS PASSED' if not report.failures else 'FAILED: ' + '; '.join(report.failures)} "
        f"({time.monotonic() - started:.0f} s)")
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
