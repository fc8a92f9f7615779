"""Which processes did the work, and how much CPU each group spent: read from /proc.

Groups: the API (a gunicorn master and its workers), the Celery worker (main and pool processes),
the PostgreSQL backends serving one database, and redis-server. Processes are found by command
line (and, for gunicorn and celery, by ELEMENTA_VAR_DIR in their environment, so another
checkout's servers on the same machine are left out). redis-server is shared by everything on
the machine: its figure is an upper bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from common import cpu_seconds


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _env_has(pid: int, needle: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return needle.encode() in f.read().split(b"\0")
    except OSError:
        return False


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _own_cpu(pid: int) -> float:
    """User + system seconds of the process itself (not its reaped children: a gunicorn master
    would otherwise count its dead workers twice)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_groups(var_dir: str, database: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {"gunicorn": [], "celery": [], "postgres": [], "redis": []}
    marker = f"ELEMENTA_VAR_DIR={var_dir}"
    for pid in _pids():
        cmd = _cmdline(pid)
        if not cmd:
            continue
        if "gunicorn" in cmd and "config.wsgi" in cmd and _env_has(pid, marker):
            groups["gunicorn"].append(pid)
        elif "celery" in cmd and " worker" in cmd and _env_has(pid, marker):
            groups["celery"].append(pid)
        elif cmd.startswith("postgres:") and f" {database} " in f"{cmd} ":
            groups["postgres"].append(pid)
        elif cmd.startswith("redis-server") or cmd.split(" ")[0].endswith("/redis-server"):
            groups["redis"].append(pid)
    return groups


@dataclass
class CpuSample:
    groups: dict[str, dict[int, float]] = field(default_factory=dict)


def sample(var_dir: str, database: str) -> CpuSample:
    result = CpuSample()
    for name, pids in find_groups(var_dir, database).items():
        seen: dict[int, float] = {}
        for pid in pids:
            try:
                seen[pid] = _own_cpu(pid)
            except OSError:
                continue
        result.groups[name] = seen
    return result


def cpu_delta(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """CPU seconds each group spent between the samples (a process born in between counts whole)."""
    out: dict[str, float] = {}
    for name, now in after.groups.items():
        then = before.groups.get(name, {})
        out[name] = sum(max(cpu - then.get(pid, 0.0), 0.0) for pid, cpu in now.items())
    return out


__all__ = ["CpuSample", "cpu_delta", "cpu_seconds", "find_groups", "sample"]
