"""What may leave: the release policy applied to an engine result.

Without differential privacy: every group whose engine-counted contributors (distinct identifiers,
or rows when the table declares no identifier) number fewer than `k` is dropped, then the result is
cut to `max_rows`. Values are exact.

With differential privacy (the offer sets ε per query): each released number gets Laplace noise
from OpenDP, calibrated to the column's declared bounds (values are clamped to them before the
query sees them) and to `contributions` rows per person; ε per query is split evenly over the noisy
measurements (each aggregate, a second one for each AVG, and the contributor count used for the k
threshold). A group is released only if both its exact and its noisy contributor count reach k: the
exact floor keeps the policy's promise (no group of fewer than k people), the noisy one blurs which
groups appear; the exact floor itself is outside the DP accounting (docs/compute.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from marketplace.compute.engine import RawResult
from marketplace.compute.sqlcheck import UNITS, CheckedQuery, QueryRefused

DP_SUPPORTED = ("count", "sum", "avg")
AVG_SUM = "__elementa_avg_sum_"
AVG_N = "__elementa_avg_n_"


@dataclass(frozen=True)
class ReleasePolicy:
    k: int
    max_rows: int
    epsilon: float | None = None  # per query; None: no noise
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    contributions: int = 1  # rows one person contributes at most (DP sensitivity)


@dataclass(frozen=True)
class Release:
    columns: list[str]
    rows: list[list[Any]]
    groups_total: int
    groups_suppressed: int
    rows_capped: int
    epsilon_spent: float
    mechanism: dict[str, Any] | None

    def as_result(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self.rows}

    @property
    def sha256(self) -> str:
        return result_hash(self.as_result())


def result_hash(result: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def dp_check(checked: CheckedQuery, policy: ReleasePolicy) -> None:
    """Refuse, before anything runs, a query the DP release cannot calibrate."""
    for output in checked.outputs:
        if output.kind != "aggregate":
            continue
        if output.function not in DP_SUPPORTED:
            raise QueryRefused(
                "query_not_supported_with_dp",
                f"{output.function.upper()} is not released under differential privacy here; use COUNT, SUM or AVG.",
            )
        if output.function in ("sum", "avg") and (
            output.column is None or output.column not in policy.bounds or output.distinct
        ):
            bounded = ", ".join(sorted(policy.bounds)) or "none"
            raise QueryRefused(
                "query_not_supported_with_dp",
                f"{output.function.upper()} needs a bare column with declared bounds (bounded columns: {bounded}).",
            )


def dp_helpers(checked: CheckedQuery) -> list[tuple[str, str]]:
    """Hidden (alias, SQL) columns the DP release needs: a clamped SUM and a COUNT for each AVG."""
    helpers = []
    for i, output in enumerate(checked.outputs):
        if output.kind == "aggregate" and output.function == "avg" and output.column:
            quoted = '"' + output.column.replace('"', '""') + '"'
            helpers.append((f"{AVG_SUM}{i}", f"SUM({quoted})"))
            helpers.append((f"{AVG_N}{i}", f"COUNT({quoted})"))
    return helpers


def _laplace(scale: float) -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")  # floating-point Laplace; see the decision record on OpenDP
    return dp.m.make_laplace(dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=scale)


def release(raw: RawResult, checked: CheckedQuery, policy: ReleasePolicy) -> Release:
    index = {name: i for i, name in enumerate(raw.columns)}
    visible = [i for i, name in enumerate(raw.columns) if name != UNITS and not name.startswith("__elementa_")]
    units_at = index[UNITS]
    if policy.epsilon is None:
        kept = [row for row in raw.rows if int(row[units_at] or 0) >= policy.k]
        rows = [[row[i] for i in visible] for row in kept]
        capped = max(len(rows) - policy.max_rows, 0)
        return Release(
            columns=[raw.columns[i] for i in visible],
            rows=rows[: policy.max_rows],
            groups_total=len(raw.rows),
            groups_suppressed=len(raw.rows) - len(kept),
            rows_capped=capped,
            epsilon_spent=0.0,
            mechanism=None,
        )
    return _release_dp(raw, checked, policy, index, visible, units_at)


def _release_dp(raw: RawResult, checked: CheckedQuery, policy: ReleasePolicy, index: dict[str, int], visible: list[int],
                units_at: int) -> Release:
    epsilon = float(policy.epsilon or 0)
    aggregates = [(i, o) for i, o in enumerate(checked.outputs) if o.kind == "aggregate"]
    measurements = 1 + len(aggregates) + sum(1 for _, o in aggregates if o.function == "avg")
    share = epsilon / measurements
    c = policy.contributions
    count_noise = _laplace(c / share)
    scales: dict[str, float] = {"count": c / share}
    sum_noise: dict[str, Any] = {}
    for _, output in aggregates:
        if output.function in ("sum", "avg") and output.column and output.column not in sum_noise:
            low, high = policy.bounds[output.column]
            scale = c * max(abs(low), abs(high)) / share
            sum_noise[output.column] = _laplace(scale)
            scales[f"sum({output.column})"] = scale
    out_rows: list[list[Any]] = []
    suppressed = 0
    for row in raw.rows:
        noisy_units = count_noise(float(row[units_at] or 0))
        # Both: the policy's floor on the exact count (a group of fewer than k people never leaves),
        # and the noisy count, so that which groups appear is itself noised near the threshold.
        if int(row[units_at] or 0) < policy.k or noisy_units < policy.k:
            suppressed += 1
            continue
        values = list(row)
        for position, output in aggregates:
            at = visible[position]
            value = row[at]
            if output.function == "count":
                values[at] = max(0, round(count_noise(float(value or 0))))
            elif output.function == "sum":
                values[at] = sum_noise[output.column](float(value or 0))  # type: ignore[index]
            else:  # avg = noisy clamped sum / noisy count, kept inside the bounds
                low, high = policy.bounds[output.column]  # type: ignore[index]
                total = sum_noise[output.column](float(row[index[f"{AVG_SUM}{position}"]] or 0))  # type: ignore[index]
                n = count_noise(float(row[index[f"{AVG_N}{position}"]] or 0))
                values[at] = min(max(total / max(n, 1.0), low), high)
            if isinstance(values[at], float) and not math.isfinite(values[at]):
                values[at] = None
        out_rows.append([values[i] for i in visible])
    capped = max(len(out_rows) - policy.max_rows, 0)
    mechanism = {"library": "opendp", "mechanism": "laplace", "epsilon": epsilon, "measurements": measurements,
                 "epsilon_each": share, "contributions_per_person": c, "scales": scales,
                 "threshold": f"exact and noisy contributor counts ≥ {policy.k}"}
    return Release(
        columns=[raw.columns[i] for i in visible],
        rows=out_rows[: policy.max_rows],
        groups_total=len(raw.rows),
        groups_suppressed=suppressed,
        rows_capped=capped,
        epsilon_spent=epsilon,
        mechanism=mechanism,
    )
