from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.errors import CurrencyMismatch, InvalidRequest
from cloudpay.kernel.money import (
    MAX_AMOUNT_FEN,
    MINOR_UNITS,
    Money,
    allocate,
    allocate_money,
    apply_rate_bp,
    clamp_fee,
    minor_units,
    parse_rate_bp,
    split_evenly,
    sum_money,
)

amounts = st.integers(min_value=-MAX_AMOUNT_FEN, max_value=MAX_AMOUNT_FEN)
currencies = st.sampled_from(sorted(MINOR_UNITS))
weight_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30).filter(
    lambda weights: sum(weights) > 0
)


# --- Money ------------------------------------------------------------------------------


def test_money_holds_integer_minor_units_and_currency() -> None:
    """A Money is an exact value object: equal fields are equal, hashable and immutable."""
    price = Money(1234, "CNY")
    assert price == Money(1234, "CNY")
    assert hash(price) == hash(Money(1234, "CNY"))
    assert price != Money(1234, "HKD")
    with pytest.raises(AttributeError):
        price.amount_fen = 1  # type: ignore[misc]


@pytest.mark.parametrize("amount", [12.34, 12.0, Decimal("12"), True, "12"])
def test_money_refuses_non_integer_amounts(amount: object) -> None:
    """Floats, Decimals, bools and strings are programmer errors, never amounts."""
    with pytest.raises(TypeError):
        Money(amount, "CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["cny", "CN", "CNYY", "C1Y", "", " CNY"])
def test_money_refuses_malformed_currency_codes(currency: str) -> None:
    """A currency must be three upper-case ISO 4217 letters."""
    with pytest.raises(InvalidRequest) as caught:
        Money(1, currency)
    assert caught.value.code == "invalid_currency"


def test_money_refuses_currencies_without_a_known_minor_unit() -> None:
    """A well-formed but unlisted code is refused rather than formatted with a guessed exponent."""
    with pytest.raises(InvalidRequest) as caught:
        Money(1, "XYZ")
    assert caught.value.code == "unsupported_currency"


def test_money_refuses_amounts_beyond_64_bits() -> None:
    """An amount that would overflow a BIGINT column is a 400, not a database error."""
    Money(MAX_AMOUNT_FEN, "CNY")
    with pytest.raises(InvalidRequest):
        Money(MAX_AMOUNT_FEN + 1, "CNY")
    with pytest.raises(InvalidRequest):
        Money(MAX_AMOUNT_FEN, "CNY") + Money(1, "CNY")


def test_minor_units_table_covers_the_platform_currencies() -> None:
    """CNY, HKD, USD, EUR have 2 decimal places; JPY and KRW have none."""
    assert [minor_units(c) for c in ("CNY", "HKD", "USD", "EUR", "JPY", "KRW")] == [
        2,
        2,
        2,
        2,
        0,
        0,
    ]


def test_arithmetic_in_one_currency() -> None:
    """Addition, subtraction, negation, abs and integer multiples are exact."""
    a, b = Money(1000, "CNY"), Money(1, "CNY")
    assert a + b == Money(1001, "CNY")
    assert a - b == Money(999, "CNY")
    assert -a == Money(-1000, "CNY")
    assert abs(Money(-5, "CNY")) == Money(5, "CNY")
    assert a * 3 == 3 * a == Money(3000, "CNY")


@pytest.mark.parametrize("factor", [1.5, Decimal("2"), True, Fraction(1, 2)])
def test_multiplication_accepts_only_whole_numbers(factor: object) -> None:
    """A fractional factor is a rate and must go through apply_rate_bp's one rounding rule."""
    with pytest.raises(TypeError):
        Money(100, "CNY") * factor  # type: ignore[operator]


def test_mixed_currencies_are_refused_in_arithmetic_and_ordering() -> None:
    """Every operation across currencies raises CurrencyMismatch instead of guessing a rate."""
    cny, usd = Money(100, "CNY"), Money(100, "USD")
    operations: list[Callable[[], object]] = [
        lambda: cny + usd,
        lambda: cny - usd,
        lambda: cny < usd,
        lambda: cny <= usd,
        lambda: cny > usd,
        lambda: cny >= usd,
        lambda: sum_money([cny, usd], "CNY"),
    ]
    for operation in operations:
        with pytest.raises(CurrencyMismatch):
            operation()


def test_adding_a_plain_number_is_a_type_error() -> None:
    """Money + int is refused, so sum() without a start value cannot silently work."""
    with pytest.raises(TypeError):
        Money(1, "CNY") + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        sum([Money(1, "CNY")])  # type: ignore[list-item]


def test_ordering_and_sign_predicates() -> None:
    """Comparisons order by amount within a currency, and the sign predicates agree."""
    assert Money(1, "CNY") < Money(2, "CNY") <= Money(2, "CNY")
    assert max(Money(3, "CNY"), Money(-4, "CNY")) == Money(3, "CNY")
    assert Money(1, "CNY").is_positive
    assert not Money(1, "CNY").is_negative
    assert Money(-1, "CNY").is_negative
    assert Money.zero("CNY").is_zero
    assert not Money.zero("CNY").is_positive


def test_sum_money_of_nothing_is_zero_in_the_given_currency() -> None:
    """An empty total still has a currency."""
    assert sum_money([], "JPY") == Money(0, "JPY")
    assert sum_money([Money(1, "JPY"), Money(2, "JPY")], "JPY") == Money(3, "JPY")


@pytest.mark.parametrize(
    ("text", "currency", "amount_fen"),
    [
        ("12.34", "CNY", 1234),
        ("12.3", "CNY", 1230),
        ("12", "CNY", 1200),
        ("0.05", "CNY", 5),
        ("-0.05", "CNY", -5),
        ("-0.00", "CNY", 0),
        ("1234", "JPY", 1234),
        ("1.234", "KWD", 1234),
    ],
)
def test_of_yuan_parses_decimal_strings_exactly(text: str, currency: str, amount_fen: int) -> None:
    """Major-unit strings become exact minor units using the currency's exponent."""
    assert Money.of_yuan(text, currency) == Money(amount_fen, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("12.345", "CNY"),
        ("12.340", "CNY"),
        ("12.5", "JPY"),
        ("1e3", "CNY"),
        ("+1", "CNY"),
        (" 1", "CNY"),
        ("1.", "CNY"),
        (".5", "CNY"),
        ("1,000", "CNY"),
        ("1_000", "CNY"),
        ("NaN", "CNY"),
        ("Infinity", "CNY"),
        ("", "CNY"),
        ("١٢", "CNY"),
        ("9" * 40, "CNY"),
    ],
)
def test_of_yuan_refuses_inexact_or_malformed_text(text: str, currency: str) -> None:
    """More decimals than the currency has, exponents, signs, separators and junk are refused."""
    with pytest.raises(InvalidRequest) as caught:
        Money.of_yuan(text, currency)
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize("value", [12.34, Decimal("12.34"), 1234])
def test_of_yuan_refuses_non_strings(value: object) -> None:
    """Only text is parsed: a float has already lost the exact amount."""
    with pytest.raises(TypeError):
        Money.of_yuan(value, "CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1234, "CNY"), "12.34"),
        (Money(-5, "CNY"), "-0.05"),
        (Money(0, "CNY"), "0.00"),
        (Money(100, "USD"), "1.00"),
        (Money(-1234, "JPY"), "-1234"),
        (Money(5, "KWD"), "0.005"),
    ],
)
def test_format_yuan(money: Money, text: str) -> None:
    """Formatting pads to the currency's decimal places and keeps the sign of small negatives."""
    assert money.format_yuan() == text
    assert str(money) == f"{text} {money.currency}"


@given(amount_fen=amounts, currency=currencies)
def test_format_then_parse_round_trips(amount_fen: int, currency: str) -> None:
    """Parsing the formatted text of any Money gives back the same Money."""
    money = Money(amount_fen, currency)
    assert Money.of_yuan(money.format_yuan(), currency) == money


@given(amount_fen=amounts)
def test_format_agrees_with_decimal_arithmetic(amount_fen: int) -> None:
    """The formatted CNY text is exactly the amount divided by 100."""
    assert Decimal(Money(amount_fen, "CNY").format_yuan()) == Decimal(amount_fen) / 100


# --- allocation -------------------------------------------------------------------------


@given(total=st.integers(min_value=-(10**15), max_value=10**15), weights=weight_lists)
def test_allocation_sums_to_total_and_stays_within_one_of_each_share(
    total: int, weights: list[int]
) -> None:
    """Largest remainder parts always sum to the whole and are each less than 1 from exact."""
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, sum(weights))) < 1
        if weight == 0:
            assert part == 0


@given(total=st.integers(min_value=0, max_value=10**15), weights=weight_lists)
def test_allocation_of_a_negative_total_mirrors_the_positive_one(
    total: int, weights: list[int]
) -> None:
    """Unwinding a split (a refund) gives exactly the negated parts of the original split."""
    assert allocate(-total, weights) == [-part for part in allocate(total, weights)]


def test_allocation_ties_go_to_the_earlier_index() -> None:
    """Equal remainders are broken deterministically in favour of the earlier weight."""
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]


def test_allocation_gives_leftovers_to_the_largest_remainders() -> None:
    """Hamilton's method favours the largest fractional remainder, not the largest weight."""
    # exact shares 0.3, 0.3, 0.4 of 1 fen → the third gets it
    assert allocate(1, [3, 3, 4]) == [0, 0, 1]
    # exact shares 6.0, 1.5, 2.5 → remainders .0 .5 .5, one leftover to index 1
    assert allocate(10, [60, 15, 25]) == [6, 2, 2]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [-1, -1]])
def test_allocation_refuses_weights_without_a_positive_sum_or_with_negatives(
    weights: list[int],
) -> None:
    """Weights must be non-negative and sum to something positive."""
    with pytest.raises(InvalidRequest):
        allocate(100, weights)


@pytest.mark.parametrize(("total", "weights"), [(1.0, [1]), (1, [0.5, 0.5]), (1, [True])])
def test_allocation_refuses_non_integers(total: object, weights: list[object]) -> None:
    """Floats and bools in an allocation are programmer errors."""
    with pytest.raises(TypeError):
        allocate(total, weights)  # type: ignore[arg-type]


def test_split_evenly() -> None:
    """An even split differs by at most one fen, larger parts first, and refuses n < 1."""
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(-10, 3) == [-4, -3, -3]
    assert split_evenly(2, 4) == [1, 1, 0, 0]
    with pytest.raises(InvalidRequest):
        split_evenly(10, 0)


def test_allocate_money_keeps_the_currency_and_the_total() -> None:
    """Money allocation returns Money parts in the same currency that add back up."""
    parts = allocate_money(Money(1001, "HKD"), [1, 1])
    assert parts == [Money(501, "HKD"), Money(500, "HKD")]
    assert sum_money(parts, "HKD") == Money(1001, "HKD")


# --- rates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_fen", "rate_bp", "fee_fen"),
    [
        (10000, 38, 38),  # 100.00 yuan at 0.38 % is exactly 0.38 yuan
        (1500, "38", 6),  # 5.7 → 6
        (1310, 38, 5),  # 4.978 → 5
        (12500, 40, 50),  # 50.0 exactly
        (1250, 4, 1),  # 0.5 → 1: a half rounds away from zero
        (3750, 4, 2),  # 1.5 → 2
        (6250, 4, 3),  # 2.5 → 3 (banker's rounding would give 2)
        (1249, 4, 0),  # 0.4996 → 0
        (-1250, 4, -1),  # refund fee return: -0.5 → -1
        (-6250, 4, -3),  # -2.5 → -3
        (-1500, 38, -6),  # -5.7 → -6
        (-1310, 38, -5),  # -4.978 → -5
        (0, 60, 0),
        (10000, 0, 0),
        (12345, 10_000, 12345),  # 100 %
    ],
)
def test_apply_rate_rounds_half_up_once(amount_fen: int, rate_bp: int | str, fee_fen: int) -> None:
    """A fee line is the exact product rounded once, halves away from zero, for refunds too."""
    assert apply_rate_bp(amount_fen, rate_bp) == fee_fen


@pytest.mark.parametrize(
    ("amount_fen", "rate_bp", "fee_fen"),
    [
        (10000, Decimal("0.6"), 1),  # 0.6 fen → 1
        (10000, "0.6", 1),
        (25000, "0.2", 1),  # 0.5 fen → 1
        (-25000, "0.2", -1),
        (1_000_000, "38.5", 3850),
        (33, "33.333333", 0),  # 0.10999… fen
        (1, "5000", 1),  # 0.5 → 1
    ],
)
def test_apply_rate_supports_fractional_basis_points(
    amount_fen: int, rate_bp: Decimal | str, fee_fen: int
) -> None:
    """Fractional basis points given as Decimal or text are applied exactly."""
    assert apply_rate_bp(amount_fen, rate_bp) == fee_fen


def test_apply_rate_rounds_only_once() -> None:
    """The exact product is rounded, not a pre-rounded intermediate (0.4445 fen → 0, not 1)."""
    # Rounding to 0.001 first would give 0.445 → 0.45 → 0.5 → 1; the rule gives 0.
    assert apply_rate_bp(1, "4445") == 0
    assert apply_rate_bp(10**18, "0.000001") == 10**8


def test_apply_rate_rounding_override_for_mirroring_a_third_party() -> None:
    """Another Decimal rounding mode can be chosen explicitly; the default stays half-up."""
    assert apply_rate_bp(6250, 4) == 3
    assert apply_rate_bp(6250, 4, rounding=ROUND_HALF_EVEN) == 2
    assert apply_rate_bp(199, 100, rounding=ROUND_DOWN) == 1
    with pytest.raises(ValueError, match="rounding"):
        apply_rate_bp(100, 4, rounding="ROUND_SOMETIMES")


@given(amount_fen=amounts, rate=st.decimals(min_value=0, max_value=10_000, places=6))
def test_apply_rate_is_symmetric_and_within_half_a_unit(amount_fen: int, rate: Decimal) -> None:
    """For any amount and rate the fee is within half a fen of exact, and a refund mirrors it."""
    fee_fen = apply_rate_bp(amount_fen, rate)
    exact = Fraction(amount_fen) * Fraction(rate) / 10_000
    assert abs(fee_fen - exact) <= Fraction(1, 2)
    assert apply_rate_bp(-amount_fen, rate) == -fee_fen


@pytest.mark.parametrize(
    "rate_bp",
    [-1, "-1", 10_001, "1e2", "NaN", Decimal("NaN"), Decimal("Infinity"), "0.0000001", " 38", ""],
)
def test_apply_rate_refuses_rates_out_of_range_or_malformed(rate_bp: object) -> None:
    """Negative, above 100 %, non-finite, too fine or malformed rates are refused."""
    with pytest.raises(InvalidRequest) as caught:
        apply_rate_bp(100, rate_bp)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_rate"


@pytest.mark.parametrize(("amount_fen", "rate_bp"), [(100.0, 38), (100, 0.38), (100, True)])
def test_apply_rate_refuses_floats(amount_fen: object, rate_bp: object) -> None:
    """A float amount or rate is a programmer error."""
    with pytest.raises(TypeError):
        apply_rate_bp(amount_fen, rate_bp)  # type: ignore[arg-type]


def test_parse_rate_bp_normalises_to_exact_decimals() -> None:
    """Ints, Decimals and text rates all become the same exact Decimal."""
    assert parse_rate_bp(38) == parse_rate_bp("38") == parse_rate_bp(Decimal("38.000")) == 38
    assert parse_rate_bp("0.6") == Decimal("0.6")


def test_clamp_fee_applies_minimum_and_maximum() -> None:
    """A computed fee is raised to the plan's minimum and capped at its maximum."""
    assert clamp_fee(0, min_fen=1) == 1
    assert clamp_fee(38, min_fen=1, max_fen=2500) == 38
    assert clamp_fee(9000, min_fen=1, max_fen=2500) == 2500
    assert clamp_fee(9000) == 9000


def test_clamp_fee_refuses_inconsistent_limits_and_fee_returns() -> None:
    """min above max and negative minimums are refused; a fee return is never re-clamped."""
    with pytest.raises(InvalidRequest):
        clamp_fee(10, min_fen=5, max_fen=4)
    with pytest.raises(InvalidRequest):
        clamp_fee(10, min_fen=-1)
    with pytest.raises(ValueError, match="fee return"):
        clamp_fee(-1, min_fen=1)
