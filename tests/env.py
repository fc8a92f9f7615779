"""Loaded by pytest (-p tests.env) before Django settings: isolate the suite's files and queue."""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("ELEMENTA_VAR_DIR", str(_ROOT / "var" / "test"))
os.environ.setdefault("ELEMENTA_CELERY_QUEUE", f"elementa-test-{os.getpid()}")
os.environ.setdefault("ELEMENTA_FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("ELEMENTA_LOG_LEVEL", "WARNING")
# The suite makes thousands of requests as a handful of users; throttling has its own tests.
os.environ.setdefault("ELEMENTA_THROTTLE_WRITE", "100000/min")
os.environ.setdefault("ELEMENTA_THROTTLE_LOGIN", "100000/min")
