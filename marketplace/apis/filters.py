"""Catalogue and trade-list filters."""

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters import rest_framework as drf_filters
from django_filters import utils
from rest_framework.exceptions import ValidationError

from compliance.engine import vocabulary as vocab
from marketplace.errors import CurrencyRequiredError
from marketplace.models import Dataset, Trade
from marketplace.money import MoneyError, currency_check


class CurrencyFormField(forms.CharField):
    def clean(self, value: Any) -> str | None:
        value = super().clean(value)
        if not value:
            return None
        try:
            return currency_check(value)
        except MoneyError as exc:
            raise forms.ValidationError(str(exc)) from None


class CurrencyFilter(django_filters.CharFilter):
    """`?currency=usd` is USD; a code that is not a currency Elementa accepts is a 400, not an empty page."""

    field_class = CurrencyFormField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("field_name", "currency")
        kwargs.setdefault("help_text", "An ISO 4217 currency code, any case.")
        super().__init__(**kwargs)


class DatasetFilter(django_filters.FilterSet):
    """The catalogue's query parameters. `q`, `ordering`, `mine` and `status` are validated here but applied
    by marketplace.selectors.catalogue (they choose the base rows and the order); the rest filter."""

    q = django_filters.CharFilter(
        method="applied_by_selector", max_length=200,
        help_text="Words in the title or description (each a prefix on PostgreSQL); ordered by relevance unless "
                  "`ordering` says otherwise.",
    )
    ordering = django_filters.CharFilter(
        method="applied_by_selector", max_length=200,
        help_text="Comma-separated keys, `-` for descending: price, published_at, created_at, title (and relevance "
                  "with `q`). Default: -published_at (with `q`: relevance; with `mine`: -created_at). Ties: id.",
    )
    mine = drf_filters.BooleanFilter(  # true/1 (any case) as in the fast path below
        method="applied_by_selector",
        help_text="true: your organisation's own listings in any status (drafts included) instead of the published "
                  "catalogue.",
    )
    jurisdiction = django_filters.CharFilter(
        method="by_jurisdiction", help_text="Where subjects are or data is stored (ISO code)."
    )
    classification = django_filters.MultipleChoiceFilter(choices=[(c, c) for c in vocab.CLASSIFICATIONS])
    category = django_filters.ChoiceFilter(choices=[(c, c) for c in vocab.CATEGORIES], method="by_category")
    price_min = django_filters.NumberFilter(field_name="price", lookup_expr="gte", help_text="Needs `currency`.")
    price_max = django_filters.NumberFilter(field_name="price", lookup_expr="lte", help_text="Needs `currency`.")
    currency = CurrencyFilter()
    provider = django_filters.UUIDFilter(field_name="provider_id")
    status = django_filters.ChoiceFilter(
        choices=Dataset.Status.choices, method="applied_by_selector",
        help_text="With `mine=true`, or for officers; the public catalogue is published listings only.",
    )

    class Meta:
        model = Dataset
        fields: list[str] = []

    def validated(self) -> dict[str, Any]:
        """The cleaned parameters, or a 400: `invalid` naming the fields, `currency_required` for a price
        filter without a currency (prices in different currencies are not comparable)."""
        if not self.is_valid():
            raise utils.translate_validation(self.errors)
        params: dict[str, Any] = self.form.cleaned_data
        if (params.get("price_min") is not None or params.get("price_max") is not None) and not params.get("currency"):
            raise CurrencyRequiredError(fields={"currency": ["required with price_min or price_max"]})
        return params

    def applied_by_selector(self, qs: QuerySet[Dataset], name: str, value: Any) -> QuerySet[Dataset]:
        return qs

    def by_jurisdiction(self, qs: QuerySet[Dataset], name: str, value: str) -> QuerySet[Dataset]:
        return qs.filter(jurisdiction_index__contains=f"|{value.strip().upper()}|")

    def by_category(self, qs: QuerySet[Dataset], name: str, value: str) -> QuerySet[Dataset]:
        return qs.filter(category_index__contains=f"|{value}|")


# The common requests (the list, a search, a page of either) carry none of the filters: they skip building a
# FilterSet and its form (a deep copy of every filter, ~1-2 ms a request) and are validated here as the
# FilterSet would: `q` and `ordering` at most 200 characters, `mine` as django-filter's BooleanFilter reads it.
_WITHOUT_FILTERSET = frozenset({"q", "ordering", "mine", "page", "page_size"})
_TRUE = frozenset({"true", "1"})


def catalogue_params(request: Any) -> tuple[dict[str, Any], DatasetFilter | None]:
    """The catalogue's cleaned parameters, and the FilterSet to apply when a filter was asked for."""
    query = request.query_params
    if not set(query) <= _WITHOUT_FILTERSET:
        filterset = DatasetFilter(query, queryset=Dataset.objects.none(), request=request)
        return filterset.validated(), filterset
    params: dict[str, Any] = {"mine": query.get("mine", "").lower() in _TRUE if "mine" in query else None}
    for name in ("q", "ordering"):
        value = query.get(name) or None
        if value is not None and len(value) > 200:
            raise ValidationError({name: ["Ensure this value has at most 200 characters."]})
        params[name] = value
    return params, None


class TradeFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Trade.Status.choices)
    dataset = django_filters.UUIDFilter(field_name="dataset_id")
    destination = django_filters.CharFilter(field_name="destination", lookup_expr="iexact")
    role = django_filters.ChoiceFilter(
        choices=[("buyer", "buyer"), ("provider", "provider")], method="by_role",
        help_text="Only trades where your organisation is the buyer, or the provider.",
    )

    class Meta:
        model = Trade
        fields: list[str] = []

    def by_role(self, qs: QuerySet[Trade], name: str, value: str) -> QuerySet[Trade]:
        membership = getattr(self.request.user, "membership", None)
        if membership is None:
            return qs.none()
        field = "buyer_id" if value == "buyer" else "provider_id"
        return qs.filter(**{field: membership.organisation_id})


class ReviewQueueFilter(TradeFilter):
    regime = django_filters.CharFilter(
        method="by_regime", help_text="A regime with a finding that is not `allow`, e.g. CN, EU, US, SANCTIONS."
    )
    outcome = django_filters.MultipleChoiceFilter(
        field_name="decision__outcome", choices=[(o.value, o.value) for o in vocab.Outcome]
    )
    older_than_hours = django_filters.NumberFilter(
        method="by_age",
        min_value=0,
        max_value=24 * 366 * 10,
        help_text="Waiting at least this many hours (up to ten years), since `waiting_since`.",
    )
    waiting_since_before = django_filters.IsoDateTimeFilter(field_name="waiting_since", lookup_expr="lt",
                                                            help_text="Waiting since before this instant (ISO 8601).")
    waiting_since_after = django_filters.IsoDateTimeFilter(field_name="waiting_since", lookup_expr="gte",
                                                           help_text="Waiting since this instant or later (ISO 8601).")
    price_min = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    price_max = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
    currency = CurrencyFilter()
    item = django_filters.ChoiceFilter(
        choices=[("evidence", "evidence"), ("review", "review")],
        method="by_item",
        help_text="`evidence`: trades with evidence pending an officer's review; `review`: trades the engine sent to "
                  "review.",
    )

    def by_item(self, qs: QuerySet[Trade], name: str, value: str) -> QuerySet[Trade]:
        # `pending_evidence` is an annotation of the review queue's queryset, not a Trade field
        return qs.filter(pending_evidence=True) if value == "evidence" else qs.filter(status=Trade.Status.IN_REVIEW)  # type: ignore[misc]

    def by_regime(self, qs: QuerySet[Trade], name: str, value: str) -> QuerySet[Trade]:
        return qs.filter(decision__flagged_regimes__contains=f"|{value.strip().upper()}|")

    def by_age(self, qs: QuerySet[Trade], name: str, value: float) -> QuerySet[Trade]:
        from datetime import timedelta

        from django.utils import timezone

        return qs.filter(waiting_since__lte=timezone.now() - timedelta(hours=float(value)))
