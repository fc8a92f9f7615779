"""Settings, all from the environment, with embedded defaults that need no server.

Defaults: SQLite under var/ and kombu's filesystem broker under var/broker, so a fresh machine
runs the API and a real Celery worker with nothing else installed. DATABASE_URL and
CELERY_BROKER_URL switch to PostgreSQL and Redis.
"""

import os
import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url

from config.queues import family_queues, task_queue, task_routes

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ELEMENTA_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in {"1", "true", "yes", "on"}


def _local_secret_key() -> str:
    """A per-checkout development key kept in var/, never in the repository."""
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
PRODUCTION = env_bool("ELEMENTA_PRODUCTION", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ("" if PRODUCTION else _local_secret_key())
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY is required when ELEMENTA_PRODUCTION is on")
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "compliance",
    "marketplace",
]

MIDDLEWARE = [
    "config.logging.RequestIdMiddleware",
    "config.security.ResponseHeadersMiddleware",  # outside the rest: it sees every response, error pages too
    "config.limits.RequestLimitsMiddleware",  # before anything reads the query string or the body
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Database --------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'elementa.sqlite3'}"),
        # Reuse connections: a new PostgreSQL connection per request or task cost more than the
        # work itself (bench/pipeline.py). Health checks drop a connection the server closed.
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The API and the worker are separate processes writing one file: WAL lets readers run
    # beside a writer, IMMEDIATE takes the write lock up front (no deadlock on lock upgrade),
    # and the timeout makes a writer wait instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so a worker process started by the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-elementa.sqlite3")}
ATOMIC_REQUESTS = False  # services draw their own transaction boundaries (`@transaction.atomic` on each service)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
if env_bool("ELEMENTA_FAST_PASSWORD_HASHER", False):  # the test suite only
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploaded datasets and documents: local files by default; any S3-compatible store in production
# (AWS S3, MinIO, Ceph, R2) through django-storages, configured by its AWS_* variables.
if os.environ.get("ELEMENTA_STORAGE") == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "default_acl": None,
            "querystring_auth": True,   # files are private; the API streams them to grant holders
            "file_overwrite": False,    # versions are immutable
        },
    }
WHITENOISE_USE_FINDERS = True  # serve admin and Swagger UI assets even before collectstatic
MEDIA_ROOT = Path(os.environ.get("ELEMENTA_MEDIA_ROOT", VAR_DIR / "media"))

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",  # + errors per operation, the public catalogue
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.WriteRateThrottle"],
    # How many reverse proxies in front of the API append to X-Forwarded-For. 0 (the default): the
    # header is ignored and throttles key on REMOTE_ADDR, so a client cannot rotate it to escape them.
    "NUM_PROXIES": int(os.environ.get("ELEMENTA_TRUSTED_PROXIES", "0")),
    "DEFAULT_THROTTLE_RATES": {
        "write": os.environ.get("ELEMENTA_THROTTLE_WRITE", "120/min"),
        "login": os.environ.get("ELEMENTA_THROTTLE_LOGIN", "30/min"),
        # Unauthenticated reads of the public catalogue, per client address (docs/dcat.md).
        "anon": os.environ.get("ELEMENTA_THROTTLE_ANON", "60/min"),
    },
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # The HTML browsable API only when asked for (ELEMENTA_BROWSABLE_API=1): errors are always JSON otherwise.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if env_bool("ELEMENTA_BROWSABLE_API", False) else []),
    # JSON only, with size, depth, list-length and NUL limits (config/parsers.py, docs/limits.md). The file
    # uploads (dataset files, trade documents, mechanisms) set multipart on their own views; a form body
    # anywhere else is 415 `unsupported_media_type`, so the OpenAPI document offers one body type per operation.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.BoundedJSONParser"],
    "COERCE_DECIMAL_TO_STRING": True,
    # Test clients send JSON unless a test asks for multipart (the uploads): the API takes nothing else.
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Elementa API",
    "DESCRIPTION": "A data-element marketplace whose cross-border trades are checked against transfer law before they "
                   "settle.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids and tags without the version: `trades_create`, tag `trades` (config/openapi.py: areas).
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.openapi.postprocess"],
    "ENUM_NAME_OVERRIDES": {
        "TradeStatusEnum": "marketplace.models.Trade.Status",
        "DatasetStatusEnum": "marketplace.models.Dataset.Status",
        "DatasetPricingEnum": "marketplace.models.Dataset.Pricing",  # the list's and the detail's shapes share it
        "EvidenceStatusEnum": "marketplace.models.EvidenceStatus",
        "OrganisationKindEnum": "marketplace.models.Organisation.Kind",
        "OrganisationFactsKindEnum": "marketplace.models.OrganisationFacts.Kind",
        "OutcomeEnum": "compliance.apis.serializers.OUTCOMES",
        "PurposeEnum": "compliance.engine.vocabulary.PURPOSES",
        "DeliveryEnum": "compliance.engine.vocabulary.DELIVERIES",
        "ClassificationEnum": "compliance.engine.vocabulary.CLASSIFICATIONS",
        "MechanismCodeEnum": "compliance.engine.vocabulary.MECHANISMS",
        "CategoryEnum": "compliance.engine.vocabulary.CATEGORIES",
        "DataFlagsEnum": "compliance.engine.vocabulary.DATA_FLAGS",
        "ExporterFlagsEnum": "compliance.engine.vocabulary.EXPORTER_FLAGS",
        "CertificationEnum": "compliance.engine.vocabulary.CERTIFICATIONS",
        "BuyerKindEnum": "compliance.engine.vocabulary.BUYER_KINDS",
        "ComputePricingEnum": "marketplace.models.ComputeOffer.Pricing",
        "TradePricingEnum": "marketplace.apis.serializers.TRADE_PRICINGS",
    },
}

# Throttle counters and login lock-outs, shared by every gunicorn worker: files under VAR_DIR on the
# embedded default (a per-process cache would let each worker count on its own), Redis when
# CELERY_BROKER_URL (or ELEMENTA_CACHE_URL) points at Redis.
_cache_url = os.environ.get("ELEMENTA_CACHE_URL") or (
    os.environ.get("CELERY_BROKER_URL", "") if os.environ.get("CELERY_BROKER_URL", "").startswith("redis") else ""
)
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "config.redis_cache.ElementaRedisCache",  # Django's, one client per pool
        "LOCATION": _cache_url,
        "KEY_PREFIX": "elementa",
    }
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
}
# A dry run may look this many days past today (a planned trade); later dates are refused
# (trade_date_out_of_range), as are dates before the earliest rule pack's effective_from.
ELEMENTA_TRADE_DATE_MAX_DAYS_AHEAD = int(os.environ.get("ELEMENTA_TRADE_DATE_MAX_DAYS_AHEAD", "366"))
ELEMENTA_LOGIN_MAX_FAILURES = int(os.environ.get("ELEMENTA_LOGIN_MAX_FAILURES", "5"))
ELEMENTA_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("ELEMENTA_LOGIN_LOCKOUT_SECONDS", "900"))
# Back-off per (account, address) from the MAX_FAILURES-th failure in a row: this many seconds,
# doubling with each further failure, capped at LOCKOUT_SECONDS (which is also how long failures count).
ELEMENTA_LOGIN_BACKOFF_SECONDS = int(os.environ.get("ELEMENTA_LOGIN_BACKOFF_SECONDS", "30"))

# --- The public catalogue (docs/dcat.md) -------------------------------------------------------------
# On: anyone may read the published catalogue without signing in (GET only: the dataset list and
# detail without provider-private fields, the DCAT-AP export, each listing's ODRL policy), throttled
# per address by ELEMENTA_THROTTLE_ANON. Off: those reads need a session or API key (401), as every
# other endpoint. Default: on outside production (the demo, local runs), off in production unless set.
ELEMENTA_PUBLIC_CATALOGUE = env_bool("ELEMENTA_PUBLIC_CATALOGUE", not PRODUCTION)
ELEMENTA_CATALOGUE_TITLE = os.environ.get("ELEMENTA_CATALOGUE_TITLE", "Elementa data catalogue")
ELEMENTA_CATALOGUE_DESCRIPTION = os.environ.get(
    "ELEMENTA_CATALOGUE_DESCRIPTION",
    "Datasets offered on the Elementa marketplace; each is bought through a trade checked against "
    "cross-border transfer law before it settles.",
)
ELEMENTA_CATALOGUE_PUBLISHER = os.environ.get("ELEMENTA_CATALOGUE_PUBLISHER", "Elementa")
# DCAT-AP export pages: this many datasets unless ?page_size= asks for another number up to the max.
ELEMENTA_CATALOGUE_PAGE_SIZE = int(os.environ.get("ELEMENTA_CATALOGUE_PAGE_SIZE", "100"))
ELEMENTA_CATALOGUE_MAX_PAGE_SIZE = int(os.environ.get("ELEMENTA_CATALOGUE_MAX_PAGE_SIZE", "500"))

# --- Sessions and API keys (docs/authentication.md) ---------------------------------------------
# Each login is a session: a django-rest-knox token (only its SHA-512 digest is stored) that expires
# after ELEMENTA_TOKEN_TTL_HOURS. With ELEMENTA_TOKEN_AUTO_REFRESH on, each use pushes the expiry out
# again (at most once a minute, never past ELEMENTA_TOKEN_MAX_TTL_HOURS after the login).
ELEMENTA_TOKEN_TTL_HOURS = float(os.environ.get("ELEMENTA_TOKEN_TTL_HOURS", "10"))
ELEMENTA_MAX_SESSIONS_PER_USER = int(os.environ.get("ELEMENTA_MAX_SESSIONS_PER_USER", "50"))
# A verified session token is remembered this many seconds (config/auth_cache.py; 0: never), so most
# requests read no table to authenticate. Logout, revocation and changes to the user, its membership
# or organisation drop the entry at once; never kept past the token's expiry.
ELEMENTA_AUTH_CACHE_SECONDS = int(os.environ.get("ELEMENTA_AUTH_CACHE_SECONDS", "30"))
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=ELEMENTA_TOKEN_TTL_HOURS),
    "AUTO_REFRESH": env_bool("ELEMENTA_TOKEN_AUTO_REFRESH", False),
    "AUTO_REFRESH_MAX_TTL": timedelta(hours=float(os.environ.get("ELEMENTA_TOKEN_MAX_TTL_HOURS", "24"))),
    "AUTH_HEADER_PREFIX": "Bearer",  # clients send `Authorization: Bearer <token>`, as before knox
    "TOKEN_LIMIT_PER_USER": None,  # the login service revokes the oldest beyond ELEMENTA_MAX_SESSIONS_PER_USER instead
}

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_IS_FILESYSTEM = CELERY_BROKER_URL.startswith("filesystem")
_is_amqp = CELERY_BROKER_URL.startswith(("amqp", "pyamqp"))
if CELERY_BROKER_IS_FILESYSTEM:
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The worker polls the folder when it is empty; kombu's 1 s default adds up to a second
        # per hop (check, then settlement). 50 ms costs a few stat() calls a second.
        "polling_interval": float(os.environ.get("ELEMENTA_BROKER_POLL", "0.05")),
    }
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{VAR_DIR / 'results'}")
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
else:
    if _is_amqp:
        # RabbitMQ (the production default, docs/operations.md): the broker confirms every publish
        # (py-amqp waits for the ack, so a message the API reported as sent is on disk on a quorum
        # queue), and a dead TCP peer is noticed within seconds instead of the OS default.
        CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "connect_timeout": 5}
    else:
        # Redis redelivers an unacked message after visibility_timeout: keep it above the longest
        # task plus its longest retry delay (else a task still running is delivered twice), and
        # short enough that a killed worker's task comes back within minutes, not the 1 h default
        # (the sweeper is faster still).
        CELERY_BROKER_TRANSPORT_OPTIONS = {
            "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "300")),
            # kombu scans for expired unacked messages only every interval × throttle (10 × 10 s by
            # default): bench/faults.py saw a killed worker's messages return 97 s late. Scan every 10 s.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            # A frozen (SIGSTOPped) or unreachable Redis must not hang an ack or a publish forever:
            # every socket operation gives up after these many seconds and counts as a connection
            # error, which the worker answers by reconnecting (kombu's BRPOP waits 1 s, far below).
            "socket_timeout": float(os.environ.get("ELEMENTA_REDIS_SOCKET_TIMEOUT", "5")),
            "socket_connect_timeout": float(os.environ.get("ELEMENTA_REDIS_CONNECT_TIMEOUT", "5")),
            "socket_keepalive": True,
            "retry_on_timeout": True,
            "health_check_interval": 25,
        }
    # RabbitMQ keeps no results: its replies travel back to the caller over `rpc://` (only the
    # bench no-op and the test suite's readiness probe read a result).
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "rpc://" if _is_amqp else CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("ELEMENTA_CELERY_QUEUE", "elementa")
# Scaling out: each task family (checks, settlement, webhooks, notifications, screening, audit) may
# have its own queue, ELEMENTA_QUEUE_<FAMILY>, served by its own worker pool (docs/operations.md).
ELEMENTA_TASK_QUEUES = family_queues(os.environ, CELERY_TASK_DEFAULT_QUEUE)
CELERY_TASK_ROUTES = task_routes(ELEMENTA_TASK_QUEUES)
# Celery's Django fix-up closes the database connection before and after every task unless this is
# set, so CONN_MAX_AGE did nothing in the worker: a new PostgreSQL session per task. Keep it for
# this many tasks (the fix-up counts prerun and postrun); a connection that failed is still dropped
# at once (config/celery_app.py closes unusable ones around each task, as Django does per request).
CELERY_DB_REUSE_MAX = int(os.environ.get("ELEMENTA_WORKER_DB_REUSE_MAX", "500"))
if _is_amqp:
    # RabbitMQ: the task queue is a quorum queue (config/queues.py says why and what that implies).

    CELERY_TASK_QUEUES = tuple(
        task_queue(name, CELERY_BROKER_URL)
        for name in dict.fromkeys([CELERY_TASK_DEFAULT_QUEUE, *ELEMENTA_TASK_QUEUES.values()])
    )
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # workers log through LOGGING below (JSON in production)
CELERY_TASK_IGNORE_RESULT = True  # tasks record their effect in the database; only the bench no-op keeps a result
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 50
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker never gives up on the broker (the default stops it after 100 attempts, about 50 minutes):
# it keeps retrying, and the supervisor (config/supervisord.conf) restarts it if it exits anyway.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# On a lost broker connection, stop the tasks that can no longer be acknowledged: the broker
# redelivers them (acks_late) and the tasks are idempotent, so nothing runs twice at once.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Publishing must not hang a request when the broker is down: fail fast; the sweeper re-drives.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# --- Outages of Redis or the broker (docs/operations.md; config/outage.py) --------------------------
# A cache or broker that is down (refused) or frozen (accepts, never answers) must not hang a request
# or turn a write into a 500: every socket to them gets a short timeout, and after a failure a circuit
# breaker skips that dependency for ELEMENTA_OUTAGE_RETRY_AFTER seconds (throttles count per process
# meanwhile; publishes are left to the sweepers). /healthz checks each dependency in its own thread
# and answers within ELEMENTA_HEALTH_TIMEOUT whatever hangs.
ELEMENTA_CACHE_TIMEOUT = float(os.environ.get("ELEMENTA_CACHE_TIMEOUT", "0.5"))
ELEMENTA_BROKER_TIMEOUT = float(os.environ.get("ELEMENTA_BROKER_TIMEOUT", "0.5"))
ELEMENTA_OUTAGE_RETRY_AFTER = float(os.environ.get("ELEMENTA_OUTAGE_RETRY_AFTER", "5"))
ELEMENTA_HEALTH_TIMEOUT = float(os.environ.get("ELEMENTA_HEALTH_TIMEOUT", "1.5"))
# Dependencies whose failure makes /healthz answer 503; the others are reported but answer 200.
ELEMENTA_HEALTH_REQUIRED = tuple(
    s.strip() for s in os.environ.get("ELEMENTA_HEALTH_REQUIRED", "database,broker").split(",") if s.strip()
)


def redis_cache_options(timeout: float) -> dict[str, float]:
    """redis-py connection pool options for django.core.cache.backends.redis.RedisCache."""
    return {"socket_connect_timeout": timeout, "socket_timeout": timeout}


def broker_outage_settings(broker_url: str, timeout: float) -> dict[str, Any]:
    """Celery settings (without the CELERY_ prefix, lower case) that bound one publish to about
    `timeout` seconds on a broker that is down or frozen. Redis: connect and read timeouts on the
    publisher's sockets (the worker's BRPOP runs in the event loop, which these do not affect), and
    no publish retry: redis-py already reconnects a stale pooled connection by itself, and a retry
    would double the wait. AMQP: connect (and handshake) timeout, one retry after a reconnect."""
    if broker_url.startswith("filesystem"):
        return {}
    if broker_url.startswith(("redis", "rediss", "sentinel")):
        return {
            "broker_transport_options": {"socket_connect_timeout": timeout, "socket_timeout": timeout},
            "broker_connection_timeout": timeout,
            "task_publish_retry_policy": {"max_retries": 0},
        }
    return {
        "broker_connection_timeout": timeout,
        "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0},
    }


if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    CACHES["default"]["OPTIONS"] = redis_cache_options(ELEMENTA_CACHE_TIMEOUT)
_outage = broker_outage_settings(CELERY_BROKER_URL, ELEMENTA_BROKER_TIMEOUT)
CELERY_BROKER_TRANSPORT_OPTIONS.update(_outage.get("broker_transport_options", {}))
if "broker_connection_timeout" in _outage:
    CELERY_BROKER_CONNECTION_TIMEOUT = _outage["broker_connection_timeout"]
CELERY_TASK_PUBLISH_RETRY_POLICY = _outage.get("task_publish_retry_policy", CELERY_TASK_PUBLISH_RETRY_POLICY)
# --- end of outage settings ---------------------------------------------------------------------
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # A rule-pack version activated for a future date re-screens open trades and live grants on
    # the day it takes effect; the same sweep re-drives a lost re-screening message.
    "rescreen-due": {"task": "marketplace.rescreen_due", "schedule": timedelta(hours=1)},
    # Audit events are appended without a shared lock and linked into the hash chain here.
    "chain-audit-events": {
        "task": "compliance.audit_chain",
        "schedule": timedelta(seconds=float(os.environ.get("ELEMENTA_AUDIT_CHAIN_INTERVAL", "2"))),
    },
    "purge-idempotency-keys": {"task": "marketplace.idempotency_purge", "schedule": timedelta(hours=6)},
    "sweep-stuck-trades": {
        "task": "marketplace.trades_sweep_stuck",
        "schedule": timedelta(seconds=int(os.environ.get("ELEMENTA_SWEEP_INTERVAL", "10"))),
    },
}

# --- Elementa ---------------------------------------------------------------------------------
ELEMENTA_PLATFORM_FEE = Decimal(os.environ.get("ELEMENTA_PLATFORM_FEE", "0.05"))
ELEMENTA_IDEMPOTENCY_TTL = int(os.environ.get("ELEMENTA_IDEMPOTENCY_TTL", str(48 * 3600)))  # keys kept ≥ 24 h
ELEMENTA_IDEMPOTENCY_LEASE = int(os.environ.get("ELEMENTA_IDEMPOTENCY_LEASE", "120"))
ELEMENTA_PAYMENT_PROVIDER = os.environ.get("ELEMENTA_PAYMENT_PROVIDER", "marketplace.payments.ManualApproval")
ELEMENTA_MAX_DATASET_FILE_BYTES = int(os.environ.get("ELEMENTA_MAX_DATASET_FILE_BYTES", str(512 * 1024 * 1024)))
# A listing's free sample (anyone who can see the listing downloads it): kept small.
ELEMENTA_SAMPLE_MAX_BYTES = int(os.environ.get("ELEMENTA_SAMPLE_MAX_BYTES", str(1024 * 1024)))
# A trade sitting in `checking` or `approved` longer than this is re-enqueued by the sweeper (every
# ELEMENTA_SWEEP_INTERVAL): a killed worker's trade is picked up within stuck-after + one interval
# (≤ 40 s by default). Re-drives back off (stuck-after × 2^n since the last status change), so a long
# worker or broker outage does not use up ELEMENTA_MAX_REDRIVES (about 16 minutes by default).
ELEMENTA_STUCK_AFTER = timedelta(seconds=int(os.environ.get("ELEMENTA_STUCK_AFTER", "30")))
# After this many re-drives without progress a trade is treated as a poison message (see sweeper).
ELEMENTA_MAX_REDRIVES = int(os.environ.get("ELEMENTA_MAX_REDRIVES", "5"))
ELEMENTA_RULEPACK_DIR = BASE_DIR / "compliance" / "rulepacks"
ELEMENTA_MAX_UPLOAD_BYTES = int(os.environ.get("ELEMENTA_MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # larger uploads spool to a temporary file
# Request limits (config/limits.py, config/parsers.py, docs/limits.md). A JSON or form body over
# ELEMENTA_MAX_BODY_BYTES is a 413 before it is read; multipart uploads have the file limits above
# plus this overhead for their envelope and form fields.
ELEMENTA_MAX_BODY_BYTES = int(os.environ.get("ELEMENTA_MAX_BODY_BYTES", str(1024 * 1024)))
ELEMENTA_MAX_MULTIPART_OVERHEAD_BYTES = int(os.environ.get("ELEMENTA_MAX_MULTIPART_OVERHEAD_BYTES", str(1024 * 1024)))
ELEMENTA_MAX_JSON_DEPTH = int(os.environ.get("ELEMENTA_MAX_JSON_DEPTH", "32"))
ELEMENTA_MAX_JSON_LIST_ITEMS = int(os.environ.get("ELEMENTA_MAX_JSON_LIST_ITEMS", "1000"))
DATA_UPLOAD_MAX_MEMORY_SIZE = ELEMENTA_MAX_BODY_BYTES  # Django's own cap on non-file form data

LOG_FORMAT = os.environ.get("ELEMENTA_LOG_FORMAT", "json" if PRODUCTION else "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [req %(request_id)s trade %(trade_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(trade_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("ELEMENTA_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Webhooks (marketplace/services/webhooks/) --------------------------------------------------
# Webhooks go over https to public addresses only, in development too (docs/webhooks.md). A local
# receiver needs its host listed here, comma-separated: names ("localhost"), addresses or networks
# ("127.0.0.1", "10.1.0.0/16"); those may also use plain http. Empty by default: listing 127.0.0.1
# lets every member reach every port of this machine.
ELEMENTA_WEBHOOK_ALLOWED_HOSTS = tuple(
    h.strip() for h in os.environ.get("ELEMENTA_WEBHOOK_ALLOWED_HOSTS", "").split(",") if h.strip()
)
# Seconds to wait after each failed attempt; one attempt more than delays (8), then `failed`.
ELEMENTA_WEBHOOK_BACKOFF = tuple(
    int(s) for s in os.environ.get("ELEMENTA_WEBHOOK_BACKOFF", "10,30,120,600,3600,21600,21600").split(",") if s.strip()
)
# Publishes due deliveries: retries longer than a countdown may carry, lost messages, dead workers.
CELERY_BEAT_SCHEDULE["sweep-webhooks"] = {
    "task": "marketplace.webhooks_sweep",
    "schedule": timedelta(seconds=int(os.environ.get("ELEMENTA_WEBHOOK_SWEEP_INTERVAL", "30"))),
}

# Segregation of duties (docs/reliability.md, "What needs two people").
# A refund of a trade whose price is over this amount (in the trade's currency) needs two officers.
ELEMENTA_REFUND_FOUR_EYES_OVER = Decimal(os.environ.get("ELEMENTA_REFUND_FOUR_EYES_OVER", "1000"))
# Activating a rule pack needs a backtest of exactly its content, no older than this.
ELEMENTA_BACKTEST_MAX_AGE_HOURS = float(os.environ.get("ELEMENTA_BACKTEST_MAX_AGE_HOURS", "24"))

# Compute-to-data (marketplace/services/compute.py, docs/compute.md). Each query runs on the Celery
# queue of the data's storage jurisdiction, `<prefix><country>` (compute.cn, compute.de, …); a worker
# serves the queues of the jurisdictions listed here (a regional deployment lists only its own).
ELEMENTA_COMPUTE_QUEUE_PREFIX = os.environ.get("ELEMENTA_COMPUTE_QUEUE_PREFIX", "compute.")
ELEMENTA_COMPUTE_JURISDICTIONS = [
    j.strip().upper()
    for j in os.environ.get("ELEMENTA_COMPUTE_JURISDICTIONS", "CN,DE,US,GB,SG,IN,JP,KR,BR,RU,SA,VN").split(",")
    if j.strip()
]
ELEMENTA_COMPUTE_MEMORY_MB = int(os.environ.get("ELEMENTA_COMPUTE_MEMORY_MB", "512"))  # DuckDB memory_limit per query
ELEMENTA_COMPUTE_THREADS = int(os.environ.get("ELEMENTA_COMPUTE_THREADS", "2"))
ELEMENTA_COMPUTE_TIMEOUT = float(
    os.environ.get("ELEMENTA_COMPUTE_TIMEOUT", "20")
)  # seconds per query (max_execution_time)
# Prepared tables (one DuckDB file per dataset file version) and object-storage copies, on the worker.
ELEMENTA_COMPUTE_CACHE_DIR = Path(os.environ.get("ELEMENTA_COMPUTE_CACHE_DIR", VAR_DIR / "compute"))
# Party screening against sanctions lists (docs/sanctions.md). Matches scoring at least
# ELEMENTA_SCREENING_MIN_SCORE become facts; the sanctions rule pack decides what a score means.
ELEMENTA_SCREENING_MIN_SCORE = int(os.environ.get("ELEMENTA_SCREENING_MIN_SCORE", "80"))
# Where the scheduled refresh downloads the lists; empty (the default) means lists are imported
# by hand with `manage.py import_sanctions_list` and the refresh does nothing.
ELEMENTA_OFAC_SDN_BASE_URL = os.environ.get("ELEMENTA_OFAC_SDN_BASE_URL", "")
ELEMENTA_EU_FSF_CSV_URL = os.environ.get("ELEMENTA_EU_FSF_CSV_URL", "")
CELERY_BEAT_SCHEDULE["refresh-sanctions-lists"] = {
    "task": "compliance.sanctions_lists_refresh",
    "schedule": timedelta(hours=float(os.environ.get("ELEMENTA_SANCTIONS_REFRESH_HOURS", "24"))),
}

# E-mail (notifications, invitations). The console backend prints mail on `make run`; production
# sets ELEMENTA_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and the EMAIL_* variables.
EMAIL_BACKEND = os.environ.get(
    "ELEMENTA_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = os.environ.get("ELEMENTA_EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "20"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Elementa <no-reply@elementa.invalid>")
# Trades entering `checking` share a drain task (marketplace/services/check_drain.py); the claim's
# lifetime in seconds; 0: one task per trade.
ELEMENTA_CHECK_DRAIN_SECONDS = int(os.environ.get("ELEMENTA_CHECK_DRAIN_SECONDS", "5"))
# One outbox-drain task stands for every action until it starts; its claim expires after this many
# seconds (the longest a lost drain message holds e-mails back). 0: one send task per action.
ELEMENTA_NOTIFY_DRAIN_SECONDS = int(os.environ.get("ELEMENTA_NOTIFY_DRAIN_SECONDS", "10"))
ELEMENTA_NOTIFY_DIGEST_AFTER_HOURS = float(os.environ.get("ELEMENTA_NOTIFY_DIGEST_AFTER_HOURS", "24"))
ELEMENTA_INVITATION_MAX_AGE_HOURS = float(os.environ.get("ELEMENTA_INVITATION_MAX_AGE_HOURS", "72"))
# Where an invitation e-mail sends people; the token is appended.
ELEMENTA_INVITATION_URL = os.environ.get("ELEMENTA_INVITATION_URL", "http://127.0.0.1:8000/api/v1/invitations/accept/?token=")
CELERY_BEAT_SCHEDULE.update({
    "send-notifications": {"task": "marketplace.notifications_sweep", "schedule": timedelta(minutes=5)},
    "officers-digest": {"task": "marketplace.notifications_digest", "schedule": timedelta(days=1)},
    "grants-expiring": {"task": "marketplace.notifications_grants_expiring", "schedule": timedelta(days=1)},
    "certifications-lapse": {"task": "marketplace.organisation_certifications_lapse", "schedule": timedelta(hours=6)},
})
