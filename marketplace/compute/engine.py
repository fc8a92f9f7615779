"""Run a checked query in DuckDB, in-process, with DuckDB's own guards on.

Each run opens a fresh in-memory DuckDB, attaches the table's prepared database file read-only,
then turns off file and network access (`enable_external_access=false`, no extension auto-install
or auto-load, no community extensions, no spilling), sets memory, thread and time limits, and locks
the configuration so the query cannot change any of it. A timer interrupts the connection as a
second time limit. DuckDB's error text can echo cell values, so errors come back as codes only.

DuckDB's own advice is that these settings are defence in depth, not a sandbox: the query check in
sqlcheck.py runs first, and workers run in the data's jurisdiction with no other data mounted.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 512
    threads: int = 2
    timeout_seconds: float = 20.0
    fetch_rows: int = 100_000


class EngineError(RuntimeError):
    """The query ran and failed; `code` is one of time_limit, memory_limit, query_failed, table_unavailable."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class RawResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rows_read: int
    elapsed_ms: float


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def prepared_path(cache_dir: Path, *, file_sha256: str, table: str, columns: list[str]) -> Path:
    key = hashlib.sha256(f"{file_sha256}|{table}|{'|'.join(columns)}".encode()).hexdigest()[:32]
    return cache_dir / f"{key}.duckdb"


def prepared_meta(target: Path) -> dict[str, Any]:
    """What preparation measured about the table: {"rows": n, "identifier_unique": bool}."""
    meta = target.with_name(target.name + ".json")
    return json.loads(meta.read_text()) if meta.exists() else {}


def prepare_table(
    csv_path: Path, target: Path, *, table: str, columns: list[str], identifier: str | None = None
) -> Path:
    """Load the declared `columns` of a CSV file into a DuckDB database file holding one table
    (built once per file version: a temporary file, then an atomic rename). Undeclared columns are
    dropped: a query can never read a column the offer did not describe.

    With an `identifier`, it also records whether every row has a distinct, non-null identifier
    (one row per person): then the per-group contributor count can be COUNT(*), which equals
    COUNT(DISTINCT identifier) for every group, at a fraction of the cost."""
    if target.exists():
        return target
    with open(csv_path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in columns if c not in header]
    if missing:
        raise EngineError("table_unavailable", f"the file lacks the offered columns {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    try:
        select = ", ".join(_quote(c) for c in columns)
        source = str(csv_path).replace("'", "''")
        con.execute(f"CREATE TABLE {_quote(table)} AS SELECT {select} FROM read_csv('{source}', header = true)")
        con.execute("CHECKPOINT")
        meta: dict[str, Any] = {"rows": int(con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0])}  # type: ignore[index]
        if identifier:
            ident = _quote(identifier)
            counted = con.execute(f"SELECT count({ident}), count(DISTINCT {ident}) FROM {_quote(table)}").fetchone()
            meta["identifier_unique"] = bool(counted and counted[0] == counted[1] == meta["rows"])
        target.with_name(target.name + ".json").write_text(json.dumps(meta))
    finally:
        con.close()
    os.replace(partial, target)
    return target


def _guarded_connection(database: Path, limits: Limits) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={
        "threads": str(limits.threads), "memory_limit": f"{limits.memory_mb}MB",
        "autoinstall_known_extensions": "false", "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
    })
    path = str(database).replace("'", "''")
    con.execute(f"ATTACH '{path}' AS dataset (READ_ONLY)")
    con.execute("USE dataset")
    con.execute("SET python_enable_replacements = false")
    con.execute("SET temp_directory = ''")  # no spilling to disk: the memory limit is a limit
    con.execute("SET enable_external_access = false")  # no files, no network, no ATTACH, no extensions
    con.execute(f"SET max_execution_time = {int(limits.timeout_seconds * 1000)}")
    con.execute("SET lock_configuration = true")  # nothing above can be changed by the query
    return con


def run_query(sql: str, *, database: Path, table: str, limits: Limits) -> RawResult:
    """Run `sql` (already checked and rewritten) against the prepared `database`."""
    if not database.exists():
        raise EngineError("table_unavailable", "the prepared table is missing")
    started = time.perf_counter()
    con: duckdb.DuckDBPyConnection | None = None
    timer: threading.Timer | None = None
    try:
        con = _guarded_connection(database, limits)
        timer = threading.Timer(limits.timeout_seconds + 2.0, con.interrupt)  # backstop for the setting
        timer.daemon = True
        rows_read = int(con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0])  # type: ignore[index]
        timer.start()
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchmany(limits.fetch_rows)
    except duckdb.InterruptException:
        raise EngineError(
            "time_limit", f"the query ran longer than {limits.timeout_seconds:g} s and was stopped"
        ) from None
    except duckdb.OutOfMemoryException:
        raise EngineError("memory_limit", f"the query needed more than {limits.memory_mb} MB and was stopped") from None
    except duckdb.Error as exc:
        # Never DuckDB's own text: it can quote cell values ("Could not convert string '…'").
        raise EngineError("query_failed", f"the query failed in the engine ({type(exc).__name__})") from None
    finally:
        if timer is not None:
            timer.cancel()
        if con is not None:
            con.close()
    return RawResult(columns=columns, rows=rows, rows_read=rows_read, elapsed_ms=(time.perf_counter() - started) * 1000)
