# Elementa: `make run` starts a working marketplace; `make test` runs the whole suite.
# Both work on a fresh machine with Python 3.11: SQLite and a filesystem Celery broker are the
# defaults; set DATABASE_URL / CELERY_BROKER_URL to use PostgreSQL and Redis.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
NPROC := $(shell nproc 2>/dev/null || echo 1)
# Sync workers wait on the database half the time: two per core (docs/performance.md, "POST path").
WEB_WORKERS ?= $(shell expr 2 \* $(NPROC))
CELERY_CONCURRENCY ?= $(NPROC)
# Production-shaped by default: no DEBUG pages, no browsable API. `make run DJANGO_DEBUG=1` (or
# `make dev`) turns Django's debug pages on for local work; API errors stay JSON either way.
DJANGO_DEBUG ?= 0
ELEMENTA_VAR_DIR ?= $(CURDIR)/var
ELEMENTA_CELERY_QUEUE ?= elementa
# Queues the demo worker serves: the default queue and one compute queue per storage jurisdiction
# (ELEMENTA_COMPUTE_JURISDICTIONS; docs/compute.md). A regional deployment runs its compute worker
# where the data is stored, with only its own queue: `celery -A config worker -Q compute.cn`.
CELERY_QUEUES ?= $(ELEMENTA_CELERY_QUEUE),compute.cn,compute.de,compute.us,compute.gb,compute.sg,compute.in,compute.jp,compute.kr,compute.br,compute.ru,compute.sa,compute.vn

.PHONY: install run serve dev test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Elementa needs Python 3.11 or newer: set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  API          http://127.0.0.1:$(PORT)/api/v1/"
	@echo "  Swagger UI   http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Admin        http://127.0.0.1:$(PORT)/admin/  (officer / elementa-demo)"
	@echo "  Health       http://127.0.0.1:$(PORT)/healthz"
	@echo "  Logins       provider, provider-eu, buyer, buyer-eu, buyer-sg, buyer-ru, officer, officer-2; password elementa-demo"
	@echo "  Ctrl-C stops the API, the worker and beat (supervisord restarts any of them that dies)."
	@echo ""
	@$(SUPERVISE)

# The API, the Celery worker and Celery beat as three supervised processes (config/supervisord.conf),
# without the set-up steps of `run`. exec: the shell is replaced, so make's SIGTERM reaches supervisord.
SUPERVISE = mkdir -p "$(ELEMENTA_VAR_DIR)" && DJANGO_DEBUG=$(DJANGO_DEBUG) ELEMENTA_VAR_DIR="$(ELEMENTA_VAR_DIR)" \
	ELEMENTA_BIN="$(abspath $(BIN))" ELEMENTA_BIND="127.0.0.1:$(PORT)" WEB_WORKERS="$(WEB_WORKERS)" \
	CELERY_CONCURRENCY="$(CELERY_CONCURRENCY)" ELEMENTA_CELERY_QUEUE="$(ELEMENTA_CELERY_QUEUE)" CELERY_QUEUES="$(CELERY_QUEUES)" \
	exec $(BIN)/supervisord --configuration config/supervisord.conf

serve:
	@$(SUPERVISE)

dev:
	$(MAKE) run DJANGO_DEBUG=1

# On the embedded defaults the suite runs in one process per core (pytest-xdist; each process has its
# own var folder, broker and worker). Against PostgreSQL and a broker server it runs in one process:
# test processes sharing one Redis interfered with each other's workers (docs/known-limits.md).
PYTEST_PARALLEL ?= $(if $(DATABASE_URL)$(CELERY_BROKER_URL),,-n auto)

test: install
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

bench: install
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf var/test var/broker var/results
