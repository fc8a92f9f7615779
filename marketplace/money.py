"""Money: ISO 4217 currencies with their minor units, and exact Decimal amounts."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pycountry

# ISO 4217 minor units where they are not 2. Three-decimal currencies are not supported: every
# amount column holds two decimal places.
_ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"}
_THREE_DECIMAL = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}


class MoneyError(ValueError):
    pass


def currency_check(code: str) -> str:
    code = code.strip().upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise MoneyError(f"unknown currency {code!r}: use an ISO 4217 code")
    if code in _THREE_DECIMAL:
        raise MoneyError(f"{code} has three decimal places, which Elementa does not support")
    return code


def exponent(currency: str) -> int:
    return 0 if currency in _ZERO_DECIMAL else 2


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def money(amount: object, currency: str) -> Decimal:
    """An exact amount in the currency's precision; more precision than the currency has is an error."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise MoneyError(f"{amount!r} is not an amount") from None
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not an amount")
    q = quantum(currency)
    if value != value.quantize(q):
        raise MoneyError(f"{currency} amounts have {exponent(currency)} decimal places")
    return value.quantize(q)


def fee_of(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The platform's fee, rounded half up to the currency's minor unit."""
    return (amount * rate).quantize(quantum(currency), rounding=ROUND_HALF_UP)
