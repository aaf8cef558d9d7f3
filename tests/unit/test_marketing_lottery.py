"""The lottery draw, pure: reproducible from its seed, independent of registration order, and
unbiased enough that every entrant's chance is the same."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.marketing.model import draw_winners

PEOPLE = [f"ctz_{n:026d}" for n in range(50)]


def test_the_same_seed_draws_the_same_winners_in_any_registration_order() -> None:
    """A published seed and the entrant list are all it takes to re-run the draw."""
    first = draw_winners(PEOPLE, 10, seed="2026-lottery-1")
    assert draw_winners(list(reversed(PEOPLE)), 10, seed="2026-lottery-1") == first
    assert draw_winners(PEOPLE, 10, seed="2026-lottery-2") != first


def test_the_draw_is_pinned_to_sha_256() -> None:
    """The ranking is SHA-256 of `seed:entrant` (so an auditor can recompute it by hand)."""
    ranked = sorted(PEOPLE, key=lambda p: hashlib.sha256(f"s:{p}".encode()).hexdigest())
    assert draw_winners(PEOPLE, 3, seed="s") == ranked[:3]


@given(st.lists(st.text(min_size=1, max_size=8), max_size=40), st.integers(0, 50), st.text())
def test_exactly_min_of_winners_and_entrants_distinct_entrants_win(
    entrants: list[str], winners: int, seed: str
) -> None:
    """No more winners than asked or than entrants; each a distinct entrant."""
    drawn = draw_winners(entrants, winners, seed=seed)
    assert len(drawn) == min(winners, len(set(entrants)))
    assert len(set(drawn)) == len(drawn)
    assert set(drawn) <= set(entrants)


def test_every_entrant_has_the_same_chance() -> None:
    """Over 2,000 draws of 10 from 50, each entrant wins about 400 times (±25 %)."""
    wins: Counter[str] = Counter()
    for draw in range(2_000):
        wins.update(draw_winners(PEOPLE, 10, seed=f"seed-{draw}"))
    assert min(wins.values()) > 300
    assert max(wins.values()) < 500


def test_a_negative_number_of_winners_is_a_bug() -> None:
    """A caller asking for fewer than zero winners has a bug: it fails loudly."""
    with pytest.raises(ValueError, match="negative"):
        draw_winners(PEOPLE, -1, seed="s")
