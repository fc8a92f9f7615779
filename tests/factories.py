"""Factories that keep related rows consistent (a trade's provider is its dataset's provider)."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from marketplace.models import Dataset, Membership, Organisation, Trade

PASSWORD = "correct-horse-battery"


class OrganisationFactory(factory.django.DjangoModelFactory[Organisation]):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    jurisdiction = "DE"
    headquarters = factory.SelfAttribute("jurisdiction")


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(self, create, extracted, **kwargs):
        if create:
            self.save()


def fund(organisation: Organisation, amount: str = "1000000.00", currencies: tuple[str, ...] = ("EUR", "USD")) -> None:
    """Top up through the real deposit service, so the ledger stays balanced."""
    from marketplace.services.deposits import deposit_record

    for currency in currencies:
        deposit_record(organisation=organisation, amount=Decimal(amount), currency=currency, actor_label="system:test")


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    """A user in an organisation. Buyers' organisations are funded unless `funded=False`."""

    class Meta:
        model = Membership
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Membership.Role.BUYER

    @factory.post_generation
    def funded(self, create, extracted, **kwargs):
        if (
            create
            and self.role == Membership.Role.BUYER
            and extracted is not False
            and not self.organisation.wallets.exists()
        ):
            fund(self.organisation)


def upload_file(client, dataset_id, name: str = "data.csv", content: bytes = b"id,value\n1,42\n"):
    """Upload a file version through the API, as a provider does before publishing; returns the response."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        f"/api/v1/datasets/{dataset_id}/files/", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )


class DatasetFactory(factory.django.DjangoModelFactory[Dataset]):
    class Meta:
        model = Dataset

    provider = factory.SubFactory(OrganisationFactory, jurisdiction="DE")
    title = factory.Sequence(lambda n: f"Dataset {n}")
    description = "Test data"
    subject_jurisdictions = factory.LazyAttribute(lambda o: [o.provider.jurisdiction])
    storage_jurisdiction = factory.LazyAttribute(lambda o: o.subject_jurisdictions[0])
    classification = "personal"
    categories = ["contact"]
    subjects = 1000
    price = Decimal("100.00")
    currency = "EUR"
    status = Dataset.Status.PUBLISHED

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """`with_file=False`: no file version (publishing needs one, so such a dataset is a draft
        in practice); otherwise a small CSV is uploaded as version 1 through the upload service, as
        a provider does before publishing."""
        from django.core.files.uploadedfile import SimpleUploadedFile

        from marketplace.services.dataset_files import dataset_file_store
        from marketplace.services.datasets import dataset_reindex

        with_file = kwargs.pop("with_file", True)
        dataset = model_class(*args, **kwargs)
        dataset_reindex(dataset)  # the catalogue's search columns, derived as the service derives them
        dataset.save()
        if with_file:
            upload = SimpleUploadedFile("data.csv", b"id,value\n1,42\n", content_type="text/csv")
            dataset_file_store(dataset_id=dataset.id, upload=upload)
            dataset.refresh_from_db()
        return dataset


class TradeFactory(factory.django.DjangoModelFactory[Trade]):
    """A trade as the pipeline would have left it in `status`, through the real money services:
    the buyer is funded with the price and it is held in escrow (as at purchase); a rejected or
    cancelled trade has its hold released; a settled one went through `trade_settle` (ledger,
    Settlement, export volume, grant). Nothing is enqueued (tests' transactions never commit)."""

    class Meta:
        model = Trade

    dataset = factory.SubFactory(DatasetFactory)
    provider = factory.SelfAttribute("dataset.provider")
    buyer = factory.SubFactory(OrganisationFactory, jurisdiction="DE")
    destination = factory.SelfAttribute("buyer.jurisdiction")
    price = factory.SelfAttribute("dataset.price")
    currency = factory.SelfAttribute("dataset.currency")
    pricing = "one_time"
    status = Trade.Status.CHECKING
    status_changed_at = factory.LazyFunction(timezone.now)
    waiting_since = factory.LazyAttribute(lambda t: t.status_changed_at if t.status in Trade.WAITING else None)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from marketplace.services.ledger import ledger_hold, ledger_release
        from marketplace.services.settlement import trade_settle

        status = kwargs.pop("status", Trade.Status.CHECKING)
        if status == Trade.Status.REFUNDED:
            raise NotImplementedError("make a settled trade and refund it through marketplace.services.refunds")
        settled = status == Trade.Status.SETTLED
        trade = super()._create(model_class, *args, status=Trade.Status.APPROVED if settled else status, **kwargs)
        if trade.price > 0:
            fund(trade.buyer, str(trade.price), (trade.currency,))
            ledger_hold(trade=trade)
            if status in (Trade.Status.REJECTED, Trade.Status.CANCELLED):
                ledger_release(trade=trade)
        if settled:
            trade_settle(trade_id=trade.pk)
            trade.refresh_from_db()
        return trade
