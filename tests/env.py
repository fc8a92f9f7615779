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
# The worker process sends e-mail to files under VAR_DIR/mail, where worker tests read them (in the
# test process itself pytest-django switches to the locmem backend: the `mailoutbox` fixture).
os.environ.setdefault("ELEMENTA_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
