"""Money: integer minor units with an ISO 4217 currency, allocation, and basis-point rates.

Amounts are never floats. `Money.amount_fen` counts the currency's minor unit (fen for CNY,
cents for USD, whole yen for JPY); "yuan" in names means the major unit of any currency.

The one rounding rule of CloudPay
---------------------------------
A rate is applied exactly (Decimal arithmetic with ample precision, trapped on `Inexact` so a
lost digit is a crash, not a silent error) and the result is rounded **once**, ROUND_HALF_UP
— a half goes away from zero, 0.5 → 1 and -0.5 → -1 — to whole minor units, at the point
where a single fee line is computed (`apply_rate_bp`). Intermediate results are never
rounded: combine rates before applying them, and sum fee lines only after each is rounded.
When a rounded whole must be divided (a fee shared between split receivers, a fee returned
over partial refunds), use `allocate`, never a per-part rounding, so the parts sum back.

Half-up is symmetric around zero, so the fee of a refund (a negative amount) is exactly the
negation of the fee of the same positive amount.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from types import MappingProxyType
from typing import TypeAlias

from cloudpay.kernel.errors import CurrencyMismatch, InvalidRequest

# ISO 4217 minor-unit exponents. Only currencies listed here can be held, parsed or formatted:
# a guessed exponent would misprice by a factor of 100.
MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "CNY": 2,
        "HKD": 2,
        "MOP": 2,
        "TWD": 2,
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "SGD": 2,
        "AUD": 2,
        "CAD": 2,
        "CHF": 2,
        "NZD": 2,
        "THB": 2,
        "MYR": 2,
        "JPY": 0,
        "KRW": 0,
        "VND": 0,
        "KWD": 3,
        "BHD": 3,
    }
)

# Amounts must fit a signed 64-bit column (PostgreSQL BIGINT), so an overflow is a clear 400
# here instead of a database error later.
MAX_AMOUNT_FEN = 2**63 - 1
# Long enough for any BIGINT amount with sign and point; stops megabyte strings early.
_MAX_AMOUNT_TEXT_LENGTH = 32
_CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")


def _require_int(value: object, name: str) -> int:
    # bool is an int subclass: True fen is always a bug, never an amount.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def minor_units(currency: str) -> int:
    """Number of decimal places of `currency`'s major unit (2 for CNY, 0 for JPY)."""
    if not isinstance(currency, str):
        raise TypeError(f"currency must be a str, got {type(currency).__name__}")
    if not _CURRENCY_PATTERN.fullmatch(currency):
        raise InvalidRequest(
            f"currency {currency!r} is not an ISO 4217 code (three upper-case letters)",
            code="invalid_currency",
            param="currency",
        )
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise InvalidRequest(
            f"currency {currency} is not supported",
            code="unsupported_currency",
            param="currency",
        ) from None


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `amount_fen` minor units of `currency`.

    Equality across currencies is simply False; ordering and arithmetic across currencies
    raise `CurrencyMismatch`.
    """

    amount_fen: int
    currency: str

    def __post_init__(self) -> None:
        _require_int(self.amount_fen, "amount_fen")
        minor_units(self.currency)
        if abs(self.amount_fen) > MAX_AMOUNT_FEN:
            raise InvalidRequest(
                "amount does not fit in 64 bits", code="amount_too_large", param="amount"
            )

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def of_yuan(cls, text: str, currency: str) -> Money:
        """Parse a major-unit decimal string exactly: "12.34" CNY → 1234 fen.

        Accepts an optional leading "-", ASCII digits and at most the currency's number of
        decimal places; no exponent, sign "+", spaces, separators or floats.
        """
        if not isinstance(text, str):
            raise TypeError(f"amount text must be a str, got {type(text).__name__}")
        places = minor_units(currency)
        # With no minor unit the decimals group is an always-empty "()", so group 3 exists.
        fraction = rf"(?:\.([0-9]{{1,{places}}}))?" if places else "()"
        too_long = len(text) > _MAX_AMOUNT_TEXT_LENGTH
        match = None if too_long else re.fullmatch(rf"(-?)([0-9]+){fraction}", text)
        if match is None:
            raise InvalidRequest(
                f"amount {text[:_MAX_AMOUNT_TEXT_LENGTH]!r} is not a decimal "
                f"with at most {places} decimal places",
                code="invalid_amount",
                param="amount",
            )
        sign, whole, decimals = match.group(1), match.group(2), match.group(3) or ""
        amount_fen = int(whole + decimals.ljust(places, "0"))
        return cls(-amount_fen if sign else amount_fen, currency)

    def format_yuan(self) -> str:
        """The major-unit decimal string: "12.34", "-0.05", "0.00"; "1234" for JPY."""
        places = MINOR_UNITS[self.currency]
        sign = "-" if self.amount_fen < 0 else ""
        digits = str(abs(self.amount_fen)).rjust(places + 1, "0")
        if not places:
            return sign + digits
        return f"{sign}{digits[:-places]}.{digits[-places:]}"

    def __str__(self) -> str:
        return f"{self.format_yuan()} {self.currency}"

    @property
    def is_zero(self) -> bool:
        return self.amount_fen == 0

    @property
    def is_positive(self) -> bool:
        return self.amount_fen > 0

    @property
    def is_negative(self) -> bool:
        return self.amount_fen < 0

    def _same_currency(self, other: object) -> Money:
        # Checked at run time too: callers outside mypy's view (templates, tests) must fail
        # loudly on Money + 1, not produce a number.
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if self.currency != other.currency:
            raise CurrencyMismatch(
                f"cannot combine {self.currency} with {other.currency}", param="currency"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount_fen + self._same_currency(other).amount_fen, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount_fen - self._same_currency(other).amount_fen, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_fen, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount_fen), self.currency)

    def __mul__(self, factor: int) -> Money:
        # Only whole multiples: a fractional factor is a rate and must go through the one
        # rounding rule in apply_rate_bp.
        return Money(self.amount_fen * _require_int(factor, "factor"), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount_fen < self._same_currency(other).amount_fen

    def __le__(self, other: Money) -> bool:
        return self.amount_fen <= self._same_currency(other).amount_fen

    def __gt__(self, other: Money) -> bool:
        return self.amount_fen > self._same_currency(other).amount_fen

    def __ge__(self, other: Money) -> bool:
        return self.amount_fen >= self._same_currency(other).amount_fen


def sum_money(amounts: Iterable[Money], currency: str) -> Money:
    """The total of `amounts`; the currency is explicit so an empty total is well defined."""
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total


# --- allocation (分摊) -------------------------------------------------------------------


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights` by largest remainder (Hamilton's method).

    Each part is its exact share rounded down (towards zero) or up, never further than one
    unit away; the leftover units go to the largest fractional remainders, the earlier index
    winning a tie, so the parts always sum to `total` and a zero weight always gets 0.
    A negative total is allocated as the negation of the positive one:
    `allocate(-t, w) == [-p for p in allocate(t, w)]`, so a refund unwinds a split exactly.
    """
    _require_int(total, "total")
    for weight in weights:
        _require_int(weight, "weight")
    if any(weight < 0 for weight in weights):
        raise InvalidRequest("weights must not be negative", param="weights")
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise InvalidRequest("weights must have a positive sum", param="weights")
    if total < 0:
        return [-part for part in allocate(-total, weights)]
    shares = [divmod(total * weight, weight_sum) for weight in weights]
    parts = [quotient for quotient, _ in shares]
    leftover = total - sum(parts)
    # Stable sort on remainder alone keeps earlier indexes first among equal remainders.
    by_remainder = sorted(range(len(shares)), key=lambda index: -shares[index][1])
    for index in by_remainder[:leftover]:
        parts[index] += 1
    return parts


def split_evenly(total: int, n: int) -> list[int]:
    """`total` in `n` parts differing by at most one unit, larger parts first."""
    _require_int(n, "n")
    if n < 1:
        raise InvalidRequest("cannot split into fewer than one part", param="n")
    return allocate(total, [1] * n)


def allocate_money(total: Money, weights: Sequence[int]) -> list[Money]:
    """`allocate` for Money: parts in the same currency summing exactly to `total`."""
    return [Money(part, total.currency) for part in allocate(total.amount_fen, weights)]


# --- basis-point rates (费率) --------------------------------------------------------------

RateBp: TypeAlias = int | Decimal | str
"""A rate in basis points: 38 or "38" is 0.38 %; "0.6" is 0.006 %."""

BASIS_POINTS_PER_UNIT = 10_000
MAX_RATE_BP = 10_000  # 100 %: nothing we charge or pay is more than the amount itself
RATE_BP_DECIMAL_PLACES = 6  # a millionth of a basis point is finer than any published tariff
_RATE_PATTERN = re.compile(rf"[0-9]{{1,5}}(?:\.[0-9]{{1,{RATE_BP_DECIMAL_PLACES}}})?")
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_BP_DECIMAL_PLACES)
# 19 amount digits x 11 rate digits fit easily; Inexact is trapped so a lost digit raises.
_EXACT = Context(prec=60, traps=[InvalidOperation, Inexact, Overflow, DivisionByZero])
_ROUNDING_CONTEXT = Context(prec=60, traps=[InvalidOperation, Overflow, DivisionByZero])
_ROUNDING_MODES = frozenset(
    {
        ROUND_HALF_UP,
        ROUND_HALF_EVEN,
        ROUND_HALF_DOWN,
        ROUND_UP,
        ROUND_DOWN,
        ROUND_CEILING,
        ROUND_FLOOR,
        ROUND_05UP,
    }
)


def _invalid_rate(rate_bp: object) -> InvalidRequest:
    return InvalidRequest(
        f"rate {rate_bp!r} must be a basis-point number from 0 to {MAX_RATE_BP} "
        f"with at most {RATE_BP_DECIMAL_PLACES} decimal places",
        code="invalid_rate",
        param="rate_bp",
    )


def parse_rate_bp(rate_bp: RateBp) -> Decimal:
    """Validate a basis-point rate and return it as an exact Decimal."""
    if isinstance(rate_bp, bool) or not isinstance(rate_bp, int | Decimal | str):
        raise TypeError(f"rate_bp must be int, Decimal or str, got {type(rate_bp).__name__}")
    if isinstance(rate_bp, str):
        if not _RATE_PATTERN.fullmatch(rate_bp):
            raise _invalid_rate(rate_bp)
        rate = Decimal(rate_bp)
    else:
        rate = Decimal(rate_bp)
    if not rate.is_finite() or not 0 <= rate <= MAX_RATE_BP:
        raise _invalid_rate(rate_bp)
    if rate.quantize(_RATE_QUANTUM, context=_ROUNDING_CONTEXT) != rate:
        raise _invalid_rate(rate_bp)
    return rate


def apply_rate_bp(amount_fen: int, rate_bp: RateBp, *, rounding: str = ROUND_HALF_UP) -> int:
    """The fee line `amount_fen x rate_bp / 10000`, computed exactly and rounded once.

    `rounding` is the platform rule ROUND_HALF_UP; override it only to mirror a third
    party's published rule (checking a channel's bill), never for our own fees.
    """
    _require_int(amount_fen, "amount_fen")
    if rounding not in _ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {rounding!r}")
    rate = parse_rate_bp(rate_bp)
    exact = _EXACT.multiply(Decimal(amount_fen), rate.scaleb(-4, context=_EXACT))
    return int(exact.quantize(Decimal(1), rounding=rounding, context=_ROUNDING_CONTEXT))


def clamp_fee(fee_fen: int, *, min_fen: int = 0, max_fen: int | None = None) -> int:
    """Hold a computed fee between a fee plan's minimum and maximum (保底/封顶).

    Only charges are clamped: a fee returned on a refund is derived from the fee actually
    charged (see `allocate`), because re-clamping the return would not undo the charge.
    """
    _require_int(fee_fen, "fee_fen")
    _require_int(min_fen, "min_fen")
    if fee_fen < 0:
        raise ValueError("clamp_fee clamps charges; derive a fee return from the charged fee")
    if min_fen < 0:
        raise InvalidRequest("minimum fee must not be negative", param="min_fen")
    if max_fen is None:
        return max(fee_fen, min_fen)
    _require_int(max_fen, "max_fen")
    if max_fen < min_fen:
        raise InvalidRequest("maximum fee is below the minimum fee", param="max_fen")
    return min(max(fee_fen, min_fen), max_fen)
