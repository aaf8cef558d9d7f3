"""Wire shapes of the merchant payments API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from cloudpay.marketing import MAX_STACKED_INSTRUMENTS
from cloudpay.payments.model import (
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LENGTH,
    MAX_OUT_TRADE_NO_LENGTH,
    MAX_SUBJECT_LENGTH,
)
from cloudpay.payments.repository import OrderRow, RefundRow

# WeChat allows letters, digits and _-|* in out_trade_no; we take the common subset.
OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-|*]{1,32}$")
CLAIM_ID = re.compile(r"^clm_[0-9A-Z]{26}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL and SQLite (or a JSON column) would store it, and
        # WeChat would get it: refuse it on both databases, in metadata keys and values too.
        texts = [*value.keys(), *value.values()] if isinstance(value, dict) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain NUL characters")
        return value


class SplitPartIn(Strict):
    receiver_id: str = Field(pattern=r"^rcv_[0-9A-Za-z]{1,36}$")
    amount_fen: StrictInt = Field(description="fen (分) to this receiver, > 0")


class SplitInstruction(Strict):
    """分账: `delayed` holds the funds for a later `POST /v1/splits`; `now` names the parts."""

    mode: Literal["now", "delayed"]
    # Longer than the 50-receiver limit so that limit answers with its own error code.
    parts: list[SplitPartIn] | None = Field(default=None, max_length=100)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class OrderCreate(Strict):
    out_trade_no: str = Field(max_length=MAX_OUT_TRADE_NO_LENGTH, description="your order number")
    amount: StrictInt = Field(description="fen (分), > 0")
    currency: str = "CNY"
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT_LENGTH)
    method: str = Field(
        max_length=32, examples=["wechat_native", "alipay_qr", "unionpay_qr", "micropay"]
    )
    expire_at: datetime | None = None
    notify_url: str | None = Field(default=None, max_length=512)
    metadata: dict[str, str] = Field(default_factory=dict)
    payer_id: str | None = Field(
        default=None, max_length=128, description="JSAPI: the WeChat openid / Alipay user id"
    )
    auth_code: str | None = Field(
        default=None, pattern=r"^[0-9]{10,32}$", description="micropay: the payer's payment code"
    )
    wallet: str | None = Field(
        default=None, max_length=16, description="aggregated_qr: wechat, alipay or unionpay"
    )
    return_url: str | None = Field(default=None, max_length=512, description="wap: back to")
    citizen_id: str | None = Field(
        default=None, pattern=r"^ctz_[0-9A-Z]{26}$",
        description="the payer as a citizen, for vouchers and coupons (else found by payer_id)",
    )  # fmt: skip
    claim_ids: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_STACKED_INSTRUMENTS,
        description="the payer's chosen vouchers/coupons (default: the best ones)",
    )  # fmt: skip
    discount: Literal["auto", "none"] = Field(
        default="auto", description="auto: apply the identified payer's best instruments"
    )
    split: SplitInstruction | None = Field(default=None, description="分账 instruction")
    points: StrictInt | None = Field(
        default=None, ge=1, le=10**9,
        description="积分: how many of the identified payer's points pay part of the order",
    )  # fmt: skip

    @field_validator("out_trade_no")
    @classmethod
    def _out_trade_no(cls, value: str) -> str:
        if not OUT_TRADE_NO.match(value):
            raise ValueError("1–32 characters of letters, digits, _-|*")
        return value

    @field_validator("claim_ids")
    @classmethod
    def _claim_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(CLAIM_ID.match(claim_id) for claim_id in value):
            raise ValueError("claim ids look like clm_ and 26 characters")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each claim once")
        return value

    @field_validator("notify_url", "return_url")
    @classmethod
    def _notify_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/$.?#].[^\s]*$", value):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        if any(len(k) > 40 or len(v) > MAX_METADATA_VALUE_LENGTH for k, v in value.items()):
            raise ValueError(f"keys ≤ 40 and values ≤ {MAX_METADATA_VALUE_LENGTH} characters")
        return value


class RefundCreate(Strict):
    order_id: str | None = Field(default=None, max_length=40)
    out_trade_no: str | None = Field(default=None, max_length=MAX_OUT_TRADE_NO_LENGTH)
    out_refund_no: str = Field(max_length=64, description="your refund number (idempotent)")
    amount: StrictInt = Field(
        description="fen of what the payer paid (payer_amount) to refund, ≤ what remains; a "
        "discounted order gives back the same share of its subsidy (README: refund policy)"
    )
    reason: str | None = Field(default=None, max_length=80)

    @field_validator("out_refund_no")
    @classmethod
    def _out_refund_no(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_\-|*@]{1,64}$", value):
            raise ValueError("1–64 characters of letters, digits, _-|*@")
        return value


def next_action(order: OrderRow, qr_url: str | None) -> dict[str, Any] | None:
    if order.status.value != "paying":
        return None
    if order.code_url:
        return {"type": "display_qr", "code_url": order.code_url, "qr_image_url": qr_url}
    params = dict(order.pay_params or {})
    if "redirect_url" in params:
        url, method = params.pop("redirect_url"), params.pop("redirect_method", "GET")
        return {"type": "redirect", "url": url, "method": method, "form": params or None}
    if params:
        return {"type": order.paid_with, "params": params}
    if order.auth_code is not None:
        return {"type": "await_payer_confirmation"}  # micropay: the payer enters a password
    return None


def routing_view(order: OrderRow) -> dict[str, Any] | None:
    if order.routing is None:
        return None
    return {
        "route_id": order.route_id, "connector": order.connector,
        "cost_fen": order.route_cost_fen, **order.routing,
    }  # fmt: skip


def order_view(order: OrderRow, *, qr_url: str | None = None) -> dict[str, Any]:
    return {
        "object": "order",
        "id": order.id,
        "app_id": order.app_id,
        "merchant_id": order.merchant_id,
        "out_trade_no": order.out_trade_no,
        "amount": order.price,  # the merchant's price
        "discount_amount": order.discount_amount or 0,
        "payer_amount": order.amount,  # what the payer pays through the channel
        "discounts": order.discounts or [],
        "points_used": order.points_used or 0,
        "currency": order.currency,
        "subject": order.subject,
        "method": order.method,
        "channel_method": order.paid_with,
        "wallet": order.wallet,
        "channel": order.channel,
        "status": order.status.value,
        "expire_at": order.expire_at.isoformat(),
        "notify_url": order.notify_url,
        "metadata": order.metadata,
        "next_action": next_action(order, qr_url),
        "channel_transaction_id": order.channel_transaction_id,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "amount_refunded": order.refunded_amount,
        "failure_code": order.failure_code,
        "failure_message": order.failure_message,
        "routing": routing_view(order),
        "split": order.split,
        "split_released": order.split_released_at.isoformat() if order.split_released_at else None,
        "created": order.created_at.isoformat(),
        "updated": order.updated_at.isoformat(),
    }


def refund_view(refund: RefundRow) -> dict[str, Any]:
    return {
        "object": "refund",
        "id": refund.id,
        "order_id": refund.order_id,
        "app_id": refund.app_id,
        "out_refund_no": refund.out_refund_no,
        "amount": refund.amount,  # of the payer's paid fen
        "subsidy_reversed": refund.subsidy_reversed_amount or 0,  # vouchers' and points' value
        "points_funding_returned": refund.points_funding_returned_amount or 0,
        "currency": refund.currency,
        "reason": refund.reason,
        "status": refund.status.value,
        "channel_refund_id": refund.channel_refund_id,
        "failure_code": refund.failure_code,
        "succeeded_at": refund.succeeded_at.isoformat() if refund.succeeded_at else None,
        "created": refund.created_at.isoformat(),
    }
