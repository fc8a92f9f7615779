"""What every benchmark shares: percentiles, signing in, and CPU time read from /proc.

The benchmarks run as scripts (`python bench/pipeline.py`), so this module is imported as `common`.
"""

import math
import os
import time
from collections.abc import Sequence

import requests

HTTP_TIMEOUT = 30.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]; None for an empty sequence."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def quantile(values: Sequence[float], q: float) -> float:
    """`percentile` of a sequence that cannot be empty (ValueError if it is)."""
    result = percentile(values, q)
    if result is None:
        raise ValueError("no samples")
    return result


def sign_in(base_url: str, username: str, password: str, *, session: requests.Session | None = None,
            timeout: float | tuple[float, float] = HTTP_TIMEOUT) -> str:
    """A bearer token for `username`, or SystemExit naming the refusal."""
    response = (session or requests).post(f"{base_url.rstrip('/')}/api/v1/auth/token/",
                                          json={"username": username, "password": password},
                                          timeout=timeout, allow_redirects=False)
    token = response.json().get("token") if response.status_code == 200 else None
    if not token:
        raise SystemExit(f"login as {username} failed: HTTP {response.status_code} {response.text[:300]}")
    return str(token)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (and its reaped children) has used, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def calibration_ms(rounds: int = 3) -> float:
    """CPU milliseconds this process needs for a fixed pure-Python loop (the best of `rounds`): how
    fast a core runs right now. On a shared virtual machine every CPU-per-unit figure varied
    1.5-2x within one session with the neighbours' load, and so did this loop (75-135 ms in one
    session): it tells a slow run from a fast one, and a figure divided by it ("calibration
    loops") is a rough guide across machines, not a precise one. Ratios within one run stay the
    comparison to trust."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return best * 1000
