"""Reads behind the linked-data catalogue (DCAT-AP, ODRL): published listings page by page, one listing,
and the agreement of a settled trade."""

from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Max, Min, OuterRef, QuerySet, Subquery

from config.outage import guarded_cache
from marketplace.errors import AgreementNotAvailableError
from marketplace.models import AccessGrant, Dataset, DatasetFile, Trade
from marketplace.selectors.trades import trade_list_for

CATALOGUE_DATES_CACHE_SECONDS = 60
CATALOGUE_DATES_KEY = "dcat:catalogue-dates"


def _published() -> QuerySet[Dataset]:
    """Published listings with the latest file version's size and media type (None without a file),
    in one query: the DCAT distribution's dcat:byteSize and dcat:mediaType."""
    latest = DatasetFile.objects.filter(dataset_id=OuterRef("pk")).order_by("-version")
    return (
        Dataset.objects.filter(status=Dataset.Status.PUBLISHED)
        .select_related("provider")
        .annotate(
            file_size=Subquery(latest.values("size")[:1]),
            file_type=Subquery(latest.values("content_type")[:1]),
        )
    )


def published_datasets_page(*, after: UUID | None, page_size: int) -> tuple[list[Dataset], UUID | None]:
    """Up to `page_size` published listings with ids after `after`, in id order (keyset paging: each page
    costs the same however deep, and a listing published meanwhile never shifts another onto the next
    page twice); and the id to continue after, None on the last page."""
    qs = _published().order_by("id")
    if after is not None:
        qs = qs.filter(id__gt=after)
    rows = list(qs[: page_size + 1])
    if len(rows) > page_size:
        return rows[:page_size], rows[page_size - 1].id
    return rows, None


def published_dataset(*, dataset_id: UUID) -> Dataset | None:
    return _published().filter(id=dataset_id).first()


def catalogue_dates() -> tuple[datetime | None, datetime | None]:
    """(first publication, latest change) over the published catalogue: the catalogue's dct:issued and
    dct:modified. Cached for a minute: an aggregate over every row is not worth running per page."""
    key = CATALOGUE_DATES_KEY
    cached = guarded_cache.get(key)
    if cached is not None:
        return cached
    dates = Dataset.objects.filter(status=Dataset.Status.PUBLISHED).aggregate(
        issued=Min("published_at"), modified=Max("updated_at")
    )
    value = (dates["issued"], dates["modified"])
    guarded_cache.set(key, value, timeout=CATALOGUE_DATES_CACHE_SECONDS)
    return value


def trade_agreement_parts(*, user: User | AnonymousUser, trade_id: UUID) -> tuple[Trade, AccessGrant]:
    """The trade and its grant, for its two parties (and officers); another organisation gets a 404
    (Trade.DoesNotExist). 409 `agreement_not_available` until the trade is settled."""
    trade = trade_list_for(user=user).get(id=trade_id)
    grant = AccessGrant.objects.filter(trade_id=trade.id).first()
    if trade.status != Trade.Status.SETTLED or grant is None:
        raise AgreementNotAvailableError(
            f"The trade is {trade.status}: an agreement exists only once it is settled and its grant issued."
        )
    return trade, grant
