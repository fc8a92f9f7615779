"""Who sees which transfer facts: the one place every endpoint that returns facts goes through.

A check's facts carry `prior_exports`, the exporter's earlier transfers (date, classification,
categories, people, whether to the same buyer) that cumulative thresholds add up. That list is the
provider's confidential sales history: other buyers' purchases, when, and of what. So:

- officers (and platform admins) see the facts exactly as the engine saw them;
- everyone else (the trade's buyer and provider) sees the facts without `prior_exports`, and in
  its place `prior_export_totals`: only the sums the rules compare with their thresholds, computed
  by the engine's own arithmetic (so they are the very numbers in the findings' explanations):

      {"calendar_year": {"from": "2026-01-01", "personal_subjects": 150000, "sensitive_personal_subjects": 0},
       "same_buyer_12_months": {"after": "2025-11-30", "subjects_by_category": {"contact": 3000}}}

  `calendar_year` is the exporter's tally since 1 January (China's thresholds); `same_buyer_12_months`
  counts only earlier transfers to this trade's buyer, i.e. the buyer's own purchases (the US rule),
  for the categories of this trade. No date, category set or size of any single earlier transfer
  is shown.
"""

from datetime import date
from typing import Any

from compliance.engine import FactsError, parse_facts
from compliance.engine.context import Context, _year_ago
from config.permissions import ADMIN, OFFICER, role_of


def viewer_sees_prior_exports(user: Any) -> bool:
    """Only officers and platform admins see the exporter's itemised earlier transfers."""
    return role_of(user) in (OFFICER, ADMIN)


def prior_export_totals(facts: dict[str, Any]) -> dict[str, Any] | None:
    """The totals the cumulative rules use, from contract-shaped facts; None if they do not parse."""
    try:
        parsed = parse_facts(facts, today=date.fromisoformat(str(facts.get("trade_date"))))
    except (FactsError, ValueError, TypeError):
        return None
    ctx = Context(facts=parsed)
    day = parsed.trade_date
    return {
        "calendar_year": {
            "from": date(day.year, 1, 1).isoformat(),
            "personal_subjects": ctx.cn_tally(sensitive=False).before,
            "sensitive_personal_subjects": ctx.cn_tally(sensitive=True).before,
        },
        "same_buyer_12_months": {
            "after": _year_ago(day).isoformat(),
            "subjects_by_category": {category: tally.before for category, tally in ctx.us_same_buyer_12m().items()},
        },
    }


def facts_for_viewer(facts: dict[str, Any] | None, *, user: Any) -> dict[str, Any] | None:
    """The facts as `user` may see them (see the module docstring). Never mutates `facts`."""
    if not isinstance(facts, dict) or viewer_sees_prior_exports(user):
        return facts
    shown = {k: v for k, v in facts.items() if k != "prior_exports"}
    shown["prior_export_totals"] = prior_export_totals(facts)
    return shown
