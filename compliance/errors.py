"""Compliance errors a client may branch on: the one catalogue of this app's error classes (see docs/errors.md)."""

from config.errors import ApplicationError, ConflictError, NotFoundError


class InvalidFactsError(ApplicationError):
    code = "invalid_facts"
    status_code = 400
    default_message = "The transfer facts are invalid."


class RulePackInvalidError(ApplicationError):
    code = "rulepack_invalid"
    status_code = 400
    default_message = "The rule pack does not validate."


class RulePackImmutableError(ConflictError):
    code = "rulepack_immutable"
    default_message = "A rule-pack version, once loaded, never changes; give the new rules a new version."


class RulePackNotDraftError(ConflictError):
    code = "rulepack_not_draft"
    default_message = "Only a draft rule pack can be activated."


class RulePackVersionTakenError(ConflictError):
    code = "rulepack_version_taken"
    default_message = "Another rule pack already has this regime and version."


class RulePackNotFoundError(NotFoundError):
    code = "rulepack_not_found"
    default_message = "No such rule pack."


class BacktestRequiredError(ConflictError):
    code = "backtest_required"
    default_message = "Activation needs a recent backtest of exactly this draft's content."


class SecondOfficerRequiredError(ConflictError):
    """The four-eyes rule: a second, different officer must confirm (rule-pack activation, trade approval,
    regulator-approval evidence, large refunds). Each raise says which."""

    code = "second_officer_required"
    default_message = "This needs a second, different officer to confirm."


class AuthorCannotApproveError(ConflictError):
    code = "author_cannot_approve"
    default_message = "You created or edited this draft, so you cannot approve it; a different officer must."


class TradeDateOutOfRangeError(ApplicationError):
    code = "trade_date_out_of_range"
    status_code = 400
    default_message = "No rule pack can speak to this trade date."


class SanctionsListInvalidError(ApplicationError):
    code = "sanctions_list_invalid"
    status_code = 400
    default_message = "The file is not a sanctions list in the format named, or it lists nobody."
