"""The closed vocabularies of transfer facts and decisions (outcomes, classifications, categories, purposes,
mechanism codes...): anything else is rejected."""

from enum import StrEnum


class Outcome(StrEnum):
    """Decision outcomes, declared from least to most restrictive."""

    ALLOW = "allow"
    ALLOW_FLAGGED = "allow_flagged"
    NEEDS_FILING = "needs_filing"
    NEEDS_MECHANISM = "needs_mechanism"
    NEEDS_APPROVAL = "needs_approval"
    REVIEW = "review"
    DENY = "deny"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def needs_something(self) -> bool:
        return self in (Outcome.NEEDS_FILING, Outcome.NEEDS_MECHANISM, Outcome.NEEDS_APPROVAL)


_RANK = {outcome: index for index, outcome in enumerate(Outcome)}

# Evidence that a regulator approved the transfer (or the safeguard): accepting it on file needs
# two different officers, as a forged approval would stand in for the regulator itself.
REGULATOR_APPROVALS = ("cn_security_assessment", "cn_certification", "eu_bcr")
CLASSIFICATIONS = ("public", "non_personal", "anonymous", "personal", "sensitive_personal", "important", "core")
PERSONAL_CLASSIFICATIONS = ("personal", "sensitive_personal")
CATEGORIES = (
    "contact", "identifiers", "purchase_history", "profile", "location_history", "precise_geolocation",
    "health", "financial", "biometric", "genomic", "omic", "minors", "employee", "government_related",
    "telemetry", "statistics",
)
DATA_FLAGS = ("foreign_origin_only", "ftz_negative_list", "gov_geofence")
EXPORTER_FLAGS = ("cn_ciio", "cn_ftz", "cn_gba", "data_broker")
BUYER_KINDS = ("company", "public_body", "court_or_law_enforcement")
CERTIFICATIONS = ("us_dpf", "us_dpf_hr", "us_dpf_uk_extension", "ca_pipeda", "apec_cbpr", "cn_gba_registered")
# How the buyer gets the data: the file itself, or aggregate results of queries run where it is stored.
DELIVERIES = ("download", "compute")
PURPOSES = ("resale", "contract_with_subject", "hr_management", "emergency", "intra_group", "return_to_origin")
MECHANISMS = (
    "cn_security_assessment", "cn_standard_contract", "cn_certification", "cn_gba_standard_contract",
    "cn_hr_policy", "eu_scc", "eu_tia", "eu_tia_negative", "eu_bcr", "eu_art49_derogation", "uk_idta",
    "uk_tra", "us_dsp_onward_clause", "us_cisa_security", "ru_rkn_notification", "vn_tia_dossier",
    "jp_consent", "jp_equivalent_measures", "kr_consent", "br_anpd_scc", "sg_enforceable_obligations",
    "sa_sdaia_scc", "sa_risk_assessment",
)
