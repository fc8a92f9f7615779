"""Recording an officer's review of a subject the engine could not decide."""

from uuid import UUID

from django.contrib.auth.models import User

from compliance.models import ComplianceCheck, Review
from compliance.services.audit import audit_record


def review_record(
    *, subject_type: str, subject_id: UUID, check: ComplianceCheck | None, officer: User, verdict: str, reason: str,
    conditions: dict | None = None,
) -> Review:
    """Append a review row; runs in the caller's transaction, beside the status change it justifies."""
    review = Review.objects.create(
        subject_type=subject_type, subject_id=subject_id, compliance_check=check, officer=officer,
        officer_username=officer.get_username(), verdict=verdict, reason=reason, conditions=conditions or {},
    )
    audit_record(kind="review.recorded", subject_type=subject_type, subject_id=subject_id, actor=officer,
                 data={"review": str(review.id), "verdict": verdict, "reason": reason, "conditions": conditions or {},
                       "check": str(check.id) if check else None})
    return review


def review_approvers(*, subject_type: str, subject_id: UUID, check: ComplianceCheck | None) -> set[object]:
    """Officers who approved this subject on the strength of this decision (four eyes)."""
    return set(Review.objects.filter(subject_type=subject_type, subject_id=subject_id, compliance_check=check,
                                     verdict=Review.Verdict.APPROVE).values_list("officer_id", flat=True))
