"""Pure mapping between WeChat Pay API v3 fields and the channel vocabulary.

No HTTP, no keys, no clock: request bodies and paths in, typed results out. Field names and
values follow the v3 references:
- order query (trade_state values): https://pay.weixin.qq.com/doc/v3/merchant/4013070356
- close order (204, error codes): https://pay.weixin.qq.com/doc/v3/merchant/4012556398
- refunds (`status` SUCCESS / CLOSED / PROCESSING / ABNORMAL):
  https://pay.weixin.qq.com/doc/v3/merchant/4012587971
- payment-code pay (付款码, codepay) and its reverse (撤销):
  https://pay.weixin.qq.com/docs/merchant/apis/code-payment-v3/direct/code-pay.html
  https://pay.weixin.qq.com/docs/merchant/apis/code-payment-v3/direct/reverse.html
  (partner: …/partner/apis/partner-code-payment-v3/partner/partner-code-pay.html, -reverse.html)
Times are RFC 3339 with the +08:00 offset (`2018-06-08T10:34:56+08:00`); amounts are integer
fen (分) everywhere in v3 JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from cloudpay.channels.protocol import (
    ChannelPaymentStatus,
    ChannelRefundStatus,
    CreatePayment,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from cloudpay.kernel.business_time import SHANGHAI

METHOD_NATIVE = "wechat_native"
METHOD_JSAPI = "wechat_jsapi"
METHOD_MICROPAY = "wechat_micropay"
TRADE_TYPE_BY_METHOD = {METHOD_NATIVE: "native", METHOD_JSAPI: "jsapi", METHOD_MICROPAY: "codepay"}
CURRENCY = "CNY"  # domestic v3 payments are in CNY only
DESCRIPTION_MAX_CHARS = 127
ATTACH_MAX_CHARS = 128
# 商户订单号 / 商户退款单号: letters, digits and _-*| (refunds also @), unique per merchant.
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-*|]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-*|@]{1,64}")
# 付款码: 18 digits whose first two are 10..15 (what WeChat's AUTH_CODE_INVALID message asks for).
_AUTH_CODE = re.compile(r"1[0-5][0-9]{16}")
DEVICE_ID_MAX_CHARS = 32

# trade_state → our status. REFUND means "paid, then (partly) refunded" (转入退款).
PAYMENT_STATUS_BY_TRADE_STATE: dict[str, ChannelPaymentStatus] = {
    "SUCCESS": ChannelPaymentStatus.SUCCEEDED,
    "REFUND": ChannelPaymentStatus.REFUNDED,
    "NOTPAY": ChannelPaymentStatus.NOT_PAID,
    "CLOSED": ChannelPaymentStatus.CLOSED,
    # 已撤销 (付款码): closed; a revoked order that had been paid was refunded in full, which
    # `payment_status` reports as REFUNDED.
    "REVOKED": ChannelPaymentStatus.CLOSED,
    "USERPAYING": ChannelPaymentStatus.PAYING,
    "PAYERROR": ChannelPaymentStatus.FAILED,
}
REFUND_STATUS_BY_WECHAT: dict[str, ChannelRefundStatus] = {
    "SUCCESS": ChannelRefundStatus.SUCCEEDED,
    "CLOSED": ChannelRefundStatus.CLOSED,
    "PROCESSING": ChannelRefundStatus.PROCESSING,
    "ABNORMAL": ChannelRefundStatus.ABNORMAL,
}


class UnexpectedField(ValueError):
    """A WeChat answer lacks a field or carries a value this mapping does not know."""


@dataclass(frozen=True)
class MerchantIds:
    """Who calls: a direct merchant (mchid + appid), or a service provider (服务商) acting for
    a sub-merchant (`sub_mchid`, optional `sub_appid`), which switches to the partner API."""

    mchid: str
    appid: str
    sub_mchid: str | None = None
    sub_appid: str | None = None

    @property
    def partner(self) -> bool:
        return self.sub_mchid is not None


# ---------------------------------------------------------------- times and identifiers


def format_time(instant: datetime) -> str:
    """RFC 3339 in Beijing time, second precision: `2026-01-01T08:00:00+08:00`."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime refused")
    return instant.astimezone(SHANGHAI).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from WeChat's RFC 3339 text (any offset, `Z` accepted)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise UnexpectedField(f"not an RFC 3339 time: {text!r}") from error
    if parsed.tzinfo is None:
        raise UnexpectedField(f"time without an offset: {text!r}")
    return parsed.astimezone(UTC)


def check_out_trade_no(value: str) -> str:
    if not _OUT_TRADE_NO.fullmatch(value):
        raise ValueError(f"out_trade_no must match {_OUT_TRADE_NO.pattern}: {value!r}")
    return value


def is_wechat_auth_code(value: str) -> bool:
    """Whether `value` looks like a WeChat payment code (18 digits, 10..15 first)."""
    return _AUTH_CODE.fullmatch(value) is not None


def check_out_refund_no(value: str) -> str:
    if not _OUT_REFUND_NO.fullmatch(value):
        raise ValueError(f"out_refund_no must match {_OUT_REFUND_NO.pattern}: {value!r}")
    return value


# ---------------------------------------------------------------- request paths and bodies


def create_path(ids: MerchantIds, method: str) -> str:
    trade_type = TRADE_TYPE_BY_METHOD.get(method)
    if trade_type is None:
        raise ValueError(f"WeChat Pay does not serve method {method!r}")
    prefix = "/v3/pay/partner/transactions" if ids.partner else "/v3/pay/transactions"
    return f"{prefix}/{trade_type}"


def create_body(ids: MerchantIds, request: CreatePayment) -> dict[str, Any]:
    """The JSON of a native / JSAPI order (统一下单)."""
    if request.currency != CURRENCY:
        raise ValueError(f"WeChat Pay v3 domestic orders are in {CURRENCY}")
    if request.amount_fen <= 0:
        raise ValueError("amount_fen must be positive")
    if request.sub_merchant_id not in (None, ids.sub_mchid):
        # One adapter serves one (sub-)merchant: build another for another sub_mchid.
        raise ValueError(f"this adapter pays for sub_mchid {ids.sub_mchid!r} only")
    body: dict[str, Any] = {
        **_caller_fields(ids),
        "description": request.subject[:DESCRIPTION_MAX_CHARS],
        "out_trade_no": check_out_trade_no(request.order_id),
        "time_expire": format_time(request.expire_at),
        "notify_url": request.notify_url,
        "amount": {"total": request.amount_fen, "currency": CURRENCY},
    }
    if request.attach:
        body["attach"] = request.attach[:ATTACH_MAX_CHARS]
    if request.client_ip:
        body["scene_info"] = {"payer_client_ip": request.client_ip}
    if request.method == METHOD_MICROPAY:
        raise ValueError("a micropay order is built by codepay_body")
    if request.method == METHOD_JSAPI:
        if not request.payer_id:
            raise ValueError("a JSAPI payment needs the payer's openid (payer_id)")
        body["payer"] = {_openid_field(ids): request.payer_id}
    return body


def codepay_body(ids: MerchantIds, request: CreatePayment, *, device_id: str) -> dict[str, Any]:
    """The JSON of a payment-code payment (付款码支付). It has no time_expire and no notify_url:
    WeChat answers the result at once, or USERPAYING, and the merchant queries after that."""
    if request.currency != CURRENCY:
        raise ValueError(f"WeChat Pay v3 domestic orders are in {CURRENCY}")
    if request.amount_fen <= 0:
        raise ValueError("amount_fen must be positive")
    if request.sub_merchant_id not in (None, ids.sub_mchid):
        raise ValueError(f"this adapter pays for sub_mchid {ids.sub_mchid!r} only")
    if not request.auth_code:
        raise ValueError("a micropay payment needs the payer's payment code (auth_code)")
    if not 0 < len(device_id) <= DEVICE_ID_MAX_CHARS:
        raise ValueError(f"device_id must be 1..{DEVICE_ID_MAX_CHARS} characters")
    scene_info: dict[str, str] = {"device_id": device_id}
    if request.client_ip:
        scene_info["device_ip"] = request.client_ip
    body: dict[str, Any] = {
        **_caller_fields(ids),
        "description": request.subject[:DESCRIPTION_MAX_CHARS],
        "out_trade_no": check_out_trade_no(request.order_id),
        "payer": {"auth_code": request.auth_code},
        "amount": {"total": request.amount_fen, "currency": CURRENCY},
        "scene_info": scene_info,
    }
    if request.attach:
        body["attach"] = request.attach[:ATTACH_MAX_CHARS]
    return body


def _caller_fields(ids: MerchantIds) -> dict[str, str]:
    if not ids.partner:
        return {"appid": ids.appid, "mchid": ids.mchid}
    fields = {"sp_appid": ids.appid, "sp_mchid": ids.mchid, "sub_mchid": str(ids.sub_mchid)}
    if ids.sub_appid:
        fields["sub_appid"] = ids.sub_appid
    return fields


def _openid_field(ids: MerchantIds) -> str:
    if not ids.partner:
        return "openid"
    # An openid belongs to one appid: under the sub-merchant's own app it is sub_openid.
    return "sub_openid" if ids.sub_appid else "sp_openid"


def query_path(ids: MerchantIds, out_trade_no: str) -> str:
    number = quote(check_out_trade_no(out_trade_no), safe="")
    if ids.partner:
        query = urlencode({"sp_mchid": ids.mchid, "sub_mchid": ids.sub_mchid})
        return f"/v3/pay/partner/transactions/out-trade-no/{number}?{query}"
    return f"/v3/pay/transactions/out-trade-no/{number}?{urlencode({'mchid': ids.mchid})}"


def close_path(ids: MerchantIds, out_trade_no: str) -> str:
    number = quote(check_out_trade_no(out_trade_no), safe="")
    prefix = "/v3/pay/partner/transactions" if ids.partner else "/v3/pay/transactions"
    return f"{prefix}/out-trade-no/{number}/close"


def close_body(ids: MerchantIds) -> dict[str, str]:
    if ids.partner:
        return {"sp_mchid": ids.mchid, "sub_mchid": str(ids.sub_mchid)}
    return {"mchid": ids.mchid}


def reverse_path(ids: MerchantIds, out_trade_no: str) -> str:
    number = quote(check_out_trade_no(out_trade_no), safe="")
    prefix = "/v3/pay/partner/transactions" if ids.partner else "/v3/pay/transactions"
    return f"{prefix}/out-trade-no/{number}/reverse"


def reverse_body(ids: MerchantIds) -> dict[str, str]:
    return _caller_fields(ids)


REFUNDS_PATH = "/v3/refund/domestic/refunds"


def refund_body(ids: MerchantIds, request: RefundRequest) -> dict[str, Any]:
    if request.currency != CURRENCY:
        raise ValueError(f"WeChat Pay v3 domestic refunds are in {CURRENCY}")
    if not 0 < request.amount_fen <= request.order_total_fen:
        raise ValueError("a refund must be positive and at most the order total")
    body: dict[str, Any] = {
        "out_trade_no": check_out_trade_no(request.order_id),
        "out_refund_no": check_out_refund_no(request.refund_id),
        "amount": {
            "refund": request.amount_fen,
            "total": request.order_total_fen,
            "currency": CURRENCY,
        },
    }
    if ids.partner:
        body["sub_mchid"] = ids.sub_mchid
    if request.reason:
        body["reason"] = request.reason[:80]  # reason is string(80)
    if request.notify_url:
        body["notify_url"] = request.notify_url
    return body


def refund_query_path(ids: MerchantIds, out_refund_no: str) -> str:
    path = f"{REFUNDS_PATH}/{quote(check_out_refund_no(out_refund_no), safe='')}"
    return f"{path}?{urlencode({'sub_mchid': ids.sub_mchid})}" if ids.partner else path


def trade_bill_path(ids: MerchantIds, bill_date_iso: str, *, gzip: bool) -> str:
    query = {"bill_date": bill_date_iso, "bill_type": "ALL"}
    if gzip:
        query["tar_type"] = "GZIP"
    if ids.partner:
        query["sub_mchid"] = str(ids.sub_mchid)
    return f"/v3/bill/tradebill?{urlencode(query)}"


# ---------------------------------------------------------------- answers


def _require(payload: Mapping[str, Any], key: str) -> Any:
    value = payload.get(key)
    if value is None:
        raise UnexpectedField(f"WeChat answer lacks {key!r}")
    return value


def payment_status(transaction: Mapping[str, Any]) -> PaymentStatus:
    """A transaction (query answer or TRANSACTION.* resource) as our `PaymentStatus`."""
    trade_state = _require(transaction, "trade_state")
    status = PAYMENT_STATUS_BY_TRADE_STATE.get(trade_state)
    if status is None:
        raise UnexpectedField(f"unknown trade_state {trade_state!r}")
    amount = transaction.get("amount") or {}
    payer = transaction.get("payer") or {}
    success_time = transaction.get("success_time")
    if trade_state == "REVOKED" and success_time:
        status = ChannelPaymentStatus.REFUNDED  # paid, then reversed: the money went back
    return PaymentStatus(
        order_id=_require(transaction, "out_trade_no"),
        status=status,
        # The order amount, which payments compares with its own; payer_total (what left the
        # payer's pocket after WeChat coupons) stays in `raw`.
        amount_fen=amount.get("total"),
        currency=amount.get("currency"),
        channel_transaction_id=transaction.get("transaction_id") or None,
        paid_at=parse_time(success_time) if success_time else None,
        payer_id=payer.get("openid") or payer.get("sub_openid") or payer.get("sp_openid"),
        failure_reason=(
            transaction.get("trade_state_desc") if status is ChannelPaymentStatus.FAILED else None
        ),
        raw=dict(transaction),
    )


def refund_status(refund: Mapping[str, Any]) -> RefundStatus:
    """A refund (create/query answer: `status`; REFUND.* resource: `refund_status`)."""
    wechat_status = refund.get("status") or _require(refund, "refund_status")
    status = REFUND_STATUS_BY_WECHAT.get(wechat_status)
    if status is None:
        raise UnexpectedField(f"unknown refund status {wechat_status!r}")
    amount = refund.get("amount") or {}
    success_time = refund.get("success_time")
    return RefundStatus(
        refund_id=_require(refund, "out_refund_no"),
        status=status,
        amount_fen=amount.get("refund"),
        channel_refund_id=refund.get("refund_id") or None,
        succeeded_at=parse_time(success_time) if success_time else None,
        raw=dict(refund),
    )


# ---------------------------------------------------------------- payment-code answers

# Refusals after which the payer was certainly not charged for this order: FAILED, reason kept.
# Spellings of both the codepay error table and the v2 micropay API it continues.
MICROPAY_REFUSED_CODES = frozenset(
    {
        "AUTH_CODE_INVALID", "AUTH_CODE_ERROR", "AUTHCODEEXPIRE", "NOTENOUGH", "NOT_ENOUGH",
        "NOTSUPORTCARD", "BUYER_MISMATCH", "TRADE_ERROR", "PAYER_ACCOUNT_ABNORMAL",
        "ORDERCLOSED", "ORDER_CLOSED", "ORDERREVERSED", "RULELIMIT",
    }
)  # fmt: skip
# Answers that leave the outcome open: the payer is entering a password (USERPAYING), or WeChat
# or the bank could not say yet. WeChat's advice is to query (every 5-10 s, for 30-45 s) and to
# reverse if the payment is still not clear. https://pay.weixin.qq.com/doc/v2/merchant/4011937125
MICROPAY_PENDING_CODES = frozenset({"USERPAYING", "SYSTEMERROR", "SYSTEM_ERROR", "BANKERROR"})


def micropay_pending(order_id: str, code: str) -> PaymentStatus:
    return PaymentStatus(order_id=order_id, status=ChannelPaymentStatus.PAYING, raw={"code": code})


def micropay_refused(order_id: str, code: str, message: str) -> PaymentStatus:
    return PaymentStatus(
        order_id=order_id,
        status=ChannelPaymentStatus.FAILED,
        failure_reason=f"{code}: {message}" if message else code,
        raw={"code": code, "message": message},
    )


def caller_ids_of(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(merchant id, app id) a transaction or refund resource names, direct or partner."""
    merchant = resource.get("mchid") or resource.get("sp_mchid")
    app = resource.get("appid") or resource.get("sp_appid")
    return merchant, app
