"""Safeguards an organisation keeps on file for all its trades. Like trade documents they arrive
`pending` and count only once an officer has accepted them (marketplace.services.evidence_review)."""

from datetime import date
from uuid import UUID

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from marketplace.models import EvidenceStatus, Membership, OrganisationMechanism
from marketplace.services.events import event_emit
from marketplace.services.evidence_review import organisation_trades_recheck
from marketplace.services.trade_documents import evidence_require_complete, evidence_store_file


@transaction.atomic
def mechanism_add(
    *,
    membership: Membership,
    code: str,
    reference: str = "",
    approved_on: date | None = None,
    valid_until: date | None = None,
    upload: UploadedFile | None = None,
) -> OrganisationMechanism:
    evidence_require_complete(reference=reference, approved_on=approved_on, upload=upload)
    assert upload is not None
    mechanism = OrganisationMechanism(
        organisation=membership.organisation, code=code, reference=reference, approved_on=approved_on,
        valid_until=valid_until, created_by=membership.user,
    )
    evidence_store_file(evidence=mechanism, upload=upload)
    mechanism.save()
    event_emit(
        kind="mechanism.added",
        subject_type="organisation",
        subject_id=membership.organisation_id,
        actor=membership.user,
        data={
            "mechanism": str(mechanism.id),
            "code": code,
            "reference": reference,
            "approved_on": approved_on,
            "valid_until": valid_until,
            "sha256": mechanism.sha256,
            "status": mechanism.status,
        },
    )
    return mechanism


@transaction.atomic
def mechanism_remove(*, mechanism_id: UUID, actor: User | None = None) -> None:
    """Take a mechanism off file. If it was accepted, the organisation's trades still waiting for a
    decision are re-checked without it: none is approved on a decision that counted it."""
    mechanism = OrganisationMechanism.objects.select_for_update().filter(pk=mechanism_id).first()
    if mechanism is None:
        return
    event_emit(
        kind="mechanism.removed",
        subject_type="organisation",
        subject_id=mechanism.organisation_id,
        actor=actor,
        data={
            "mechanism": str(mechanism.id),
            "code": mechanism.code,
            "reference": mechanism.reference,
            "status": mechanism.status,
        },
    )
    was_accepted = mechanism.status == EvidenceStatus.ACCEPTED
    mechanism.delete()
    if was_accepted:
        organisation_trades_recheck(organisation_id=mechanism.organisation_id, actor=actor,
                                    why=f"standing evidence withdrawn: {mechanism.code} {mechanism.reference}".strip())
