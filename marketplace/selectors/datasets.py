"""Which datasets a user may see."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from marketplace.models import Dataset
from marketplace.selectors.members import is_officer, membership_of


def dataset_list_visible(*, user: User | AnonymousUser) -> QuerySet[Dataset]:
    """The published catalogue, plus the caller's own listings in any status; officers see all."""
    qs = Dataset.objects.select_related("provider", "sample")  # the listing shows its sample
    if is_officer(user):
        return qs
    membership = membership_of(user)
    visible = Q(status=Dataset.Status.PUBLISHED)
    if membership is not None:
        visible |= Q(provider_id=membership.organisation_id)
    return qs.filter(visible)
