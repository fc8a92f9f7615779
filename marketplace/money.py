"""Money: ISO 4217 currencies with their minor units, and exact Decimal amounts. The one place that
decides which currency codes Elementa accepts and how many decimals an amount in each may have.

Accepted: an active ISO 4217 code (the `iso4217` package ships the maintenance agency's table), in any
letter case, normalised to upper case, that is money a country issues. Refused with a message:
- funds codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI: ISO marks them `IsFund`),
- codes with no minor unit: precious metals (XAU, XAG, XPT, XPD), the testing and no-currency codes
  (XTS, XXX), the European bond-market units (XBA-XBD), the SDR (XDR), the SUCRE (XSU) and the ADB
  unit of account (XUA),
- units of account that ISO lists with a minor unit (XAD, the Arab Accounting Dinar; UYW),
- currencies with more than two minor units (BHD, IQD, JOD, KWD, LYD, OMR, TND): every amount column
  holds two decimal places.

Amounts are never rounded silently: an amount with more decimals than its currency has (10.50 JPY,
10.001 EUR) is refused; 1000.00 JPY is 1000 JPY.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache

import iso4217

# NUMERIC(16,2), the type of every wallet, deposit and ledger column: the largest amount or balance.
AMOUNT_MAX = Decimal("99999999999999.99")
# The largest exponent an amount column can hold (decimal_places=2 everywhere).
MAX_EXPONENT = 2
# Units of account ISO 4217 lists with a minor unit but that no one holds in a bank account.
UNITS_OF_ACCOUNT = frozenset({"XAD", "UYW"})


class MoneyError(ValueError):
    pass


@cache
def _table() -> dict[str, tuple[int | None, bool]]:
    """code → (minor units or None, is a fund), from the ISO 4217 list one table."""
    table: dict[str, tuple[int | None, bool]] = {}
    for entry in iso4217.raw_xml.findall("CcyTbl/CcyNtry"):
        code, units, name = entry.find("Ccy"), entry.find("CcyMnrUnts"), entry.find("CcyNm")
        if code is None or not code.text:
            continue
        minor = units.text.strip() if units is not None and units.text else ""
        is_fund = name is not None and name.attrib.get("IsFund", "").lower() == "true"
        table[code.text.strip()] = (int(minor) if minor.isdigit() else None, is_fund)
    return table


def _refusal(code: str) -> str | None:
    """Why `code` (upper case) is not a currency Elementa trades in, or None if it is."""
    entry = _table().get(code)
    if entry is None:
        return f"unknown currency {code!r}: use an active ISO 4217 code such as EUR or USD"
    minor, is_fund = entry
    if is_fund:
        return f"{code} is an ISO 4217 funds code, not a currency"
    if minor is None or code in UNITS_OF_ACCOUNT:
        return f"{code} is not a currency (a precious metal, a unit of account or a testing code)"
    if minor > MAX_EXPONENT:
        return f"{code} has {minor} decimal places, which Elementa does not support"
    return None


def currency_check(code: object) -> str:
    """The upper-case ISO 4217 code for `code`, or MoneyError saying why it is refused."""
    if not isinstance(code, str):
        raise MoneyError("a currency is a three-letter ISO 4217 code")
    normalised = code.strip().upper()
    if len(normalised) != 3 or not normalised.isascii() or not normalised.isalpha():
        raise MoneyError(f"{code[:10]!r} is not a three-letter ISO 4217 code")
    reason = _refusal(normalised)
    if reason:
        raise MoneyError(reason)
    return normalised


def currencies_accepted() -> list[str]:
    return sorted(code for code in _table() if _refusal(code) is None)


def exponent(currency: str) -> int:
    """The currency's minor units (JPY 0, EUR 2); 2 for a code that is not in the table."""
    minor = _table().get(currency.upper(), (None, False))[0]
    return MAX_EXPONENT if minor is None else minor


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def money(amount: object, currency: str) -> Decimal:
    """An exact amount in the currency's precision; more precision than the currency has is an error,
    and so is an amount above AMOUNT_MAX."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise MoneyError(f"{str(amount)[:40]!r} is not an amount") from None
    if not value.is_finite():
        raise MoneyError(f"{str(amount)[:40]!r} is not an amount")
    if abs(value) > AMOUNT_MAX:
        raise MoneyError(f"at most {AMOUNT_MAX:,}")
    q = quantum(currency)
    if value != value.quantize(q):
        places = exponent(currency)
        raise MoneyError(f"{currency} amounts are whole units (no decimal places)" if places == 0
                         else f"{currency} amounts have at most {places} decimal places")
    return value.quantize(q)


def fee_of(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The platform's fee, rounded half up to the currency's minor unit."""
    return (amount * rate).quantize(quantum(currency), rounding=ROUND_HALF_UP)
