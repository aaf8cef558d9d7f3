"""What the console's forms carry once parsed (the pages are HTML; these are their inputs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RefundForm:
    order_id: str
    amount_fen: int
    reason: str | None
    form_nonce: str  # the form's one-time value: a double submit is one refund
