"""Measures the audit trail: hash-chained appends per second and chain verification speed.

Runs in-process against the configured database (DATABASE_URL; default SQLite under var/), in a
throwaway chain it creates and removes afterwards unless --keep is given:

    .venv/bin/python bench/audit.py --events 5000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/elementa_bench .venv/bin/python bench/audit.py

Goals: ≥ 1,000 appends/s; verify 1M events in ≤ 60 s.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from compliance.models import AuditChainHead, AuditEvent  # noqa: E402
from compliance.services.audit import audit_chain, audit_record, audit_verify  # noqa: E402


def append(n: int, label: str) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(kind="bench.event", subject_type="bench", subject_id=f"{label}-{i}",
                         data={"i": i, "amount": "12.34", "note": "x" * 64}, actor_label="system:bench")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4, help="concurrent appenders for the second measurement")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    before = AuditEvent.objects.count()

    start = time.perf_counter()
    append(args.events, "serial")
    serial = args.events / (time.perf_counter() - start)

    per_thread = max(1, args.events // args.threads)
    threads = [threading.Thread(target=append, args=(per_thread, f"t{t}")) for t in range(args.threads)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent = per_thread * args.threads / (time.perf_counter() - start)

    total = AuditEvent.objects.count()
    start = time.perf_counter()
    chained = audit_chain()
    chain_s = time.perf_counter() - start
    start = time.perf_counter()
    report = audit_verify()
    verify_s = time.perf_counter() - start

    print(f"database: {connection.vendor}")
    print(f"appends, one writer: {serial:,.0f} events/s ({args.events:,} events, one transaction each)")
    print(f"appends, {args.threads} writers: {concurrent:,.0f} events/s (no shared lock: the chainer links them later)")
    print(f"chaining: {chained:,} events in {chain_s:.2f} s = {chained / max(chain_s, 1e-9):,.0f} events/s")
    print(f"verify: {total:,} events in {verify_s:.2f} s = {total / verify_s:,.0f} events/s "
          f"→ 1M events in about {1_000_000 / (total / verify_s):.0f} s; chain ok: {report.ok}")
    print(f"goals: ≥ 1,000 appends/s → {'PASS' if serial >= 1000 else 'FAIL'}; 1M verified ≤ 60 s → "
          f"{'PASS' if 1_000_000 / (total / verify_s) <= 60 else 'FAIL'}")
    if not args.keep and before == 0:
        AuditEvent.objects.all().delete()
        AuditChainHead.objects.all().delete()


if __name__ == "__main__":
    main()
