"""Wire shapes of the settlement API. Amounts are integer fen; rates are basis points given
as a string or an integer (at most 2 decimals: "38.5")."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from cloudpay.settlement.daybook import from_centi_bp
from cloudpay.settlement.model import FeePlan, RefundFeePolicy
from cloudpay.settlement.run import AccountClass, OverLimitPolicy
from cloudpay.settlement.service import ProfileInput

RATE = r"^[0-9]{1,5}(\.[0-9]{1,2})?$"
METHOD = r"^[a-z][a-z0-9_]{1,31}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FeePlanCreate(Strict):
    method: str = Field(pattern=METHOD)
    rate_bp: StrictStr | StrictInt = "0"
    fixed_fen: StrictInt | None = None
    min_fen: StrictInt = 0
    max_fen: StrictInt | None = None
    same_day_surcharge_bp: StrictStr | StrictInt = "0"
    refund_policy: RefundFeePolicy = RefundFeePolicy.PROPORTIONAL
    effective_from: AwareDatetime | None = None

    def to_plan(self) -> FeePlan:
        """Checked by the model: negative amounts, min > max, a fixed plan with a rate."""
        return FeePlan(
            str(self.rate_bp),
            self.fixed_fen,
            self.min_fen,
            self.max_fen,
            str(self.same_day_surcharge_bp),
        )


class AgentRateSet(Strict):
    cost_rate_bp: StrictStr | StrictInt


class ProfileSet(Strict):
    bank_code: str = Field(pattern=r"^[A-Za-z0-9]{2,12}$")
    account_no: str = Field(pattern=r"^[0-9A-Za-z]{6,32}$")
    account_class: AccountClass
    account_name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")
    class_i_card: str | None = Field(None, pattern=r"^[0-9]{12,19}$")
    cycle: str = Field("T+1", max_length=5)
    reserve_rate_bp: StrictStr | StrictInt = "0"
    reserve_hold_days: StrictInt = 90
    over_limit_policy: OverLimitPolicy = OverLimitPolicy.CARRY_OVER

    def to_input(self) -> ProfileInput:
        return ProfileInput(**self.model_dump())


class RunCreate(Strict):
    business_date: date
    pay_out: bool = True


def _rate(centi_bp: int) -> str:
    return format(from_centi_bp(centi_bp).normalize(), "f")


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def fee_plan_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "fee_plan",
        "id": row["id"],
        "merchant_id": row["merchant_id"],
        "method": row["method"],
        "effective_from": _iso(row["effective_from"]),
        "rate_bp": _rate(row["rate_centi_bp"]),
        "fixed_fen": row["fixed_fen"],
        "min_fen": row["min_fen"],
        "max_fen": row["max_fen"],
        "same_day_surcharge_bp": _rate(row["surcharge_centi_bp"]),
        "refund_policy": row["refund_policy"],
    }


def profile_view(row: dict[str, Any]) -> dict[str, Any]:
    card = row["class_i_card"]
    return {
        "object": "settlement_profile",
        "merchant_id": row["merchant_id"],
        "bank_code": row["bank_code"],
        "account_no": row["account_no"],
        "account_class": row["account_class"],
        "account_name": row["account_name"],
        "class_i_card": f"{card[:6]}******{card[-4:]}" if card else None,
        "cycle": row["cycle"],
        "reserve_rate_bp": _rate(row["reserve_rate_centi_bp"]),
        "reserve_hold_days": row["reserve_hold_days"],
        "over_limit_policy": row["over_limit_policy"],
    }


_ITEMS = (
    ("gross", "gross_fen", 1),
    ("refunds", "refunds_fen", -1),
    ("fees", "fees_fen", -1),
    ("fee_returns", "fee_returns_fen", 1),
    ("splits", "splits_fen", -1),
    ("split_returns", "split_returns_fen", 1),
    ("reserve_held", "reserve_held_fen", -1),
)


def settlement_view(
    row: dict[str, Any], payouts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    view = {
        "object": "settlement",
        "id": row["id"],
        "merchant_id": row["merchant_id"],
        "trade_date": _iso(row["trade_date"]),
        "business_date": _iso(row["business_date"]),
        "currency": row["currency"],
        "status": row["status"],
        "refusal": row["refusal"],
        "orders_count": row["orders_count"],
        "unpriced_orders": row["unpriced_orders"],
        "gross_fen": row["gross_fen"],
        "refunds_fen": row["refunds_fen"],
        "fees_fen": row["fees_fen"],
        "fee_returns_fen": row["fee_returns_fen"],
        "channel_cost_fen": row["channel_cost_fen"],
        "margin_fen": row["fees_fen"] - row["fee_returns_fen"] - row["channel_cost_fen"],
        "commissions": json.loads(row["commissions"]),
        "fee_plan_ids": json.loads(row["fee_plan_ids"]),
        "splits_fen": row["splits_fen"],
        "split_returns_fen": row["split_returns_fen"],
        "reserve_held_fen": row["reserve_held_fen"],
        "reserve_release_on": _iso(row["reserve_release_on"]),
        "net_fen": row["net_fen"],
    }
    if payouts is not None:
        view["line_items"] = [
            {"kind": kind, "amount_fen": sign * row[column]}
            for kind, column, sign in _ITEMS
            if row[column]
        ]
        view["payouts"] = [payout_view(p) for p in payouts]
    return view


def payout_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "payout",
        "id": row["id"],
        "merchant_id": row["merchant_id"],
        "pay_date": _iso(row["pay_date"]),
        "destination_kind": row["destination_kind"],
        "bank_code": row["bank_code"],
        "amount_fen": row["amount_fen"],
        "status": row["status"],
        "limited_by": row["limited_by"],
        "failure_reason": row["failure_reason"],
    }
