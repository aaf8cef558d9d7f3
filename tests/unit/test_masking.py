from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.masking import (
    COMPOUND_SURNAMES,
    MASK,
    Secret,
    mask_card_number,
    mask_email,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_secret,
)

MASKERS: list[Callable[[str | None], str]] = [
    mask_id_number,
    mask_phone,
    mask_card_number,
    mask_name,
    mask_email,
    mask_secret,
]
id_numbers = st.from_regex(r"\A[1-9][0-9]{16}[0-9X]\Z")
phones = st.from_regex(r"\A1[3-9][0-9]{9}\Z")
card_numbers = st.from_regex(r"\A[0-9]{14,19}\Z")


def test_examples_look_as_operators_expect() -> None:
    """Each masker gives the familiar Chinese display format."""
    assert mask_id_number("110101199003071234") == "110***********1234"
    assert mask_id_number("11010119900307123X") == "110***********123X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_card_number("6222021234567890123") == "622202*********0123"
    assert mask_name("张三") == "张*"
    assert mask_name("张三丰") == "张**"
    assert mask_name("欧阳娜娜") == "欧阳**"
    assert mask_name("欧阳") == "欧*"
    assert mask_email("zhangsan@example.com") == "z*******@example.com"
    assert mask_email("a@example.com") == "*@example.com"
    assert mask_secret("sk_live_0123456789abcdef") == MASK + "cdef"


@pytest.mark.parametrize("masker", MASKERS)
@pytest.mark.parametrize("value", [None, "", "1", "张", "@", "a@", "@b", "  ", "1234567"])
def test_maskers_are_total_on_empty_and_short_input(
    masker: Callable[[str | None], str], value: str | None
) -> None:
    """Empty, None and tiny inputs never raise and never come back unmasked."""
    masked = masker(value)
    assert isinstance(masked, str)
    if value and value.strip("@"):
        assert masked != value


@given(st.one_of(st.none(), st.text()))
def test_maskers_never_raise_on_any_text(value: str | None) -> None:
    """Any string at all, including control and astral characters, is masked without error."""
    for masker in MASKERS:
        assert isinstance(masker(value), str)


@given(id_numbers)
def test_id_number_mask_keeps_length_and_hides_the_birth_date(value: str) -> None:
    """An ID keeps its length, its first 3 and last 4, and shows none of the 11 in between."""
    masked = mask_id_number(value)
    assert len(masked) == len(value)
    assert masked[:3] == value[:3]
    assert masked[-4:] == value[-4:]
    assert masked[3:-4] == "*" * 11
    assert value[3:-4] not in masked


@given(phones)
def test_phone_mask_shows_only_prefix_and_last_four(value: str) -> None:
    """A mobile number keeps length, carrier prefix and last 4; the middle 4 are stars."""
    masked = mask_phone(value)
    assert len(masked) == 11
    assert masked == value[:3] + "****" + value[-4:]


@given(card_numbers)
def test_card_mask_keeps_length_bin_and_last_four(value: str) -> None:
    """A card keeps its length, first 6 and last 4; every digit between is a star."""
    masked = mask_card_number(value)
    assert len(masked) == len(value)
    assert masked[:6] == value[:6]
    assert masked[-4:] == value[-4:]
    assert set(masked[6:-4]) == {"*"}


def test_values_too_short_to_hide_four_characters_are_hidden_whole() -> None:
    """A 13-digit card or a 10-digit phone would show all but 3: they are fully masked."""
    assert mask_card_number("4123456789012") == "*" * 13
    assert mask_phone("1381234567") == "*" * 10
    assert mask_id_number("1101011990") == "*" * 10


@given(st.text(min_size=1, max_size=30))
def test_end_keeping_masks_never_show_more_than_their_ends(value: str) -> None:
    """For any text, at most head + tail characters survive, and at least 4 are hidden."""
    for masker, head, tail in ((mask_id_number, 3, 4), (mask_card_number, 6, 4)):
        masked = masker(value)
        assert len(masked) == len(value)
        shown = sum(1 for a, b in zip(masked, value, strict=True) if a == b and a != "*")
        assert shown <= head + tail
        assert masked.count("*") >= min(len(value), 4)


@given(st.text(min_size=1, max_size=40))
def test_name_mask_shows_at_most_the_surname(value: str) -> None:
    """A masked name keeps its length and reveals at most its first two characters."""
    masked = mask_name(value)
    assert len(masked) == len(value)
    assert set(masked[2:]) <= {"*"}
    if len(value) <= 2 or value[:2] not in COMPOUND_SURNAMES:
        assert set(masked[1:]) <= {"*"}


@given(st.text(max_size=40))
def test_secret_mask_shows_at_most_a_quarter_of_the_secret(value: str) -> None:
    """A secret shows nothing when short, only its last 4 when at least 16 long."""
    masked = mask_secret(value)
    assert masked.startswith(MASK) or masked == ""
    assert len(masked) - len(MASK) <= max(0, len(value) // 4)


@given(st.emails())
def test_email_mask_hides_the_mailbox_but_keeps_the_domain(value: str) -> None:
    """An e-mail keeps its domain and at most the mailbox's first character."""
    masked = mask_email(value)
    local, _, domain = value.rpartition("@")
    assert masked.endswith("@" + domain)
    masked_local = masked[: -len(domain) - 1]
    assert len(masked_local) == len(local)
    assert set(masked_local[1:]) <= {"*"}


def test_secret_never_prints_its_value() -> None:
    """str, repr, f-strings and %-formatting of a Secret show only the mask."""
    secret = Secret("hunter2-password")
    for text in (str(secret), repr(secret), f"{secret}", f"{secret!r}", format(secret, ">20")):
        assert "hunter2" not in text
        assert MASK in text
    assert "hunter2" not in repr({"password": secret})
    assert secret.reveal() == "hunter2-password"


def test_secret_compares_by_value_and_type() -> None:
    """Equal values are equal secrets (usable as dict keys); str and bytes never match."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret(b"a") != Secret("a")
    assert Secret("a") != "a"
    assert len({Secret("a"), Secret("a")}) == 1
