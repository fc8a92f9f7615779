"""Marketplace errors a client may branch on, each with a stable code."""

from config.errors import ApplicationError, ConflictError, PermissionDeniedError


class TradeTransitionNotAllowedError(ConflictError):
    code = "trade_transition_not_allowed"
    default_message = "The trade's status does not allow this."


class DatasetNotAvailableError(ApplicationError):
    code = "dataset_not_available"
    status_code = 409
    default_message = "The dataset is not published."


class DatasetFactsLockedError(ConflictError):
    code = "dataset_facts_locked"
    default_message = "A published dataset's legal facts cannot change; withdraw it and list a new one."


class DatasetInconsistentError(ApplicationError):
    code = "dataset_inconsistent"
    status_code = 400
    default_message = "The dataset's facts contradict each other."


class OwnDatasetError(ApplicationError):
    code = "own_dataset"
    status_code = 400
    default_message = "An organisation cannot buy its own dataset."


class RoleRequiredError(PermissionDeniedError):
    code = "role_required"


class AttestationRequiredError(ConflictError):
    code = "attestation_required"
    default_message = (
        "A listing with Chinese personal information needs the provider's attestation of notice, separate consent "
        "and the impact assessment (PIPL Arts. 23, 39, 55) before it is published."
    )


class EvidenceIncompleteError(ApplicationError):
    code = "evidence_incomplete"
    status_code = 400
    default_message = "Evidence needs the document itself, its reference and the date it took effect."


class EvidenceNotPendingError(ConflictError):
    code = "evidence_not_pending"
    default_message = "This evidence has already been decided."


class OwnEvidenceError(PermissionDeniedError):
    code = "own_evidence"
    default_message = "Evidence is reviewed by an officer other than the person who submitted it."


class SecondOfficerRequiredError(ConflictError):
    code = "second_officer_required"
    default_message = "This needs a second, different officer to confirm."


class RequirementsOutstandingError(ConflictError):
    code = "requirements_outstanding"
    default_message = "The trade cannot be approved while a requirement has no accepted evidence."


class AlreadyRenewedError(ConflictError):
    code = "already_renewed"
    default_message = "This subscription period has already been renewed."


class OwnOrganisationError(PermissionDeniedError):
    code = "own_organisation"
    default_message = "Officers do not review evidence or decide trades of their own organisation."
