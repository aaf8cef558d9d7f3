"""Masking of personal data for responses and logs (PIPL), and a `Secret` holder.

Every function is total: any string (or None) in, a masked string out, never an exception.
When a value is too short to show its ends and still hide at least `MIN_HIDDEN_CHARS`
characters, nothing of it is shown: a malformed value must not leak more than a good one.
"""

from __future__ import annotations

import hmac
from typing import Generic, TypeVar

MASK = "**********"
MASK_CHAR = "*"
# Fewer hidden characters than this and the ends would give the value away.
MIN_HIDDEN_CHARS = 4
# A secret shows its tail only when the tail is at most a quarter of it.
SECRET_MIN_LENGTH_TO_SHOW_TAIL = 16
SECRET_VISIBLE_TAIL = 4

# 复姓: compound surnames kept whole, so `欧阳娜娜` → `欧阳**` as people expect.
COMPOUND_SURNAMES = frozenset(
    {
        "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "尉迟", "公孙",
        "长孙", "宇文", "司徒", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "百里",
        "呼延", "钟离", "澹台", "公冶", "太史", "申屠", "赫连", "拓跋", "万俟", "闻人",
    }
)  # fmt: skip

T = TypeVar("T", str, bytes)


class Secret(Generic[T]):
    """A value that prints as `**********`; call `.reveal()` where it is really needed."""

    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        # f"{secret}" must not reach the wrapped value through str.__format__.
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret) or type(other._value) is not type(self._value):
            return NotImplemented
        # Constant time, so comparing a presented token leaks nothing through timing.
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def _keep_ends(value: str | None, *, head: int, tail: int) -> str:
    """Show `head` and `tail` characters, one `*` for each hidden one (length kept)."""
    if not value:
        return ""
    hidden = len(value) - head - tail
    if hidden < MIN_HIDDEN_CHARS:
        return MASK_CHAR * len(value)
    return value[:head] + MASK_CHAR * hidden + value[len(value) - tail :]


def mask_id_number(value: str | None) -> str:
    """Resident ID (身份证号): `110***********1234`."""
    return _keep_ends(value, head=3, tail=4)


def mask_phone(value: str | None) -> str:
    """Mobile number: `138****5678`."""
    return _keep_ends(value, head=3, tail=4)


def mask_card_number(value: str | None) -> str:
    """Bank card number: first 6 (the issuer's BIN) and last 4, as card schemes allow."""
    return _keep_ends(value, head=6, tail=4)


def mask_name(value: str | None) -> str:
    """Person's name: keep the surname, `张*`, `欧阳**`; a one-character name is hidden."""
    if not value:
        return ""
    kept = 2 if len(value) > 2 and value[:2] in COMPOUND_SURNAMES else 1
    if len(value) <= kept:
        return MASK_CHAR * len(value)
    return value[:kept] + MASK_CHAR * (len(value) - kept)


def mask_email(value: str | None) -> str:
    """E-mail: keep the first character of the mailbox and the domain, `z*******@example.com`."""
    if not value:
        return ""
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        return mask_secret(value)
    if len(local) == 1:
        return f"{MASK_CHAR}@{domain}"
    return f"{local[0]}{MASK_CHAR * (len(local) - 1)}@{domain}"


def mask_secret(value: str | None) -> str:
    """API keys, tokens, passwords: a fixed-width mask, plus the last 4 of a long secret."""
    if not value:
        return ""
    if len(value) < SECRET_MIN_LENGTH_TO_SHOW_TAIL:
        return MASK
    return MASK + value[-SECRET_VISIBLE_TAIL:]
