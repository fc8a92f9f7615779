"""The evaluation context: the facts, derived values computed once per evaluation (cumulative
tallies), and the witnesses, true statements with numbers, that the conditions of a rule record."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from compliance.engine.facts import TransferFacts
from compliance.engine.vocabulary import PERSONAL_CLASSIFICATIONS


@dataclass(frozen=True)
class Tally:
    """A cumulative count: what was exported before in the window, plus this trade."""

    before: int
    this: int

    @property
    def after(self) -> int:
        return self.before + self.this

    def describe(self) -> str:
        return f"{self.before:,} before + {self.this:,} in this trade = {self.after:,}"


def _year_ago(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


@dataclass
class Context:
    facts: TransferFacts
    held: frozenset[str] = frozenset()
    witness: list[Callable[[], str]] = field(default_factory=list)  # rendered only for a matching rule
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    # --- China: per-exporter tallies since 1 January of the trade year (Provisions 2024, Arts. 5, 7, 8)
    def _cn_prior(self) -> list[Any]:
        start = date(self.facts.trade_date.year, 1, 1)
        return self.cached(
            "cn.prior", lambda: [p for p in self.facts.prior_exports if start <= p.date <= self.facts.trade_date]
        )

    def cn_tally(self, *, sensitive: bool) -> Tally:
        """Distinct people exported this calendar year. A sensitive record also counts in the
        non-sensitive tally (the conservative reading of Art. 5 of the CAC's 2024 Provisions); exempt transfers count
        too."""

        def compute() -> Tally:
            counted = ("sensitive_personal",) if sensitive else PERSONAL_CLASSIFICATIONS
            before = sum(p.subjects for p in self._cn_prior() if p.classification in counted)
            this = self.facts.data.subjects if self.facts.data.classification in counted else 0
            return Tally(before, this)

        return self.cached(f"cn.{sensitive}", compute)

    # --- United States: same buyer, the 12 months before the trade (28 CFR 202.205)
    def us_same_buyer_12m(self) -> dict[str, Tally]:
        """Per category present in this trade: people (devices, for precise geolocation) made
        available to the same buyer in the 12 months up to the trade, plus this trade."""

        def compute() -> dict[str, Tally]:
            start = _year_ago(self.facts.trade_date)
            prior = [p for p in self.facts.prior_exports if p.same_buyer and start < p.date <= self.facts.trade_date]
            return {
                category: Tally(sum(p.subjects for p in prior if category in p.categories), self.facts.data.subjects)
                for category in self.facts.data.categories
            }

        return self.cached("us.12m", compute)
