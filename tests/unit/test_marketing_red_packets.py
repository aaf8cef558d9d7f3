"""The red packet split, pure: exact sums, bounds on every share, and fairness by position."""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.marketing.errors import InvalidCampaign
from cloudpay.marketing.model import (
    MAX_RED_PACKET_PARTS,
    SplitMode,
    red_packet_transfer_id,
    split_red_packet,
)


@st.composite
def feasible_splits(draw: st.DrawFn) -> tuple[int, int, int]:
    """(total, count, max part) with count ≤ total ≤ count × max."""
    count = draw(st.integers(1, 200))
    max_part = draw(st.integers(1, 50_000))
    total = draw(st.integers(count, count * max_part))
    return total, count, max_part


@given(feasible_splits(), st.integers(0, 2**32))
def test_random_shares_sum_exactly_and_stay_within_bounds(
    split: tuple[int, int, int], seed: int
) -> None:
    """Whatever the total, count and maximum, the shares add up to the total to the fen, and
    each is at least 1 fen and at most the maximum."""
    total, count, max_part = split
    parts = split_red_packet(
        total, count, max_part_fen=max_part, mode=SplitMode.RANDOM, rng=Random(seed)
    )
    assert len(parts) == count
    assert sum(parts) == total
    assert all(1 <= part <= max_part for part in parts)


@given(st.integers(1, 500), st.integers(1, 1_000), st.integers(0, 2**32))
def test_fixed_shares_are_equal(count: int, share: int, seed: int) -> None:
    """A fixed packet gives every claimer the same share."""
    parts = split_red_packet(
        count * share, count, max_part_fen=share, mode=SplitMode.FIXED, rng=Random(seed)
    )
    assert parts == [share] * count


def test_the_same_seed_gives_the_same_split() -> None:
    """The split depends only on its inputs and the random source (reproducible in tests)."""

    def split(seed: int) -> list[int]:
        return split_red_packet(
            10_000, 20, max_part_fen=2_000, mode=SplitMode.RANDOM, rng=Random(seed)
        )

    assert split(7) == split(7)
    assert split(7) != split(8)


def _mean_share_by_position(total: int, count: int, max_part: int, trials: int) -> list[float]:
    rng = Random(20261125)
    sums = [0] * count
    for _ in range(trials):
        parts = split_red_packet(
            total, count, max_part_fen=max_part, mode=SplitMode.RANDOM, rng=rng
        )
        sums = [s + p for s, p in zip(sums, parts, strict=True)]
    return [s / trials for s in sums]


@pytest.mark.parametrize(
    ("total", "count", "max_part"),
    [(1_000, 10, 1_000), (1_000, 10, 120), (10_000, 5, 2_100)],
    ids=["loose maximum", "tight maximum (repair path)", "few large shares"],
)
def test_first_and_last_claimer_expect_the_same_share(
    total: int, count: int, max_part: int
) -> None:
    """Every claim position expects total ÷ count: the first and the last claimer are within
    5 % of it over 4,000 packets (about four standard errors), also when the maximum is tight
    enough that shares are repaired."""
    means = _mean_share_by_position(total, count, max_part, trials=4_000)
    fair = total / count
    assert means[0] == pytest.approx(fair, rel=0.05)
    assert means[-1] == pytest.approx(fair, rel=0.05)
    assert means[0] == pytest.approx(means[-1], rel=0.07)


def _double_mean(total: int, count: int, rng: Random) -> list[int]:
    """The "double mean" rule (二倍均值法), as a foil: each claimer draws from [1, 2 × the mean
    of what is left), the last takes the rest."""
    parts, left = [], total
    for remaining in range(count, 1, -1):
        share = rng.randint(1, max(1, 2 * left // remaining - 1))
        parts.append(share)
        left -= share
    return [*parts, left]


def _chance_of_a_big_share(split: list[list[int]], position: int, threshold: int) -> float:
    return sum(parts[position] >= threshold for parts in split) / len(split)


def test_first_and_last_claimer_have_the_same_chance_of_a_big_share() -> None:
    """The whole distribution is the same by position, not only the mean: a share of 2.5× the
    mean is as likely first as last — which the double mean rule fails (its first claimer can
    never get more than twice the mean), so the check has the power to catch a biased split."""
    rng = Random(11)
    ours = [
        split_red_packet(1_000, 10, max_part_fen=1_000, mode=SplitMode.RANDOM, rng=rng)
        for _ in range(4_000)
    ]
    foil = [_double_mean(1_000, 10, rng) for _ in range(4_000)]
    first, last = (_chance_of_a_big_share(ours, i, 250) for i in (0, -1))
    assert first > 0.04
    assert first == pytest.approx(last, abs=0.025)
    foil_first, foil_last = (_chance_of_a_big_share(foil, i, 250) for i in (0, -1))
    assert foil_first == 0
    assert foil_last > 0.04


def test_a_tight_maximum_still_varies_the_shares() -> None:
    """With room between the mean and the maximum, a random packet is not a fixed one."""
    parts = split_red_packet(1_000, 10, max_part_fen=120, mode=SplitMode.RANDOM, rng=Random(3))
    assert len(set(parts)) > 1


@pytest.mark.parametrize(
    ("total", "count", "max_part", "mode", "param"),
    [
        (5, 6, 10, SplitMode.RANDOM, "total_fen"),  # less than 1 fen each
        (100, 3, 30, SplitMode.RANDOM, "max_part_fen"),  # 3 × 30 < 100
        (100, 3, 50, SplitMode.FIXED, "total_fen"),  # not divisible
        (100, 0, 50, SplitMode.RANDOM, "count"),
        (10_000, MAX_RED_PACKET_PARTS + 1, 100, SplitMode.RANDOM, "count"),
        (0, 1, 50, SplitMode.RANDOM, "total_fen"),
        (100, 1, 0, SplitMode.RANDOM, "max_part_fen"),
    ],
)
def test_impossible_splits_are_refused_naming_the_field(
    total: int, count: int, max_part: int, mode: SplitMode, param: str
) -> None:
    """A split no list of shares can satisfy is refused, with the field to change."""
    with pytest.raises(InvalidCampaign) as refused:
        split_red_packet(total, count, max_part_fen=max_part, mode=mode, rng=Random(1))
    assert refused.value.param == param


def test_transfer_ids_are_derived_from_the_packet() -> None:
    """A retried movement of a packet carries the same ledger id, short enough for the ledger."""
    transfer_id = red_packet_transfer_id("rpk_" + "0" * 26, "part:1000")
    assert transfer_id == "rpk_" + "0" * 26 + ":part:1000"
    assert len(transfer_id) <= 64
