"""Compute-to-data: offers, queries and their release, privacy budgets.

The flow: a provider offers a dataset for computation (compute_offer_put); a buyer buys access with
`POST /trades/` and `"delivery": "compute"` (the same pipeline, escrow, ledger and grant as a
download; the compliance facts say `delivery: compute`); under the grant it submits SQL
(compute_query_submit: checked at once, 400 if refused; budget and quota reserved; 202). The run is
a Celery task on the queue of the data's storage jurisdiction (`compute.cn`), so only a worker
deployed there reads the file (compute_query_run); only the released aggregate is stored for the
buyer. Officers may require that queries reading sensitive columns wait for their release.
"""

import logging
import re
import shutil
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from compliance.engine.jurisdictions import country_of
from config.enqueue import enqueue
from config.errors import NotFoundError, PermissionDeniedError
from marketplace.compute.engine import EngineError, Limits, prepare_table, prepared_meta, prepared_path, run_query
from marketplace.compute.release import ReleasePolicy, dp_check, dp_helpers, release
from marketplace.compute.sqlcheck import ROLES, CheckedQuery, QueryRefused, check_query, runnable_sql, sql_hash
from marketplace.errors import (
    ComputeNotOfferedError,
    ComputeOfferInvalidError,
    ComputeQuotaExhaustedError,
    DatasetFileNotFoundError,
    GrantInactiveError,
    GrantSuspendedError,
    NotComputeGrantError,
    PrivacyBudgetExhaustedError,
    QueryNotHeldError,
    QueryRefusedError,
)
from marketplace.models import (
    AccessGrant,
    ComputeOffer,
    ComputeQuery,
    Dataset,
    DatasetFile,
    Membership,
    PrivacyBudget,
    Trade,
)
from marketplace.models.compute import MIN_K
from marketplace.selectors.grants import grant_inactive_message
from marketplace.selectors.members import is_officer
from marketplace.services.events import event_emit

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


# --- where it runs ------------------------------------------------------------------------------


def compute_queue_for(jurisdiction: str) -> str:
    """The Celery queue serving data stored in `jurisdiction`: compute.cn, compute.de, …"""
    return f"{settings.ELEMENTA_COMPUTE_QUEUE_PREFIX}{country_of(jurisdiction).lower()}"


def compute_queues() -> list[str]:
    """Every compute queue this deployment serves (ELEMENTA_COMPUTE_JURISDICTIONS)."""
    return [compute_queue_for(j) for j in settings.ELEMENTA_COMPUTE_JURISDICTIONS]


def compute_limits() -> Limits:
    return Limits(memory_mb=settings.ELEMENTA_COMPUTE_MEMORY_MB, threads=settings.ELEMENTA_COMPUTE_THREADS,
                  timeout_seconds=settings.ELEMENTA_COMPUTE_TIMEOUT)


# --- offers ---------------------------------------------------------------------------------------


def compute_offer_validate(values: dict[str, Any]) -> dict[str, Any]:
    """Cross-field checks of an offer (field types are the serializer's). Raises ComputeOfferInvalidError."""
    errors: dict[str, list[str]] = {}
    columns = values.get("columns") or {}
    if not isinstance(columns, dict) or not columns:
        errors["columns"] = ["give at least one column with its role"]
        columns = {}
    for name, role in columns.items():
        if not isinstance(name, str) or not _NAME.match(name):
            errors.setdefault("columns", []).append(f"{name!r} is not a plain column name (letters, digits, _)")
        if role not in ROLES:
            errors.setdefault("columns", []).append(f"{name}: role must be one of {', '.join(ROLES)}")
    if sum(1 for role in columns.values() if role == "identifier") > 1:
        errors.setdefault("columns", []).append("declare at most one identifier column (the privacy unit)")
    if not _NAME.match(str(values.get("table_name", "data"))):
        errors["table_name"] = ["a plain name: letters, digits and _"]
    if int(values.get("min_group_size", 10)) < MIN_K:
        errors["min_group_size"] = [f"at least {MIN_K}: smaller groups single people out"]
    bounds = values.get("bounds") or {}
    for name, pair in bounds.items():
        ok = (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(v, int | float) for v in pair)
            and pair[0] < pair[1]
        )
        if name not in columns or not ok:
            errors.setdefault("bounds", []).append(f"{name}: [low, high] with low < high, for a declared column")
    per_period, per_query = values.get("dp_epsilon_per_period"), values.get("dp_epsilon_per_query")
    if (per_period is None) != (per_query is None):
        errors["dp_epsilon_per_query"] = ["set both ε per period and ε per query, or neither"]
    elif per_period is not None and per_query is not None and (per_query <= 0 or per_query > per_period):
        errors["dp_epsilon_per_query"] = ["must be above 0 and at most ε per period"]
    if errors:
        raise ComputeOfferInvalidError(fields=errors)
    return values


# What a compute buyer agrees to (compute_trade_terms): a change moves the dataset's licence_version on.
OFFER_TERMS = ("price", "currency", "pricing", "term_days", "enabled")


@transaction.atomic
def compute_offer_put(*, dataset_id: UUID, membership: Membership, values: dict[str, Any]) -> ComputeOffer:
    """Create or replace the dataset's compute offer (its provider only). Audited (`dataset.compute_offered`).
    Open trades keep the price they were bought at; grants use the offer's current policy."""
    dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFoundError("No such dataset.")
    if dataset.provider_id != membership.organisation_id:
        raise PermissionDeniedError("Only the dataset's provider may offer it for computation.")
    values = compute_offer_validate(dict(values))
    offer = ComputeOffer.objects.filter(dataset=dataset).first() or ComputeOffer(dataset=dataset)
    terms_before = [getattr(offer, k) for k in OFFER_TERMS] if offer.pk else None
    for key, value in values.items():
        if key != "review_sensitive_queries":  # officers decide that one
            setattr(offer, key, value)
    offer.save()
    if terms_before is not None and terms_before != [getattr(offer, k) for k in OFFER_TERMS]:
        # A compute buyer's terms changed: buyers who pinned the listing's licence_version must look again.
        dataset.licence_version += 1
        dataset.save(update_fields=["licence_version", "updated_at"])
    event_emit(
        kind="dataset.compute_offered",
        subject_type="dataset",
        subject_id=dataset.id,
        actor=membership.user,
        data={
            "provider": str(dataset.provider_id),
            "table": offer.table_name,
            "columns": offer.columns,
            "k": offer.min_group_size,
            "max_result_rows": offer.max_result_rows,
            "price": str(offer.price),
            "currency": offer.currency,
            "pricing": offer.pricing,
            "dp_epsilon_per_period": str(offer.dp_epsilon_per_period) if offer.dp else None,
            "enabled": offer.enabled,
        },
    )
    return offer


@transaction.atomic
def compute_offer_require_review(*, dataset_id: UUID, officer: User, required: bool, reason: str) -> ComputeOffer:
    """Officers: hold (or stop holding) results of queries that read a sensitive column until an
    officer releases them. Audited (`dataset.compute_review_policy`)."""
    offer = ComputeOffer.objects.select_for_update().filter(dataset_id=dataset_id).first()
    if offer is None:
        raise NotFoundError("The dataset has no compute offer.")
    offer.review_sensitive_queries = required
    offer.save(update_fields=["review_sensitive_queries", "updated_at"])
    event_emit(kind="dataset.compute_review_policy", subject_type="dataset", subject_id=dataset_id, actor=officer,
               data={"review_sensitive_queries": required, "reason": reason})
    return offer


def compute_trade_terms(*, dataset: Dataset, queries: int | None) -> dict[str, Any]:
    """Price, pricing and licence a compute trade pins at purchase."""
    offer = ComputeOffer.objects.filter(dataset=dataset, enabled=True).first()
    if offer is None:
        raise ComputeNotOfferedError(fields={"delivery": ["this dataset is not offered for computation"]})
    if offer.pricing == ComputeOffer.Pricing.PER_QUERY:
        if not queries:
            raise ComputeOfferInvalidError(
                "Say how many queries to buy.", fields={"queries": ["required for a per-query offer"]}
            )
        price = offer.price * queries
    else:
        queries, price = None, offer.price
    licence = {
        "term_days": offer.term_days,
        "resale": False,
        "delivery": "compute",
        "terms": "aggregate results released under the offer's release policy; the data itself is never delivered",
    }
    return {
        "price": price,
        "currency": offer.currency,
        "pricing": f"compute_{offer.pricing.split('_')[1]}",
        "licence": licence,
        "compute_queries": queries,
    }


def compute_grant_setup(*, grant: AccessGrant, trade: Trade) -> None:
    """At settlement (inside grant_issue): a compute grant covers the current version, counts its
    paid queries and gets its ε budget for the period."""
    offer = ComputeOffer.objects.filter(dataset_id=trade.dataset_id).first()
    grant.max_version = None
    grant.queries_left = trade.compute_queries
    grant.save(update_fields=["max_version", "queries_left"])
    if offer is not None and offer.dp:
        PrivacyBudget.objects.get_or_create(grant=grant, defaults={"total": offer.dp_epsilon_per_period})


def compute_tables(*, grant: AccessGrant) -> list[dict[str, Any]]:
    """What a compute grant may query: each table with its columns, roles, current file version and
    release policy. Uses `grant.dataset.compute_offer` and `grant.latest_version` when the caller
    loaded them (the grant list does, in its one query)."""
    try:
        offer: ComputeOffer | None = grant.dataset.compute_offer
    except ComputeOffer.DoesNotExist:
        offer = None
    if offer is None:
        return []
    version = getattr(grant, "latest_version", None)
    if version is None:
        version = (
            DatasetFile.objects.filter(dataset_id=grant.dataset_id)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        )
    return [{
        "name": offer.table_name,
        "columns": [{"name": name, "role": role} for name, role in offer.columns.items()],
        "version": version,
        "min_group_size": offer.min_group_size,
        "max_result_rows": offer.max_result_rows,
        "differential_privacy": ({"epsilon_per_query": float(offer.dp_epsilon_per_query or 0),
                                  "epsilon_per_period": float(offer.dp_epsilon_per_period or 0),
                                  "bounds": offer.bounds} if offer.dp else None),
        "review_sensitive_queries": offer.review_sensitive_queries,
    }]


# --- the law's view: compute as the alternative to a download ---------------------------------------

# Download outcomes that send the buyer to a regulator or stop the trade: where compute is offered
# and the law treats it more leniently, the decision says so.
BLOCKING = ("deny", "needs_approval")


def compute_decision(*, dataset: Dataset, facts: dict[str, Any]) -> dict[str, Any] | None:
    """The decision the same purchase would get as compute, or None when compute is not offered."""
    from compliance.services.checks import compliance_evaluate

    if not ComputeOffer.objects.filter(dataset=dataset, enabled=True).exists():
        return None
    return compliance_evaluate(raw_facts={**facts, "delivery": "compute"}).as_dict()


def compute_alternatives(decision: dict[str, Any], *, dataset: Dataset, facts: dict[str, Any]) -> list[str]:
    """["compute"] when a download would be denied or need a regulator's approval, the dataset is
    offered for compute, and compute's own decision is less restrictive; [] otherwise."""
    from compliance.engine import Outcome

    if decision["outcome"] not in BLOCKING or facts.get("delivery", "download") != "download":
        return []
    other = compute_decision(dataset=dataset, facts=facts)
    if other is None or Outcome(other["outcome"]).rank >= Outcome(decision["outcome"]).rank:
        return []
    return ["compute"]


# --- budgets (ε kept like money) ---------------------------------------------------------------------


def _budget_reserve(*, grant_id: UUID, epsilon: Decimal) -> None:
    """Reserve ε with one conditional UPDATE: two concurrent queries can never both take the last of
    it (the row is locked by the first UPDATE; the second re-reads and fails the condition)."""
    moved = PrivacyBudget.objects.filter(grant_id=grant_id, total__gte=F("reserved") + F("spent") + epsilon).update(
        reserved=F("reserved") + epsilon)
    if moved != 1:
        budget = PrivacyBudget.objects.filter(grant_id=grant_id).first()
        left = budget.total - budget.reserved - budget.spent if budget else Decimal("0")
        raise PrivacyBudgetExhaustedError(f"The query needs ε {epsilon}; {left} is left in this period.",
                                          fields={"epsilon_left": [str(left)]})


def _budget_settle(*, grant_id: UUID, epsilon: Decimal, spend: bool) -> None:
    if epsilon <= 0:
        return
    if spend:
        PrivacyBudget.objects.filter(grant_id=grant_id).update(
            reserved=F("reserved") - epsilon, spent=F("spent") + epsilon
        )
    else:
        PrivacyBudget.objects.filter(grant_id=grant_id).update(reserved=F("reserved") - epsilon)


def _quota_take(*, grant: AccessGrant) -> None:
    if grant.queries_left is None:
        return
    if AccessGrant.objects.filter(pk=grant.pk, queries_left__gte=1).update(queries_left=F("queries_left") - 1) != 1:
        raise ComputeQuotaExhaustedError()


def _quota_return(*, grant_id: UUID) -> None:
    AccessGrant.objects.filter(pk=grant_id, queries_left__isnull=False).update(queries_left=F("queries_left") + 1)


# --- queries ------------------------------------------------------------------------------------------


def _policy(offer: ComputeOffer) -> ReleasePolicy:
    bounds = {name: (float(pair[0]), float(pair[1])) for name, pair in (offer.bounds or {}).items()}
    per_query = offer.dp_epsilon_per_query
    epsilon = float(per_query) if offer.dp and per_query is not None else None
    return ReleasePolicy(
        k=max(offer.min_group_size, MIN_K),
        max_rows=offer.max_result_rows,
        epsilon=epsilon,
        bounds=bounds,
        contributions=offer.contributions_per_person,
    )


def _check(sql: str, offer: ComputeOffer) -> CheckedQuery:
    checked = check_query(sql, offer.catalogue())
    if offer.dp:
        dp_check(checked, _policy(offer))
    return checked


def _audit_refusal(*, grant: AccessGrant, membership: Membership, sql: str, refusal: QueryRefused) -> None:
    with transaction.atomic():  # kept even though the request fails: refused probes are evidence too
        event_emit(
            kind="compute.query_refused",
            subject_type="grant",
            subject_id=grant.id,
            actor=membership.user,
            data={
                "dataset": str(grant.dataset_id),
                "buyer": str(grant.buyer_id),
                "sql_sha256": sql_hash(sql),
                "sql": sql[:2000],
                "reason": refusal.code,
            },
        )


def compute_query_submit(*, grant_id: UUID, membership: Membership, sql: str) -> ComputeQuery:
    """Check and accept a query under a compute grant; the run is queued after commit.

    Refused (nothing changes, the refusal is audited): 400 `query_refused` with `fields.reason`;
    403 `grant_inactive` / `grant_suspended`; 409 `not_a_compute_grant`, `privacy_budget_exhausted`,
    `compute_quota_exhausted`; 404 `dataset_file_not_found` before the provider uploaded a file."""
    grant = AccessGrant.objects.select_related("trade").filter(pk=grant_id).first()
    if grant is None:
        raise NotFoundError("No such grant.")
    if grant.buyer_id != membership.organisation_id:
        raise PermissionDeniedError("Only the buying organisation runs queries under a grant.")
    if grant.trade.delivery != "compute":
        raise NotComputeGrantError()
    now = timezone.now()
    if grant.status_at(now) == AccessGrant.Status.SUSPENDED:
        raise GrantSuspendedError(grant_inactive_message(grant, now))
    if grant.status_at(now) != AccessGrant.Status.ACTIVE:
        raise GrantInactiveError(grant_inactive_message(grant, now))
    offer = ComputeOffer.objects.filter(dataset_id=grant.dataset_id).first()
    if offer is None or not offer.enabled:
        raise NotComputeGrantError("The provider no longer offers this dataset for computation.")
    try:
        checked = _check(sql, offer)
    except QueryRefused as refusal:
        _audit_refusal(grant=grant, membership=membership, sql=sql, refusal=refusal)
        raise QueryRefusedError(refusal.message, fields={"sql": [refusal.message], "reason": [refusal.code]}) from None
    return _accept(grant=grant, offer=offer, membership=membership, checked=checked)


@transaction.atomic
def _accept(*, grant: AccessGrant, offer: ComputeOffer, membership: Membership, checked: CheckedQuery) -> ComputeQuery:
    grant = AccessGrant.objects.select_for_update().get(pk=grant.pk)  # ordered with revocation and suspension
    if grant.status_at() != AccessGrant.Status.ACTIVE:
        raise GrantInactiveError("The grant stopped being active.")
    dataset_file = DatasetFile.objects.filter(dataset_id=grant.dataset_id).order_by("-version").first()
    if dataset_file is None:
        raise DatasetFileNotFoundError("The provider has not uploaded the dataset's file yet.")
    per_query = offer.dp_epsilon_per_query
    epsilon = Decimal(per_query) if offer.dp and per_query is not None else Decimal("0")
    _quota_take(grant=grant)
    if epsilon:
        _budget_reserve(grant_id=grant.id, epsilon=epsilon)
    dataset = Dataset.objects.only("storage_jurisdiction").get(pk=grant.dataset_id)
    query = ComputeQuery.objects.create(
        grant=grant, buyer_id=grant.buyer_id, dataset_id=grant.dataset_id, user=membership.user,
        username=membership.user.get_username(), sql=checked.sql, sql_sha256=checked.sha256,
        queue=compute_queue_for(dataset.storage_jurisdiction),
        tables=[{"name": offer.table_name, "dataset_file": str(dataset_file.id), "version": dataset_file.version,
                 "sha256": dataset_file.sha256}],
        columns_read=sorted(checked.columns_read), touches_sensitive=checked.touches_sensitive,
        review_required=offer.review_sensitive_queries and checked.touches_sensitive,
        k=max(offer.min_group_size, MIN_K), epsilon=epsilon,
    )
    event_emit(
        kind="compute.query_submitted",
        subject_type="compute_query",
        subject_id=query.id,
        actor=membership.user,
        data={
            "grant": str(grant.id),
            "dataset": str(grant.dataset_id),
            "buyer": str(grant.buyer_id),
            "sql_sha256": query.sql_sha256,
            "tables": query.tables,
            "queue": query.queue,
            "epsilon_reserved": str(epsilon),
            "review_required": query.review_required,
        },
    )
    transaction.on_commit(partial(compute_query_enqueue, str(query.id), query.queue))
    return query


def compute_query_enqueue(query_id: str, queue: str) -> None:
    """Publish the run to the jurisdiction's queue (after commit). A failed publish leaves it queued."""
    enqueue("marketplace.compute_query_run", query_id, queue=queue)


def _local_csv(dataset_file: DatasetFile, cache_dir: Path) -> Path:
    """A local path to the file version: the storage's own path, or a copy from object storage into
    the worker's cache (which lives in the same jurisdiction as the storage)."""
    try:
        return Path(dataset_file.file.path)
    except NotImplementedError:
        target = cache_dir / "files" / f"{dataset_file.sha256}.csv"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial_path = target.with_suffix(".part")
            with (
                dataset_file.file.storage.open(dataset_file.file.name, "rb") as source,
                open(partial_path, "wb") as sink,
            ):
                shutil.copyfileobj(source, sink)
            partial_path.replace(target)
        return target


def compute_query_run(*, query_id: UUID | str) -> ComputeQuery | None:
    """Run a queued query where its data is stored and record what may be released. Idempotent: a
    query already finished is left alone; the final write happens only while it is still running."""
    with transaction.atomic():
        query = ComputeQuery.objects.select_for_update().filter(pk=query_id).first()
        if query is None or query.status not in (ComputeQuery.Status.QUEUED, ComputeQuery.Status.RUNNING):
            return query
        query.status, query.started_at = ComputeQuery.Status.RUNNING, timezone.now()
        query.save(update_fields=["status", "started_at"])
    offer = ComputeOffer.objects.get(dataset_id=query.dataset_id)
    outcome: dict[str, Any]
    try:
        grant = AccessGrant.objects.get(pk=query.grant_id)
        if grant.status_at() != AccessGrant.Status.ACTIVE:  # revoked or suspended while it waited
            raise QueryRefused("grant_inactive", "the grant stopped being active before the query ran")
        checked = _check(query.sql, offer)  # again: the offer may have changed since submission
        policy = _policy(offer)
        dataset_file = DatasetFile.objects.get(pk=query.tables[0]["dataset_file"])
        cache_dir = Path(settings.ELEMENTA_COMPUTE_CACHE_DIR)
        columns = list(offer.columns)
        database = prepare_table(
            _local_csv(dataset_file, cache_dir),
            prepared_path(cache_dir, file_sha256=dataset_file.sha256, table=offer.table_name, columns=columns),
            table=offer.table_name,
            columns=columns,
            identifier=offer.identifier(),
        )
        # One row per person (verified when the table was prepared): COUNT(*) per group is the same count.
        unit = None if prepared_meta(database).get("identifier_unique") else offer.identifier()
        sql = runnable_sql(
            checked,
            unit_column=unit,
            fetch_limit=compute_limits().fetch_rows,
            clamp=policy.bounds if policy.epsilon else None,
            extra=dp_helpers(checked) if policy.epsilon else None,
        )
        raw = run_query(sql, database=database, table=offer.table_name, limits=compute_limits())
        released = release(raw, checked, policy)
        outcome = {"ok": True, "raw": raw, "release": released}
    except QueryRefused as refusal:
        outcome = {"ok": False, "code": refusal.code, "reason": refusal.message}
    except EngineError as failure:
        outcome = {"ok": False, "code": failure.code, "reason": failure.message}
    except (OperationalError, InterfaceError):
        raise  # transient: the task retries; the query is still running and is picked up again
    except Exception:
        logger.exception("compute query %s failed unexpectedly", query.id)
        outcome = {"ok": False, "code": "internal_error", "reason": "the run failed; it has been logged"}
    return _query_record(query_id=query.id, outcome=outcome)


@transaction.atomic
def _query_record(*, query_id: UUID, outcome: dict[str, Any]) -> ComputeQuery | None:
    query = ComputeQuery.objects.select_for_update().filter(pk=query_id).first()
    if query is None or query.status != ComputeQuery.Status.RUNNING:
        return query  # another delivery finished it first
    query.finished_at = timezone.now()
    if not outcome["ok"]:
        query.status, query.reason_code, query.reason = ComputeQuery.Status.FAILED, outcome["code"], outcome["reason"]
        query.save()
        _budget_settle(grant_id=query.grant_id, epsilon=query.epsilon, spend=False)  # nothing was released
        _quota_return(grant_id=query.grant_id)
        event_emit(
            kind="compute.query_failed",
            subject_type="compute_query",
            subject_id=query.id,
            actor_label="system:compute",
            data={"grant": str(query.grant_id), "sql_sha256": query.sql_sha256, "reason": query.reason_code},
        )
        return query
    raw, released = outcome["raw"], outcome["release"]
    query.rows_read, query.engine_ms = raw.rows_read, raw.elapsed_ms
    query.groups_total, query.groups_suppressed, query.rows_capped = (
        released.groups_total,
        released.groups_suppressed,
        released.rows_capped,
    )
    query.mechanism = released.mechanism
    query.result, query.result_sha256 = _jsonable(released.as_result()), released.sha256
    if query.review_required:
        query.status = ComputeQuery.Status.HELD  # ε stays reserved until an officer decides
        kind = "compute.query_held"
    else:
        query.status, query.epsilon_spent = ComputeQuery.Status.RELEASED, query.epsilon
        _budget_settle(grant_id=query.grant_id, epsilon=query.epsilon, spend=True)
        kind = "compute.query_released"
    query.save()
    event_emit(
        kind=kind, subject_type="compute_query", subject_id=query.id, actor_label="system:compute", data=_report(query)
    )
    return query


def _jsonable(result: dict[str, Any]) -> dict[str, Any]:
    def cell(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, Decimal):
            return float(value)
        return str(value)

    return {"columns": list(result["columns"]), "rows": [[cell(v) for v in row] for row in result["rows"]]}


def _report(query: ComputeQuery) -> dict[str, Any]:
    return {
        "grant": str(query.grant_id),
        "dataset": str(query.dataset_id),
        "buyer": str(query.buyer_id),
        "sql_sha256": query.sql_sha256,
        "tables": query.tables,
        "rows_read": query.rows_read,
        "k": query.k,
        "groups_total": query.groups_total,
        "groups_suppressed": query.groups_suppressed,
        "rows_capped": query.rows_capped,
        "epsilon_spent": str(query.epsilon_spent),
        "result_sha256": query.result_sha256,
        "queue": query.queue,
    }


@transaction.atomic
def compute_query_review(*, query_id: UUID, officer: User, release_it: bool, reason: str) -> ComputeQuery:
    """Officers: release a held result to the buyer (its ε is spent) or refuse it (the ε and the
    query are given back; the buyer never sees the result). Audited (`compute.query_reviewed`)."""
    if not is_officer(officer):
        raise PermissionDeniedError("Only an officer releases held results.")
    query = ComputeQuery.objects.select_for_update().filter(pk=query_id).first()
    if query is None:
        raise NotFoundError("No such query.")
    if query.status != ComputeQuery.Status.HELD:
        raise QueryNotHeldError(f"The query is {query.status}.")
    query.reviewed_by_label, query.review_reason = officer.get_username(), reason
    if release_it:
        query.status, query.epsilon_spent = ComputeQuery.Status.RELEASED, query.epsilon
        _budget_settle(grant_id=query.grant_id, epsilon=query.epsilon, spend=True)
    else:
        query.status = ComputeQuery.Status.REFUSED
        query.result, query.result_sha256 = None, ""
        _budget_settle(grant_id=query.grant_id, epsilon=query.epsilon, spend=False)
        _quota_return(grant_id=query.grant_id)
    query.save()
    event_emit(kind="compute.query_reviewed", subject_type="compute_query", subject_id=query.id, actor=officer,
               data={**_report(query), "released": release_it, "reason": reason})
    return query
