"""Recording an officer's review of a subject the engine could not decide."""

from django.contrib.auth.models import AbstractBaseUser

from compliance.models import ComplianceCheck, Review


def review_record(
    *, subject_type: str, subject_id: object, check: ComplianceCheck | None, officer: AbstractBaseUser, verdict: str, reason: str
) -> Review:
    """Append a review row; runs in the caller's transaction, beside the status change it justifies."""
    return Review.objects.create(
        subject_type=subject_type, subject_id=subject_id, compliance_check=check, officer=officer,
        officer_username=officer.get_username(), verdict=verdict, reason=reason,
    )
