"""`make run` supervises the API, the worker and beat as three processes (config/supervisord.conf):
one that dies comes back, and SIGTERM to `make` stops every one of them."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import _database_url_for_worker
from tests.ops.processes import ROOT, alive, descendants, free_port, port_open, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
SUPERVISORCTL = str(Path(sys.executable).parent / "supervisorctl")


def ctl(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([SUPERVISORCTL, "--configuration", "config/supervisord.conf", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    return result.stdout


def running(env: dict[str, str]) -> dict[str, int]:
    """Program name → PID for every program supervisord reports RUNNING."""
    pids = {}
    for line in ctl(env, "status").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
            pids[parts[0].split(":")[-1]] = int(parts[3].rstrip(","))  # "elementa:worker" → "worker"
    return pids


def test_a_killed_worker_comes_back_and_sigterm_stops_everything():
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    var = Path(settings.VAR_DIR) / "supervised"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "ELEMENTA_VAR_DIR": str(var), "DATABASE_URL": _database_url_for_worker(),
           "ELEMENTA_CELERY_QUEUE": f"{settings.CELERY_TASK_DEFAULT_QUEUE}-supervised"}
    with open(var / "make-serve.log", "wb") as log:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "serve", f"PORT={port}", "WEB_WORKERS=1", "CELERY_CONCURRENCY=1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: set(running(env)) == {"web", "worker", "beat"}, 60, "web, worker and beat to be RUNNING")
        wait_until(lambda: port_open(port), 30, f"gunicorn on port {port}")
        first = running(env)
        old_pool = descendants(first["worker"])

        os.kill(first["worker"], signal.SIGKILL)

        wait_until(
            lambda: running(env).get("worker", first["worker"]) != first["worker"],
            30,
            "supervisord to restart the worker",
        )
        assert (
            running(env)["beat"] == first["beat"] and running(env)["web"] == first["web"]
        )  # the others were left alone
        wait_until(lambda: not any(alive(p) for p in old_pool), 30, "the killed worker's pool processes to exit")

        everything = descendants(make.pid) | {make.pid}
        assert len(everything) >= 6  # make, supervisord, gunicorn + its worker, celery worker + pool, beat
        make.send_signal(signal.SIGTERM)

        wait_until(
            lambda: not any(alive(p) for p in everything), 15, f"every process to exit after SIGTERM: {everything}"
        )
        assert make.wait(timeout=5) is not None
        assert not port_open(port)
    finally:
        if make.poll() is None or any(alive(p) for p in descendants(make.pid)):
            for pid in descendants(make.pid) | {make.pid}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
