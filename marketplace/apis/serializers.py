"""Request and response shapes of the marketplace API (/api/v1/)."""

from typing import Any, cast

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from compliance.apis.serializers import TradeDecisionSerializer
from compliance.engine import vocabulary as vocab
from compliance.engine.jurisdictions import is_jurisdiction
from compliance.selectors.facts import facts_for_viewer
from config.serializers import StrictModelSerializer, StrictSerializer
from marketplace.apis.revocations import RevocationRequestSerializer
from marketplace.models import (
    Dataset,
    DatasetFile,
    DatasetSample,
    EvidenceStatus,
    GrantRevocationRequest,
    Organisation,
    RefundRequest,
    Trade,
    TradeEvent,
)
from marketplace.money import MoneyError, currency_check, money
from marketplace.services.dataset_files import dataset_file_extension


class JurisdictionField(serializers.CharField):
    """An ISO 3166-1 alpha-2 country or an ISO 3166-2 subdivision (UA-43)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 8)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).strip().upper()
        if not is_jurisdiction(value):
            raise serializers.ValidationError(f"unknown jurisdiction {value!r}: use an ISO 3166-1 alpha-2 code")
        return value


class CurrencyField(serializers.CharField):
    """An active ISO 4217 currency code, in any case; stored and returned upper case (marketplace/money.py)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault(
            "help_text", "An ISO 4217 currency code (EUR, USD, JPY); funds, metals and testing codes are refused."
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            return currency_check(value)
        except MoneyError as exc:
            raise serializers.ValidationError(str(exc)) from None


# Text limits: a listing's description is prose, not a file (docs/limits.md).
DESCRIPTION_MAX_LENGTH = cast(int, Dataset._meta.get_field("description").max_length)  # declared on the model


class LicenceSerializer(StrictSerializer):
    term_days = serializers.IntegerField(min_value=1, max_value=36500, required=False)
    resale = serializers.BooleanField(required=False, default=False)
    terms = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class OrganisationSerializer(StrictModelSerializer):
    class Meta:
        model = Organisation
        fields = [
            "id",
            "name",
            "jurisdiction",
            "headquarters",
            "owner_jurisdictions",
            "kind",
            "certifications",
            "is_operator",
        ]


class FileSummarySerializer(StrictSerializer):
    count = serializers.IntegerField(help_text="Uploaded file versions; 0: no data uploaded yet.")
    formats = serializers.ListField(child=serializers.CharField(), help_text="Media types of the versions.")
    total_bytes = serializers.IntegerField(help_text="Size of all versions together.")
    latest_version = serializers.IntegerField(allow_null=True)
    latest_uploaded_at = serializers.DateTimeField(allow_null=True)


class ListingVersionSerializer(StrictModelSerializer):
    """What anyone who can see a listing learns of a file version: its facts, never its content or name."""

    format = serializers.SerializerMethodField(help_text="The file name's extension: csv, parquet, csv.gz; '' none.")
    uploaded_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = DatasetFile
        fields = ["version", "content_type", "format", "size", "sha256", "uploaded_at"]
        read_only_fields = fields

    def get_format(self, dataset_file: DatasetFile) -> str:
        return dataset_file_extension(dataset_file.original_name)


class SampleSummarySerializer(StrictModelSerializer):
    format = serializers.SerializerMethodField()
    uploaded_at = serializers.DateTimeField(source="created_at")
    download = serializers.SerializerMethodField(help_text="GET this path to download the sample.")

    class Meta:
        model = DatasetSample
        fields = ["content_type", "format", "size", "sha256", "contains_personal_data", "uploaded_at", "download"]
        read_only_fields = fields

    def get_format(self, sample: DatasetSample) -> str:
        return dataset_file_extension(sample.original_name)

    def get_download(self, sample: DatasetSample) -> str:
        return f"/api/v1/datasets/{sample.dataset_id}/sample/"


class DatasetSerializer(StrictModelSerializer):
    provider = serializers.UUIDField(source="provider_id", read_only=True)
    provider_name = serializers.CharField(source="provider.name", read_only=True)
    subject_jurisdictions = serializers.ListField(child=JurisdictionField(), min_length=1, max_length=50)
    storage_jurisdiction = JurisdictionField(required=False)
    classification = serializers.ChoiceField(choices=vocab.CLASSIFICATIONS)
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=vocab.CATEGORIES), required=False, max_length=len(vocab.CATEGORIES)
    )
    flags = serializers.ListField(child=serializers.ChoiceField(choices=vocab.DATA_FLAGS), required=False)
    exporter_flags = serializers.ListField(
        child=serializers.ChoiceField(choices=vocab.EXPORTER_FLAGS),
        required=False,
        help_text="Added to your organisation's own exporter flags for this dataset (cn_ciio, cn_ftz, cn_gba, "
                  "data_broker).",
    )
    exporter = serializers.SerializerMethodField()
    subjects = serializers.IntegerField(min_value=0, max_value=10**10, required=False)
    price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0,
                                     help_text="In the currency's minor units at most (whole yen for JPY).")
    currency = CurrencyField(required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX_LENGTH)
    licence = LicenceSerializer(required=False)
    files = serializers.SerializerMethodField(help_text="What data the listing holds (GET /datasets/{id}/ lists it).")
    sample = serializers.SerializerMethodField(help_text="The free sample, null when there is none.")

    class Meta:
        model = Dataset
        fields = [
            "id",
            "provider",
            "provider_name",
            "title",
            "description",
            "subject_jurisdictions",
            "storage_jurisdiction",
            "classification",
            "categories",
            "subjects",
            "de_identified",
            "flags",
            "exporter_flags",
            "exporter",
            "pi_duties_attested",
            "price",
            "currency",
            "pricing",
            "licence",
            "licence_version",
            "status",
            "files",
            "sample",
            "published_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "licence_version", "status", "published_at", "created_at", "updated_at"]

    @extend_schema_field(FileSummarySerializer)
    def get_files(self, dataset: Dataset) -> dict[str, Any]:
        """From the summary columns the upload service keeps: no query per listing."""
        return {
            "count": dataset.file_count,
            "formats": list(dataset.file_formats),
            "total_bytes": dataset.file_total_bytes,
            "latest_version": dataset.latest_file_version,
            "latest_uploaded_at": serializers.DateTimeField().to_representation(dataset.latest_file_uploaded_at)
            if dataset.latest_file_uploaded_at
            else None,
        }

    @extend_schema_field(SampleSummarySerializer(allow_null=True))
    def get_sample(self, dataset: Dataset) -> dict[str, Any] | None:
        try:
            sample = dataset.sample  # select_related by the catalogue selector: no query per listing
        except DatasetSample.DoesNotExist:
            return None
        return dict(SampleSummarySerializer(sample).data)

    @extend_schema_field(
        inline_serializer(
            "Exporter",
            {"jurisdiction": serializers.CharField(), "flags": serializers.ListField(child=serializers.CharField())},
        )
    )
    def get_exporter(self, dataset: Dataset) -> dict[str, Any]:
        """The exporter facts the compliance check uses: the provider's, plus this dataset's flags."""
        return {
            "jurisdiction": dataset.provider.jurisdiction,
            "flags": list(dict.fromkeys([*dataset.provider.exporter_flags, *dataset.exporter_flags])),
        }

    def validate_subject_jurisdictions(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        currency = attrs.get("currency") or getattr(self.instance, "currency", None) or "USD"
        if "price" in attrs or "currency" in attrs:
            # Switching a listing's currency re-checks the price it keeps: 10.50 EUR cannot become 10.50 JPY.
            price = attrs["price"] if "price" in attrs else getattr(self.instance, "price", None)
            if price is not None:
                try:
                    money(price, currency)
                except MoneyError as exc:
                    raise serializers.ValidationError({"price": [str(exc)]}) from None
                if "price" in attrs:
                    attrs["price"] = money(price, currency)
        if attrs.get("pricing") == "subscription" or (
            attrs.get("pricing") is None and getattr(self.instance, "pricing", "") == "subscription"
        ):
            licence = attrs.get("licence", getattr(self.instance, "licence", None)) or {}
            if not licence.get("term_days"):
                raise serializers.ValidationError(
                    {"licence": ["a subscription needs licence.term_days: the length of one period"]}
                )
        return attrs


class DatasetDetailSerializer(DatasetSerializer):
    """One listing: the summary plus every file version's facts (format, size, SHA-256, when)."""

    versions = serializers.SerializerMethodField(help_text="Uploaded file versions, newest first.")

    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "versions"]

    @extend_schema_field(ListingVersionSerializer(many=True))
    def get_versions(self, dataset: Dataset) -> list[dict[str, Any]]:
        files = DatasetFile.objects.filter(dataset_id=dataset.id).order_by("-version")
        return list(ListingVersionSerializer(files, many=True).data)


# What an anonymous reader of the public catalogue sees of a published listing (docs/dcat.md): an
# allow-list, so a field added to DatasetSerializer stays hidden from anonymous readers until it is
# listed here. Provider-private, never shown to them: subject counts, data and exporter flags, the
# exporter facts and the PIPL attestation.
PUBLIC_DATASET_FIELDS = [
    "id", "provider", "provider_name", "title", "description", "subject_jurisdictions", "storage_jurisdiction",
    "classification", "categories", "de_identified", "price", "currency", "pricing", "licence", "licence_version",
    "status", "files", "sample", "published_at", "updated_at",
]


class PublicDatasetSerializer(DatasetSerializer):
    """A published listing as the public catalogue shows it to callers who are not signed in."""

    class Meta(DatasetSerializer.Meta):
        fields = PUBLIC_DATASET_FIELDS
        read_only_fields = PUBLIC_DATASET_FIELDS


# --- The catalogue list's fast path --------------------------------------------------------------
# The list renders `.values()` rows with plain Python instead of DatasetSerializer (which builds ~25
# field objects and a provider instance per row, 10-19 ms a page). The JSON is the same, field for field:
# tests/marketplace/test_catalogue.py compares both on varied datasets, so a field added to
# DatasetSerializer must be added here too (DATASET_LIST_COLUMNS and dataset_list_item).

DATASET_LIST_COLUMNS = (
    "id", "provider_id", "provider__name", "provider__jurisdiction", "provider__exporter_flags", "title",
    "description", "subject_jurisdictions", "storage_jurisdiction", "classification", "categories", "subjects",
    "de_identified", "flags", "exporter_flags", "pi_duties_attested", "price", "currency", "pricing", "licence",
    "licence_version", "status", "published_at", "created_at", "updated_at", "file_count", "file_formats",
    "file_total_bytes", "latest_file_version", "latest_file_uploaded_at", "sample__id", "sample__content_type",
    "sample__original_name", "sample__size", "sample__sha256", "sample__contains_personal_data", "sample__created_at",
)


def _when(value: Any) -> str | None:
    """DRF's DateTimeField output: ISO 8601 in the current time zone, `Z` for UTC."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _licence(value: Any) -> dict[str, Any]:
    """LicenceSerializer's output for a stored licence dict: known keys only, `resale` always present."""
    licence = value if isinstance(value, dict) else {}
    out: dict[str, Any] = {}
    if "term_days" in licence:
        out["term_days"] = None if licence["term_days"] is None else int(licence["term_days"])
    resale = licence.get("resale", False)
    out["resale"] = None if resale is None else _bool(resale)
    if "terms" in licence:
        out["terms"] = None if licence["terms"] is None else str(licence["terms"])
    return out


def _bool(value: Any) -> bool:
    if value in serializers.BooleanField.TRUE_VALUES:
        return True
    if value in serializers.BooleanField.FALSE_VALUES:
        return False
    return bool(value)


def dataset_list_item(row: dict[str, Any]) -> dict[str, Any]:
    """DatasetSerializer(dataset).data for one `.values(*DATASET_LIST_COLUMNS)` row."""
    return {
        "id": str(row["id"]),
        "provider": str(row["provider_id"]),
        "provider_name": row["provider__name"],
        "title": row["title"],
        "description": row["description"],
        "subject_jurisdictions": list(row["subject_jurisdictions"] or []),
        "storage_jurisdiction": row["storage_jurisdiction"],
        "classification": row["classification"],
        "categories": list(row["categories"] or []),
        "subjects": int(row["subjects"]),
        "de_identified": bool(row["de_identified"]),
        "flags": list(row["flags"] or []),
        "exporter_flags": list(row["exporter_flags"] or []),
        "exporter": {
            "jurisdiction": row["provider__jurisdiction"],
            "flags": list(dict.fromkeys([*(row["provider__exporter_flags"] or []), *(row["exporter_flags"] or [])])),
        },
        "pi_duties_attested": bool(row["pi_duties_attested"]),
        "price": f"{row['price']:.2f}",
        "currency": row["currency"],
        "pricing": row["pricing"],
        "licence": _licence(row["licence"]),
        "licence_version": int(row["licence_version"]),
        "status": row["status"],
        "files": {
            "count": int(row["file_count"]),
            "formats": list(row["file_formats"] or []),
            "total_bytes": int(row["file_total_bytes"]),
            "latest_version": row["latest_file_version"],
            "latest_uploaded_at": _when(row["latest_file_uploaded_at"]),
        },
        "sample": None if row["sample__id"] is None else {
            "content_type": row["sample__content_type"],
            "format": dataset_file_extension(row["sample__original_name"]),
            "size": int(row["sample__size"]),
            "sha256": row["sample__sha256"],
            "contains_personal_data": bool(row["sample__contains_personal_data"]),
            "uploaded_at": _when(row["sample__created_at"]),
            "download": f"/api/v1/datasets/{row['id']}/sample/",
        },
        "published_at": _when(row["published_at"]),
        "created_at": _when(row["created_at"]),
        "updated_at": _when(row["updated_at"]),
    }


class MechanismSerializer(StrictSerializer):
    code = serializers.ChoiceField(choices=vocab.MECHANISMS)
    reference = serializers.CharField(required=False, max_length=200)
    approved_on = serializers.DateField(required=False)
    valid_until = serializers.DateField(required=False)

    def to_representation(self, instance: Any) -> Any:
        return instance  # stored as plain JSON already

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in value.items()}


class MechanismOnFileSerializer(StrictSerializer):
    """Evidence on file: for one trade (a document) or for all of an organisation's trades (a
    standing mechanism). It needs the document, its reference and the date it took effect, and
    counts toward a requirement only once an officer has accepted it (`status`)."""

    id = serializers.UUIDField(read_only=True)
    code = serializers.ChoiceField(choices=vocab.MECHANISMS)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    approved_on = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Signed, approved or filed on."
    )
    valid_until = serializers.DateField(required=False, allow_null=True, default=None)
    file = serializers.FileField(
        required=False, allow_null=True, write_only=True, help_text="PDF, PNG, JPEG or plain text; required."
    )
    content_type = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    sha256 = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(
        choices=EvidenceStatus.choices,
        read_only=True,
        help_text="pending until an officer accepts or rejects it; only accepted evidence counts.",
    )
    review_reason = serializers.CharField(
        read_only=True, help_text="The officer's reason (shown to the submitter when rejected)."
    )
    reviewed_by = serializers.CharField(source="reviewed_by_label", read_only=True)
    reviewed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    awaiting = serializers.SerializerMethodField(
        help_text='"second_officer" when a regulator\'s approval has its first acceptance.'
    )
    created_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_awaiting(self, evidence: Any) -> str | None:
        pending = getattr(evidence, "status", None) == EvidenceStatus.PENDING
        return "second_officer" if pending and getattr(evidence, "first_accepted_by_id", None) else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("approved_on") and attrs.get("valid_until") and attrs["valid_until"] < attrs["approved_on"]:
            raise serializers.ValidationError({"valid_until": ["must not be before approved_on"]})
        return attrs


class StandingMechanismSerializer(MechanismOnFileSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    submitted_by = serializers.CharField(source="created_by.username", read_only=True, default=None)


class TradeDocumentSerializer(MechanismOnFileSerializer):
    trade = serializers.UUIDField(source="trade_id", read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, default=None)
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)


# A trade's pricing: the dataset's (one_time, subscription) or, for compute, the offer's
# (compute_period, compute_query).
TRADE_PRICINGS = [*Dataset.Pricing.values, "compute_period", "compute_query"]


class TradeLicenceSerializer(StrictSerializer):
    """The licence the trade was bought under: the dataset's at the time (or the compute offer's)."""

    term_days = serializers.IntegerField(required=False, help_text="Length of access (or one period), in days.")
    resale = serializers.BooleanField(required=False)
    terms = serializers.CharField(required=False)
    delivery = serializers.ChoiceField(choices=vocab.DELIVERIES, required=False)
    permitted_destinations = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Where the buyer may take the data: its own jurisdiction and the destination it declared.",
    )

    def to_representation(self, instance: Any) -> Any:
        return instance  # stored as plain JSON already, exactly as the trade was bought


class TradeCreateSerializer(StrictSerializer):
    dataset = serializers.UUIDField()
    destination = JurisdictionField(
        required=False, help_text="Where the data goes; defaults to your organisation's jurisdiction."
    )
    purpose = serializers.ChoiceField(choices=vocab.PURPOSES, default="resale")
    # many=True passes max_length on to the ListSerializer; the stubs type only the child's arguments
    mechanisms = MechanismSerializer(many=True, required=False, max_length=len(vocab.MECHANISMS))  # type: ignore[call-arg]
    delivery = serializers.ChoiceField(
        choices=vocab.DELIVERIES,
        default="download",
        help_text="compute: buy query access under the dataset's compute offer; the file is never delivered.",
    )
    queries = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False,
                                       help_text="For a compute offer priced per query: how many queries to buy.")
    expected_price = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False,
        help_text="The price you saw (the listing's, or the compute offer's total). Send it: if the price is not "
        "this any more, nothing is bought and the answer is 409 `price_changed` with the current terms.",
    )
    expected_currency = CurrencyField(required=False, help_text="The currency you saw; 409 `price_changed` if not.")
    expected_licence_version = serializers.IntegerField(
        min_value=1, required=False,
        help_text="The listing's `licence_version` you saw; 409 `price_changed` if the terms changed since.",
    )
    repeat = serializers.BooleanField(
        default=False,
        help_text="Buy again although your organisation holds an active grant for this dataset and delivery "
        "(otherwise 409 `already_held`).",
    )


class RenewSerializer(StrictSerializer):
    """The next period's terms the buyer confirms (GET /trades/{id}/renew/ shows them). Any left out must
    equal the renewed period's; a difference is 409 `price_changed`."""

    expected_price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False)
    expected_currency = CurrencyField(required=False)
    expected_licence_version = serializers.IntegerField(min_value=1, required=False)


class TermsSerializer(StrictSerializer):
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    pricing = serializers.CharField()
    licence = serializers.DictField(required=False)
    licence_version = serializers.IntegerField()
    delivery = serializers.CharField(required=False)
    compute_queries = serializers.IntegerField(allow_null=True, required=False)


class RenewalTermsSerializer(StrictSerializer):
    """What renewing would charge now (`next`), the period being renewed (`current`), and whether they differ
    (then `renew` needs the new terms confirmed)."""

    next = TermsSerializer()
    current = TermsSerializer()
    changed = serializers.BooleanField()


class PreviewQuerySerializer(StrictSerializer):  # a query string, not a body: extra parameters are ignored
    destination = JurisdictionField(required=False)
    delivery = serializers.ChoiceField(choices=vocab.DELIVERIES, required=False,
                                       help_text="Omit to see download and, where offered, compute side by side.")
    purpose = serializers.ChoiceField(choices=vocab.PURPOSES, default="resale")
    mechanisms = serializers.CharField(required=False, allow_blank=True, help_text="comma-separated mechanism codes")

    def validate_mechanisms(self, value: str) -> str:
        unknown = [c for c in value.split(",") if c.strip() and c.strip() not in vocab.MECHANISMS]
        if unknown:
            raise serializers.ValidationError(f"unknown mechanism codes: {', '.join(unknown)}")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["mechanism_list"] = [{"code": c.strip()} for c in attrs.get("mechanisms", "").split(",") if c.strip()]
        return attrs


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=4000, trim_whitespace=True)


class ReviewConditionsSerializer(StrictSerializer):
    grant_valid_days = serializers.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        help_text="Access ends this many days after settlement (if sooner than the licence).",
    )


class EvidenceDecisionSerializer(ReasonSerializer):
    """Why the evidence is accepted (what was checked) or rejected (shown to the submitter)."""


class ReviewDecisionSerializer(ReasonSerializer):
    conditions = ReviewConditionsSerializer(required=False)


class CancelSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=4000, required=False, allow_blank=True)


class TradeEventSerializer(StrictModelSerializer):
    # "from" is a Python keyword: declared through get_fields below.
    to = serializers.CharField(source="to_status")
    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = TradeEvent
        fields = ["at", "to", "actor", "reason"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.CharField(source="from_status")
        return fields


class TradeSerializer(StrictModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id")
    dataset_title = serializers.CharField(source="dataset.title")
    buyer = serializers.UUIDField(source="buyer_id")
    buyer_name = serializers.CharField(source="buyer.name")
    provider = serializers.UUIDField(source="provider_id")
    provider_name = serializers.CharField(source="provider.name")
    purpose = serializers.ChoiceField(choices=vocab.PURPOSES, read_only=True)
    mechanisms = MechanismSerializer(many=True, read_only=True)
    pricing = serializers.ChoiceField(choices=TRADE_PRICINGS, read_only=True)
    licence = TradeLicenceSerializer(read_only=True)
    decision = serializers.SerializerMethodField()
    renews = serializers.UUIDField(source="renews_id", allow_null=True)

    class Meta:
        model = Trade
        fields = [
            "id",
            "status",
            "dataset",
            "dataset_title",
            "buyer",
            "buyer_name",
            "provider",
            "provider_name",
            "destination",
            "purpose",
            "mechanisms",
            "price",
            "currency",
            "pricing",
            "licence",
            "licence_version",
            "delivery",
            "compute_queries",
            "decision",
            "renews",
            "created_at",
            "status_changed_at",
            "settled_at",
        ]
        read_only_fields = fields

    @extend_schema_field(TradeDecisionSerializer(allow_null=True))
    def get_decision(self, trade: Trade) -> dict[str, Any] | None:
        if trade.decision is None:
            return None
        return {**trade.decision.decision, "checked_at": trade.decision.created_at, "check": str(trade.decision.id)}


class TradeDetailSerializer(TradeSerializer):
    events = TradeEventSerializer(many=True, read_only=True)
    revocation_requests = serializers.SerializerMethodField(
        help_text="Requests to revoke the trade's grant and their decisions, newest first."
    )

    class Meta(TradeSerializer.Meta):
        fields = [*TradeSerializer.Meta.fields, "events", "revocation_requests"]
        read_only_fields = fields

    @extend_schema_field(RevocationRequestSerializer(many=True))
    def get_revocation_requests(self, trade: Trade) -> list[dict[str, Any]]:
        requests = GrantRevocationRequest.objects.filter(grant__trade_id=trade.id).select_related(
            "grant__dataset", "grant__buyer"
        )
        return RevocationRequestSerializer(requests.order_by("-created_at", "-id"), many=True).data  # type: ignore[return-value]


class ReviewResultSerializer(TradeDetailSerializer):
    """The trade after an officer's verdict, and what it still waits for."""

    awaiting = serializers.CharField(
        allow_null=True,
        read_only=True,
        help_text='"second_officer" after the first of two approvals (four eyes); otherwise null.',
    )

    class Meta(TradeDetailSerializer.Meta):
        fields = [*TradeDetailSerializer.Meta.fields, "awaiting"]
        read_only_fields = fields


class ReviewItemSerializer(TradeSerializer):
    """A trade in the officer's queue: what the engine saw and decided, and the evidence on file."""

    facts = serializers.SerializerMethodField()
    documents = TradeDocumentSerializer(many=True, read_only=True)
    pending_evidence = serializers.BooleanField(
        read_only=True, help_text="Evidence on this trade waits for an officer to accept or reject it."
    )
    waiting_hours = serializers.SerializerMethodField()

    class Meta(TradeSerializer.Meta):
        fields = [
            *TradeSerializer.Meta.fields,
            "facts",
            "documents",
            "pending_evidence",
            "waiting_since",
            "waiting_hours",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(allow_null=True, help_text=(
        "The facts the engine saw. Officers see `prior_exports`, the exporter's itemised earlier transfers; "
        "anyone else gets `prior_export_totals` (the sums the rules used) instead.")))
    def get_facts(self, trade: Trade) -> dict[str, Any] | None:
        request = self.context.get("request")
        return facts_for_viewer(trade.decision.facts, user=getattr(request, "user", None)) if trade.decision else None

    @extend_schema_field(serializers.FloatField())
    def get_waiting_hours(self, trade: Trade) -> float:
        from django.utils import timezone

        return round((timezone.now() - (trade.waiting_since or trade.status_changed_at)).total_seconds() / 3600, 2)


class RefundRequestSerializer(StrictModelSerializer):
    trade = serializers.UUIDField(source="trade_id")
    requested_by = serializers.CharField(source="requested_by_label")
    confirmed_by = serializers.CharField(source="confirmed_by_label")

    class Meta:
        model = RefundRequest
        fields = [
            "id",
            "trade",
            "amount",
            "currency",
            "reason",
            "status",
            "requested_by",
            "created_at",
            "confirmed_by",
            "confirmed_at",
        ]
        read_only_fields = fields


class RefundAwaitingSerializer(StrictSerializer):
    """A refund over the four-eyes threshold, recorded and waiting for a different officer."""

    awaiting = serializers.ChoiceField(choices=["second_officer"])
    refund_request = RefundRequestSerializer()
    trade = TradeDetailSerializer()
