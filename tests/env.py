"""Loaded by pytest (-p tests.env) before Django settings: isolate the suite's files and queue."""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
# Under pytest-xdist each worker process (gw0, gw1, …) gets a folder of its own: the embedded
# broker, the file cache and the worker's logs must not be shared between two test sessions.
_XDIST = os.environ.get("PYTEST_XDIST_WORKER", "")
os.environ.setdefault("ELEMENTA_VAR_DIR", str(_ROOT / "var" / "test"))
if _XDIST:
    os.environ["ELEMENTA_VAR_DIR"] = os.path.join(os.environ["ELEMENTA_VAR_DIR"], _XDIST)
os.environ.setdefault("ELEMENTA_CELERY_QUEUE", f"elementa-test-{os.getpid()}")
os.environ.setdefault("ELEMENTA_FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("ELEMENTA_LOG_LEVEL", "WARNING")
# The suite makes thousands of requests as a handful of users; throttling has its own tests.
os.environ.setdefault("ELEMENTA_THROTTLE_WRITE", "100000/min")
os.environ.setdefault("ELEMENTA_THROTTLE_LOGIN", "100000/min")
os.environ.setdefault("ELEMENTA_THROTTLE_ANON", "100000/min")
# The worker process sends e-mail to files under VAR_DIR/mail, where worker tests read them (in the
# test process itself pytest-django switches to the locmem backend: the `mailoutbox` fixture).
os.environ.setdefault("ELEMENTA_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
