"""The order-side rules of discounts, without a database: what an order stores and answers
for a discount, and the requests refused before any instrument is looked at."""

from __future__ import annotations

from typing import Any

import pytest

from cloudpay.kernel.errors import InvalidRequest
from cloudpay.payments.discounts import Applied, DiscountAsk, apply_discount

LINE = {"claim_id": "clm_1", "campaign_id": "cmp_1", "kind": "voucher", "amount": 1_000}


def _ask(**changes: Any) -> DiscountAsk:
    fields: dict[str, Any] = {"citizen_id": None, "payer_id": None, "claim_ids": None,
                              "mode": "auto", "channel": "wechat", "micropay": False}  # fmt: skip
    fields.update(changes)
    return DiscountAsk(**fields)


def test_an_order_without_a_discount_keeps_its_price_as_the_channel_amount() -> None:
    """No instrument applied: the channel is asked for the price and nothing else is stored."""
    assert Applied(5_000).order_columns() == {"amount": 5_000}
    assert (Applied(5_000).discount_fen, Applied(5_000).payer_fen) == (0, 5_000)


def test_a_discounted_order_stores_price_discount_and_breakdown() -> None:
    """Two lines of 1,000 off 5,000: the channel is asked for 3,000; price and breakdown kept."""
    applied = Applied(5_000, (LINE, {**LINE, "claim_id": "clm_2"}))
    assert applied.order_columns() == {
        "amount": 3_000, "gross_amount": 5_000, "discount_amount": 2_000,
        "discounts": [LINE, {**LINE, "claim_id": "clm_2"}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "code", "param"),
    [
        ({"mode": "none", "claim_ids": ("clm_1",)}, "parameter_invalid", "claim_ids"),
        ({"mode": "sometimes"}, "parameter_invalid", "discount"),
        ({"micropay": True, "citizen_id": "ctz_1"}, "discount_unavailable", "citizen_id"),
        ({"micropay": True, "claim_ids": ("clm_1",)}, "discount_unavailable", "claim_ids"),
    ],
)
def test_contradictory_requests_are_refused_before_anything_is_read(
    changes: dict[str, Any], code: str, param: str
) -> None:
    """Each is a 400 naming its field, raised before the unit of work is touched (None here)."""
    with pytest.raises(InvalidRequest) as refused:
        apply_discount(None, order_id="ord_1", ask=_ask(**changes), merchant_id="mch_1",  # type: ignore[arg-type]
                       amount_fen=5_000, currency="CNY")  # fmt: skip
    assert (refused.value.code, refused.value.param) == (code, param)


@pytest.mark.parametrize("changes", [{"mode": "none"}, {"micropay": True}])
def test_no_discount_asked_or_possible_reads_nothing(changes: dict[str, Any]) -> None:
    """`discount: none` and a payment code take the price as it is, without a lookup."""
    applied = apply_discount(None, order_id="ord_1", ask=_ask(payer_id="o1", **changes),  # type: ignore[arg-type]
                             merchant_id="mch_1", amount_fen=5_000, currency="CNY")  # fmt: skip
    assert applied == Applied(5_000)
