"""Marketplace errors a client may branch on: the one catalogue of this app's error classes.

Each class has its own stable `code` (documented in docs/errors.md; tests/security/test_error_catalogue.py
checks both). The four-eyes error, shared with rule-pack activation, lives in compliance.errors."""

from typing import Any

from config.errors import ApplicationError, ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError

# --- Trades, datasets and evidence -------------------------------------------------------------


class TradeTransitionNotAllowedError(ConflictError):
    code = "trade_transition_not_allowed"
    default_message = "The trade's status does not allow this."


class DatasetTransitionNotAllowedError(ConflictError):
    code = "dataset_transition_not_allowed"
    default_message = "The dataset's status does not allow this."


class DatasetNotAvailableError(ApplicationError):
    code = "dataset_not_available"
    status_code = 409
    default_message = "The dataset is not published."


class DatasetHasNoFileError(ConflictError):
    code = "dataset_has_no_file"
    default_message = "Upload the dataset's file before publishing it: a listing is sold with its data."


class DatasetFactsLockedError(ConflictError):
    code = "dataset_facts_locked"
    default_message = "A published dataset's legal facts cannot change; withdraw it and list a new one."


class DatasetInconsistentError(ApplicationError):
    code = "dataset_inconsistent"
    status_code = 400
    default_message = "The dataset's facts contradict each other."


class CurrencyRequiredError(InvalidInputError):
    code = "currency_required"
    default_message = "Price filters need a currency: prices in different currencies are not comparable."


class OrderingInvalidError(InvalidInputError):
    code = "ordering_invalid"
    default_message = "The catalogue cannot be ordered by that."


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



class RequirementsOutstandingError(ConflictError):
    code = "requirements_outstanding"
    default_message = "The trade cannot be approved while a requirement has no accepted evidence."


class AlreadyRenewedError(ConflictError):
    code = "already_renewed"
    default_message = "This subscription period has already been renewed."


class PriceChangedError(ConflictError):
    """The terms the buyer confirmed (expected_price, expected_currency, expected_licence_version) are
    not the terms it would get now; `current` in the body holds today's terms. Nothing was bought."""

    code = "price_changed"
    default_message = "The price or licence terms changed since you saw them; nothing was bought. Check `current`."

    def __init__(
        self, message: str | None = None, *, fields: dict[str, Any] | None = None, current: dict[str, Any]
    ) -> None:
        super().__init__(message, fields=fields)
        self.extra = {"current": current}  # rendered beside code, message and fields (config.api)


class AlreadyHeldError(ConflictError):
    code = "already_held"
    default_message = (
        'Your organisation already holds an active grant for this dataset and delivery; send "repeat": true to buy '
        "it again."
    )


class OwnOrganisationError(PermissionDeniedError):
    code = "own_organisation"
    default_message = "Officers do not review evidence or decide trades of their own organisation."


# --- Trade documents and dataset files -----------------------------------------------------------


class UploadRejectedError(ApplicationError):
    """A refused trade document or dataset file (empty, too large, not an accepted type)."""

    code = "upload_rejected"
    status_code = 400
    default_message = "The file is not an accepted document."


class SamplePersonalDataRefusedError(ApplicationError):
    """A sample is downloadable by anyone who can see the listing, outside every transfer check."""

    code = "sample_personal_data_refused"
    status_code = 400
    default_message = (
        "A sample is free for anyone who can see the listing and goes through no transfer check: "
        "it must hold no personal data."
    )


class DatasetSampleNotFoundError(NotFoundError):
    code = "dataset_sample_not_found"
    default_message = "The dataset has no sample."



# --- Money ---------------------------------------------------------------------------------------


class InsufficientFundsError(ConflictError):
    code = "insufficient_funds"
    default_message = "The wallet does not hold enough available funds."


class AmountOutOfRangeError(InvalidInputError):
    """An amount over NUMERIC(16,2), or a movement that would take a balance past it."""

    code = "amount_out_of_range"
    default_message = "The amount, or the balance it would make, is larger than Elementa can hold."


class RefundNotCoveredError(ConflictError):
    code = "refund_not_covered"
    default_message = "The provider's available balance does not cover the refund."


class DepositNotPendingError(ConflictError):
    code = "deposit_not_pending"
    default_message = "The deposit has already been decided."


class SamePersonNotAllowedError(ConflictError):
    code = "same_person_not_allowed"
    default_message = "The person who asked for this money cannot also approve it; a second officer must."



# --- Access grants, downloads, revocation and re-screening ---------------------------------------


class GrantInactiveError(PermissionDeniedError):
    code = "grant_inactive"
    default_message = "The grant does not allow downloads now."


class GrantSuspendedError(PermissionDeniedError):
    code = "grant_suspended"
    default_message = (
        "The grant is suspended while an officer reviews it: re-screening found the trade would now be denied."
    )


class GrantAlreadyRevokedError(ConflictError):
    code = "grant_already_revoked"
    default_message = "The grant is already revoked."


class VersionNotCoveredError(PermissionDeniedError):
    code = "version_not_covered"
    default_message = "The grant does not cover this version."


class DatasetFileNotFoundError(NotFoundError):
    code = "dataset_file_not_found"
    default_message = "No such file version."


class RangeNotSatisfiableError(ApplicationError):
    code = "range_not_satisfiable"
    status_code = 416
    default_message = "The requested range is outside the file."

    def __init__(self, message: str | None = None, *, size: int) -> None:
        super().__init__(message, fields={"size": size})
        self.size = size


class GrantRequiredError(PermissionDeniedError):
    code = "grant_required"
    default_message = "Only the provider, officers and buyers holding an active grant see a dataset's files."


class GrantNotSuspendedError(ConflictError):
    code = "grant_not_suspended"
    default_message = "The grant is not suspended."


class RevocationRequestPendingError(ConflictError):
    code = "revocation_request_pending"
    default_message = "A revocation request for this grant is already waiting for an officer."


class RevocationRequestDecidedError(ConflictError):
    code = "revocation_request_decided"
    default_message = "The revocation request is already decided."


class ProRataUnavailableError(InvalidInputError):
    code = "pro_rata_unavailable"
    default_message = "The grant has no end date, so there is no unused fraction to refund."


class GrantFlagSuspendedError(ConflictError):
    code = "grant_flag_suspended"
    default_message = ("The grant is suspended: resolve it with POST /api/v1/grants/{id}/reinstate/ or /revoke/ "
                       "(with a refund decision), which closes its flags too.")


class GrantFlagResolvedError(ConflictError):
    code = "grant_flag_resolved"
    default_message = "The flag is already resolved."


# --- Webhooks ------------------------------------------------------------------------------------


class WebhookUrlInvalidError(InvalidInputError):
    code = "webhook_url_invalid"
    default_message = "The webhook URL is not valid (an https URL without credentials or fragment)."


class WebhookUrlNotAllowedError(InvalidInputError):
    code = "webhook_url_not_allowed"
    default_message = "The webhook URL points at an address webhooks may not be sent to."


class WebhookEventUnknownError(InvalidInputError):
    code = "webhook_event_unknown"
    default_message = "Unknown event kind."


class WebhookEndpointLimitError(ConflictError):
    code = "webhook_endpoint_limit"
    default_message = "The organisation has registered as many webhook endpoints as it may."


class WebhookEndpointInactiveError(ConflictError):
    code = "webhook_endpoint_inactive"
    default_message = "The endpoint is disabled; enable it first."


class WebhookDeliveryPendingError(ConflictError):
    code = "webhook_delivery_pending"
    default_message = "The delivery is still being attempted."


# --- Idempotency keys ----------------------------------------------------------------------------


class IdempotencyKeyInvalidError(ApplicationError):
    code = "idempotency_key_invalid"
    status_code = 400
    default_message = "The Idempotency-Key must be 1 to 255 visible characters."


class IdempotencyKeyReusedError(ApplicationError):
    code = "idempotency_key_reused"
    status_code = 422
    default_message = "This Idempotency-Key was used for a different request."


class IdempotencyKeyInUseError(ConflictError):
    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still being processed; retry shortly."


# --- Compute-to-data -----------------------------------------------------------------------------


class QueryRefusedError(InvalidInputError):
    code = "query_refused"
    default_message = "The query may not run."


class ComputeNotOfferedError(InvalidInputError):
    code = "compute_not_offered"
    default_message = "The dataset is not offered for computation."


class ComputeOfferInvalidError(InvalidInputError):
    code = "compute_offer_invalid"
    default_message = "The compute offer is not valid."


class GrantComputeOnlyError(PermissionDeniedError):
    code = "grant_compute_only"
    default_message = "This grant is for computation where the data is stored: the file itself is never delivered."


class NotComputeGrantError(ConflictError):
    code = "not_a_compute_grant"
    default_message = "This grant is for downloads; queries run only under a compute grant."


class PrivacyBudgetExhaustedError(ConflictError):
    code = "privacy_budget_exhausted"
    default_message = "Not enough privacy budget (ε) is left in this period for the query."


class ComputeQuotaExhaustedError(ConflictError):
    code = "compute_quota_exhausted"
    default_message = "Every query this grant paid for has been used."


class QueryNotHeldError(ConflictError):
    code = "query_not_held"
    default_message = "Only a query held for review can be released or refused."
# --- Organisations: onboarding, legal facts, members --------------------------------------------


class OrganisationNotVerifiedError(ConflictError):
    code = "organisation_not_verified"
    default_message = (
        "The organisation's legal facts have not been verified by an officer yet; it cannot trade until they are."
    )


class OrganisationNameTakenError(ConflictError):
    code = "organisation_name_taken"
    default_message = "An organisation with this legal name is already registered."


class OrganisationFactsPendingError(ConflictError):
    code = "organisation_facts_pending"
    default_message = "A change of the organisation's legal facts is already waiting for an officer."


class OrganisationFactsDecidedError(ConflictError):
    code = "organisation_facts_decided"
    default_message = "These legal facts have already been decided."


class InvitationInvalidError(ApplicationError):
    code = "invitation_invalid"
    status_code = 400
    default_message = "The invitation link is invalid, has expired or has been used."


class RoleNotAllowedError(ApplicationError):
    code = "role_not_allowed"
    status_code = 400
    default_message = "This role cannot be given in this organisation."


class LastAdministratorError(ConflictError):
    code = "last_administrator"
    default_message = "The organisation would have no administrator left."


class SanctionsEntryUnknownError(ApplicationError):
    code = "sanctions_entry_unknown"
    status_code = 400
    default_message = "No such entry in the current sanctions lists."


# --- Linked-data catalogue (DCAT-AP, ODRL) --------------------------------------------------------


class AgreementNotAvailableError(ConflictError):
    code = "agreement_not_available"
    default_message = "The trade has no agreement yet: it exists once the trade is settled and its grant issued."
