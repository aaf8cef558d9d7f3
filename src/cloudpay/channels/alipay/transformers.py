"""Pure mapping between Alipay OpenAPI fields and the `PaymentChannel` vocabulary.

References: each API's page is https://opendocs.alipay.com/apis/api_1/<method> for the trade
APIs (alipay.trade.precreate, .wap.pay, .create, .pay, .query, .close, .cancel, .refund,
.fastpay.refund.query), api_15 for alipay.data.dataservice.bill.downloadurl.query and api_9
for alipay.system.oauth.token; public error codes: https://opendocs.alipay.com/common/02km9f;
async notification fields and `trade_status`: https://opendocs.alipay.com/open/203/105286
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cloudpay.channels.alipay import wire
from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelPaymentStatus,
    ChannelRefundStatus,
    CreatePayment,
    PaymentStatus,
    RefundStatus,
)

METHOD_QR = "alipay_qr"
METHOD_WAP = "alipay_wap"
METHOD_JSAPI = "alipay_jsapi"
METHOD_MICROPAY = "alipay_micropay"

PRECREATE = "alipay.trade.precreate"
WAP_PAY = "alipay.trade.wap.pay"
CREATE = "alipay.trade.create"
PAY = "alipay.trade.pay"
QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"
CANCEL = "alipay.trade.cancel"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
BILL_URL = "alipay.data.dataservice.bill.downloadurl.query"
OAUTH_TOKEN = "alipay.system.oauth.token"  # noqa: S105 (an API name)

API_OF_METHOD = {
    METHOD_QR: PRECREATE,
    METHOD_WAP: WAP_PAY,
    METHOD_JSAPI: CREATE,
    METHOD_MICROPAY: PAY,
}
PRODUCT_CODE = {
    METHOD_QR: "FACE_TO_FACE_PAYMENT",
    METHOD_WAP: "QUICK_WAP_WAY",
    METHOD_JSAPI: "JSAPI_PAY",
    METHOD_MICROPAY: "FACE_TO_FACE_PAYMENT",
}
TRADE_STATES = {
    "WAIT_BUYER_PAY": ChannelPaymentStatus.NOT_PAID,
    "TRADE_SUCCESS": ChannelPaymentStatus.SUCCEEDED,
    "TRADE_FINISHED": ChannelPaymentStatus.SUCCEEDED,  # paid, refund window over
    "TRADE_CLOSED": ChannelPaymentStatus.CLOSED,
}
# The payer's side refused a micropay: the attempt failed for good (FAILED with the reason),
# while merchant-side refusals (bad parameters, trade state) stay ChannelError(REJECTED).
PAYER_DECLINES = frozenset(
    {
        "ACQ.PAYMENT_AUTH_CODE_INVALID",
        "ACQ.BUYER_BALANCE_NOT_ENOUGH",
        "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH",
        "ACQ.BUYER_ENABLE_STATUS_FORBID",
        "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR",
        "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR",
        "ACQ.PAYMENT_FAIL",
        "ACQ.ERROR_BALANCE_PAYMENT_DISABLE",
        "ACQ.PULL_MOBILE_CASHIER_FAIL",
    }
)
AUTHENTICATION_SUB_CODES = frozenset(
    {
        "isv.invalid-signature",
        "isv.invalid-signature-type",
        "isv.missing-signature",
        "isv.invalid-app-id",
        "isv.missing-app-id",
        "isv.invalid-timestamp",
        "isv.app-unauthorized",
    }
)
# Calls that move money: an answer of 20000 (service unavailable) leaves their outcome
# unknown, so Alipay says to query (or cancel) before assuming anything.
MONEY_MOVING = frozenset({PAY, REFUND, CANCEL})
_ALIPAY_USER_ID = re.compile(r"2088\d{12}")


class UnexpectedField(ValueError):
    """An Alipay answer or notification lacks a field or holds an unknown value."""


# ---------------------------------------------------------------- requests


def create_biz(request: CreatePayment) -> dict[str, Any]:
    """The `biz_content` of the API that serves `request.method`."""
    if request.method not in API_OF_METHOD:
        raise ValueError(f"Alipay does not serve method {request.method!r}")
    if request.currency != "CNY":
        raise ValueError("Alipay domestic acquiring takes CNY only")
    biz: dict[str, Any] = {
        "out_trade_no": request.order_id,
        "total_amount": wire.yuan(request.amount_fen),
        "subject": request.subject,
        "product_code": PRODUCT_CODE[request.method],
        "time_expire": wire.beijing_time(request.expire_at),
    }
    if request.attach:
        biz["passback_params"] = request.attach
    if request.sub_merchant_id:
        biz["sub_merchant"] = {"merchant_id": request.sub_merchant_id}
    if request.method == METHOD_JSAPI:
        if not request.payer_id:
            raise ValueError("alipay_jsapi needs payer_id (the buyer's user id or open id)")
        id_field = "buyer_id" if _ALIPAY_USER_ID.fullmatch(request.payer_id) else "buyer_open_id"
        biz[id_field] = request.payer_id
    if request.method == METHOD_MICROPAY:
        if not request.auth_code:
            raise ValueError("alipay_micropay needs auth_code (the payer's payment code)")
        biz.update(scene="bar_code", auth_code=request.auth_code)
    return {key: value for key, value in biz.items() if value is not None}


def refund_biz(
    refund_id: str, order_id: str, amount_fen: int, reason: str | None
) -> dict[str, Any]:
    biz: dict[str, Any] = {
        "out_trade_no": order_id,
        "refund_amount": wire.yuan(amount_fen),
        "out_request_no": refund_id,
    }
    if reason:
        biz["refund_reason"] = reason
    return biz


# ---------------------------------------------------------------- errors


def error_of(api_method: str, content: Mapping[str, Any]) -> ChannelError:
    """The `ChannelError` for a non-10000 answer (public codes, common/02km9f)."""
    code = str(content.get("code", ""))
    sub_code = str(content.get("sub_code") or "") or None
    message = f"Alipay {code} {sub_code or ''}: {content.get('sub_msg') or content.get('msg', '')}"
    if code == "20000":
        unknown = api_method in MONEY_MOVING
        kind = ChannelErrorKind.TIMEOUT if unknown else ChannelErrorKind.UNAVAILABLE
    elif code in ("20001", "40006") or sub_code in AUTHENTICATION_SUB_CODES:
        kind = ChannelErrorKind.AUTHENTICATION
    elif code in ("40001", "40002", "40004"):
        kind = ChannelErrorKind.REJECTED
    else:
        kind = ChannelErrorKind.INVALID_RESPONSE
    return ChannelError(kind, message, code=sub_code or code)


# ---------------------------------------------------------------- answers


def required_text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise UnexpectedField(f"missing field {name!r}")
    return value


def _optional_fen(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return None if value in (None, "") else wire.fen(str(value))


def payment_status(data: Mapping[str, Any]) -> PaymentStatus:
    """A trade.query answer or a payment notification as `PaymentStatus`.

    Alipay has no REFUND trade state: a trade refunded in full is TRADE_CLOSED but was paid
    (it keeps its payment time), which we report as REFUNDED; partly refunded stays SUCCEEDED.
    """
    trade_status = required_text(data, "trade_status")
    if trade_status not in TRADE_STATES:
        raise UnexpectedField(f"unknown trade_status {trade_status!r}")
    status = TRADE_STATES[trade_status]
    paid_text = data.get("send_pay_date") or data.get("gmt_payment")
    paid_at = wire.parse_beijing_time(str(paid_text)) if paid_text else None
    if status is ChannelPaymentStatus.CLOSED and paid_at is not None:
        status = ChannelPaymentStatus.REFUNDED
    paid = status in (ChannelPaymentStatus.SUCCEEDED, ChannelPaymentStatus.REFUNDED)
    return PaymentStatus(
        order_id=required_text(data, "out_trade_no"),
        status=status,
        amount_fen=_optional_fen(data, "total_amount"),
        currency="CNY",
        channel_transaction_id=str(data.get("trade_no") or "") or None,
        paid_at=paid_at if paid else None,
        payer_id=str(data.get("buyer_user_id") or data.get("buyer_id") or "") or None,
        raw=dict(data),
    )


def micropay_status(order_id: str, content: Mapping[str, Any]) -> PaymentStatus:
    """The immediate outcome of trade.pay: 10000 paid, 10003 waiting, payer decline failed."""
    code = str(content.get("code", ""))
    if code == wire.SUCCESS_CODE:
        paid_text = content.get("gmt_payment")
        return PaymentStatus(
            order_id=order_id,
            status=ChannelPaymentStatus.SUCCEEDED,
            amount_fen=_optional_fen(content, "total_amount"),
            currency="CNY",
            channel_transaction_id=required_text(content, "trade_no"),
            paid_at=wire.parse_beijing_time(str(paid_text)) if paid_text else None,
            payer_id=str(content.get("buyer_user_id") or "") or None,
            raw=dict(content),
        )
    if code == wire.PENDING_CODE:
        return PaymentStatus(
            order_id=order_id,
            status=ChannelPaymentStatus.PAYING,
            channel_transaction_id=str(content.get("trade_no") or "") or None,
            raw=dict(content),
        )
    reason = f"{content.get('sub_code')}: {content.get('sub_msg', '')}"
    return PaymentStatus(
        order_id=order_id,
        status=ChannelPaymentStatus.FAILED,
        failure_reason=reason,
        raw=dict(content),
    )


def is_payer_decline(content: Mapping[str, Any]) -> bool:
    return str(content.get("code")) == "40004" and content.get("sub_code") in PAYER_DECLINES


def refund_status(refund_id: str, amount_fen: int, content: Mapping[str, Any]) -> RefundStatus:
    """A trade.refund answer: synchronous, so 10000 means the money went back.

    Its `refund_fee` is the trade's cumulative refund, not this refund's amount: the amount
    is the request's (Alipay answers a repeated `out_request_no` with the first result).
    """
    refunded_text = content.get("gmt_refund_pay")
    return RefundStatus(
        refund_id=refund_id,
        status=ChannelRefundStatus.SUCCEEDED,
        amount_fen=amount_fen,
        channel_refund_id=f"{required_text(content, 'trade_no')}/{refund_id}",
        succeeded_at=wire.parse_beijing_time(str(refunded_text)) if refunded_text else None,
        raw=dict(content),
    )


def queried_refund(refund_id: str, content: Mapping[str, Any]) -> RefundStatus | None:
    """A fastpay.refund.query answer; None when Alipay has no such (successful) refund."""
    if not content.get("refund_amount") or content.get("out_request_no") != refund_id:
        return None
    state = str(content.get("refund_status") or "REFUND_SUCCESS")
    if state != "REFUND_SUCCESS":
        raise UnexpectedField(f"unknown refund_status {state!r}")
    refunded_text = content.get("gmt_refund_pay")
    return RefundStatus(
        refund_id=refund_id,
        status=ChannelRefundStatus.SUCCEEDED,
        amount_fen=wire.fen(str(content["refund_amount"])),
        channel_refund_id=f"{required_text(content, 'trade_no')}/{refund_id}",
        succeeded_at=wire.parse_beijing_time(str(refunded_text)) if refunded_text else None,
        raw=dict(content),
    )


def notified_refund(params: Mapping[str, str]) -> RefundStatus:
    """A notification about a refund (it carries `out_biz_no` = our refund id, `gmt_refund`).

    `refund_fee` there is cumulative for the trade, so this refund's amount stays unknown.
    """
    refund_id = required_text(params, "out_biz_no")
    return RefundStatus(
        refund_id=refund_id,
        status=ChannelRefundStatus.SUCCEEDED,
        channel_refund_id=f"{required_text(params, 'trade_no')}/{refund_id}",
        succeeded_at=wire.parse_beijing_time(required_text(params, "gmt_refund")),
        raw=dict(params),
    )


def is_refund_notification(params: Mapping[str, str]) -> bool:
    return bool(params.get("gmt_refund") and params.get("out_biz_no"))
