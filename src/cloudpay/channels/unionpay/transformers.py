"""Pure mapping between our channel vocabulary and UnionPay 全渠道 5.1.0 form fields.

Transaction codes (txnType / txnSubType / bizType), from the 5.1.0 interface specification
(https://open.unionpay.com/tjweb/acproduct/APIList?apiservId=448&version=V2.2) and acp_sdk:
- 01/07 bizType 000000: apply for a QR code the payer scans (二维码 主扫 申码) → `qrCode`;
- 01/06 bizType 000000: the payer's payment code scanned by the merchant (被扫, `qrNo`);
- 01/01 bizType 000201 channelType 08: mobile web payment (手机网页支付, frontTransReq.do);
- 00/00: single transaction query (queryTrans.do), `origRespCode` is the queried outcome;
- 31/00: void a same-day consumption (消费撤销, `origQryId`);
- 04/00: refund (退货, `origQryId`), each refund has its own `orderId`;
- 99/01: reversal (冲正) of a consumption whose outcome is unknown or that was never paid;
- 76/01 fileType 00: daily reconciliation file (fileTransfer.do, `settleDate` MMdd).

Answer codes (respCode / origRespCode; list in "平台接入接口规范 第5部分 附录", e.g.
https://www.kancloud.cn/ywlxfd/x13633830742/950677): 00 success; 03 通讯超时, 04 状态未明,
05 已受理 — the outcome is not known yet, query later; 11 验证签名失败; 12 重复交易;
34 查无此交易; 35 原交易不存在或状态不正确; 36 与原交易信息不符; 39 不在受理时间范围内;
60+ the card issuer declined.

UnionPay order numbers are 8–40 letters and digits with no `-` or `_`; ours (`ord_…`) lose the
underscore on the way out and travel in `reqReserved` (echoed in answers and notifications) so
we can name them again on the way back. A void, a reversal or a cancel's refund is a
transaction of its own with its own orderId, derived from the order's: our id plus a
lower-case suffix (`VOID_SUFFIX`, `REVERSAL_SUFFIX`, `CANCEL_REFUND_SUFFIX`), which no id's
upper-case Crockford body can end with, so the order is always recoverable. The suffixes
are short because the reconciliation file (ZM) holds the orderId in 32 bytes
(`bill.FIELD_WIDTHS`): `ord` + 26 + `v` is 30.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cloudpay.channels.protocol import (
    ChannelPaymentStatus,
    ChannelRefundStatus,
    CreatePayment,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from cloudpay.channels.unionpay import wire
from cloudpay.kernel.business_time import SHANGHAI

METHOD_QR = "unionpay_qr"
METHOD_WAP = "unionpay_wap"
METHOD_MICROPAY = "unionpay_micropay"
METHODS = frozenset({METHOD_QR, METHOD_WAP, METHOD_MICROPAY})

TXN_QUERY, TXN_CONSUME, TXN_REFUND, TXN_VOID, TXN_REVERSAL = "00", "01", "04", "31", "99"
TXN_FILE = "76"
SUB_QR_APPLY, SUB_MICROPAY, SUB_WAP = "07", "06", "01"
BIZ_QR, BIZ_WAP = "000000", "000201"
CHANNEL_MOBILE = "08"
CURRENCY_CNY = "156"
TXN_TIME_FORMAT = "%Y%m%d%H%M%S"

RESP_OK = "00"
RESP_UNKNOWN = frozenset({"03", "04", "05"})
RESP_BAD_SIGNATURE = "11"
RESP_DUPLICATE = "12"
RESP_NOT_FOUND = "34"
# Card, account and risk refusals of a payment code: the payment failed, the call did not.
RESP_DECLINED = frozenset({"30", "38", "60", "61", "63", "66", "68", "73", "78", "90"})

_ORDER_NUMBER = re.compile(r"^[0-9A-Za-z]{8,40}$")
# What a derived transaction appends to the order's id (see the module docstring).
VOID_SUFFIX = "v"
REVERSAL_SUFFIX = "rev"
CANCEL_REFUND_SUFFIX = "c"  # cancelling a payment of an earlier day refunds it in full


class UnexpectedField(ValueError):
    """An answer or notification lacks a field or carries a value we cannot map."""


@dataclass(frozen=True)
class MerchantIds:
    mer_id: str
    access_type: str  # "0" merchant direct, "1" acquirer (收单机构) access
    acq_ins_code: str | None = None


def order_number(our_id: str) -> str:
    """The UnionPay `orderId` for one of our ids (`ord_…`, `rfd_…`)."""
    number = our_id.replace("_", "")
    if not _ORDER_NUMBER.match(number):
        raise ValueError(f"{our_id!r} cannot be a UnionPay orderId (8-40 letters and digits)")
    return number


def derived_id(our_id: str, suffix: str) -> str:
    """The id of a void or reversal of `our_id`: `ord_01J…` → `ord_01J…_v` (orderId `ord01J…v`)."""
    return f"{our_id}_{suffix}"


def format_txn_time(instant: datetime) -> str:
    """Beijing wall time, yyyyMMddHHmmss, as `txnTime` and `payTimeout` want it."""
    return instant.astimezone(SHANGHAI).strftime(TXN_TIME_FORMAT)


def parse_txn_time(text: str) -> datetime:
    try:
        wall = datetime.strptime(text, TXN_TIME_FORMAT)
    except ValueError as error:
        raise UnexpectedField(f"bad time {text!r}") from error
    return wall.replace(tzinfo=SHANGHAI).astimezone(UTC)


def fen_text(amount_fen: int) -> str:
    if amount_fen <= 0:
        raise ValueError("UnionPay amounts are positive fen")
    return str(amount_fen)


def base_fields(ids: MerchantIds, txn_type: str, sub_type: str, biz: str) -> dict[str, str]:
    fields = {
        "version": wire.VERSION,
        "encoding": wire.ENCODING,
        "signMethod": wire.SIGN_METHOD_RSA,
        "txnType": txn_type,
        "txnSubType": sub_type,
        "bizType": biz,
        "accessType": ids.access_type,
        "merId": ids.mer_id,
    }
    if ids.acq_ins_code:
        fields["acqInsCode"] = ids.acq_ins_code
    return fields


def create_fields(ids: MerchantIds, request: CreatePayment, now: datetime) -> dict[str, str]:
    if request.currency != "CNY":
        raise ValueError("UnionPay full-channel payments here are in CNY")
    if request.method == METHOD_QR:
        fields = base_fields(ids, TXN_CONSUME, SUB_QR_APPLY, BIZ_QR)
    elif request.method == METHOD_MICROPAY:
        if not request.auth_code:
            raise ValueError("unionpay_micropay needs the payer's auth_code")
        fields = {**base_fields(ids, TXN_CONSUME, SUB_MICROPAY, BIZ_QR), "qrNo": request.auth_code}
    elif request.method == METHOD_WAP:
        fields = base_fields(ids, TXN_CONSUME, SUB_WAP, BIZ_WAP)
        if request.return_url:
            fields["frontUrl"] = request.return_url
    else:
        raise ValueError(f"UnionPay does not serve method {request.method!r}")
    return {
        **fields,
        "channelType": CHANNEL_MOBILE,
        "orderId": order_number(request.order_id),
        "txnTime": format_txn_time(now),
        "txnAmt": fen_text(request.amount_fen),
        "currencyCode": CURRENCY_CNY,
        "backUrl": request.notify_url,
        "payTimeout": format_txn_time(request.expire_at),
        "reqReserved": request.order_id,
    }


def query_fields(ids: MerchantIds, our_id: str, txn_time: str) -> dict[str, str]:
    """Query a transaction by its `orderId` and the `txnTime` it was first sent with."""
    return {
        **base_fields(ids, TXN_QUERY, "00", BIZ_QR),
        "orderId": order_number(our_id),
        "txnTime": txn_time,
    }


def refund_fields(
    ids: MerchantIds, request: RefundRequest, orig_query_id: str, biz: str, now: datetime
) -> dict[str, str]:
    fields = {
        **base_fields(ids, TXN_REFUND, "00", biz),
        "channelType": CHANNEL_MOBILE,
        "orderId": order_number(request.refund_id),
        "txnTime": format_txn_time(now),
        "txnAmt": fen_text(request.amount_fen),
        "currencyCode": CURRENCY_CNY,
        "origQryId": orig_query_id,
        "reqReserved": request.refund_id,
    }
    if request.notify_url:
        fields["backUrl"] = request.notify_url
    return fields


def void_fields(ids: MerchantIds, paid: PaymentStatus, biz: str, now: datetime) -> dict[str, str]:
    """消费撤销 of a same-day consumption, in full; its own orderId is derived from the order."""
    assert paid.amount_fen is not None
    assert paid.channel_transaction_id is not None
    void_id = derived_id(paid.order_id, VOID_SUFFIX)
    return {
        **base_fields(ids, TXN_VOID, "00", biz),
        "channelType": CHANNEL_MOBILE,
        "orderId": order_number(void_id),
        "txnTime": format_txn_time(now),
        "txnAmt": fen_text(paid.amount_fen),
        "currencyCode": CURRENCY_CNY,
        "origQryId": paid.channel_transaction_id,
        "reqReserved": void_id,
    }


def reversal_fields(
    ids: MerchantIds, our_id: str, orig_txn_time: str, now: datetime
) -> dict[str, str]:
    """冲正 of an unpaid or undecided consumption: the gateway will refuse to pay it later."""
    return {
        **base_fields(ids, TXN_REVERSAL, "01", BIZ_QR),
        "channelType": CHANNEL_MOBILE,
        "orderId": order_number(derived_id(our_id, REVERSAL_SUFFIX)),
        "txnTime": format_txn_time(now),
        "origOrderId": order_number(our_id),
        "origTxnTime": orig_txn_time,
    }


def file_fields(ids: MerchantIds, settle_date: str, now: datetime) -> dict[str, str]:
    return {
        **base_fields(ids, TXN_FILE, "01", BIZ_QR),
        "txnTime": format_txn_time(now),
        "settleDate": settle_date,
        "fileType": "00",
    }


# ---------------------------------------------------------------- answers → our types


def _field(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise UnexpectedField(f"missing field {name!r}")
    return value


def our_id(fields: Mapping[str, str]) -> str:
    """Our id, from `reqReserved`, checked against the `orderId` it must have produced."""
    ours = _field(fields, "reqReserved")
    if order_number(ours) != _field(fields, "orderId"):
        raise UnexpectedField("reqReserved does not match orderId")
    return ours


def _amount(fields: Mapping[str, str]) -> int:
    text = _field(fields, "txnAmt")
    if not text.isdigit():
        raise UnexpectedField(f"bad txnAmt {text!r}")
    return int(text)


def payment_state(outcome_code: str) -> ChannelPaymentStatus:
    if outcome_code == RESP_OK:
        return ChannelPaymentStatus.SUCCEEDED
    if outcome_code == "05":  # accepted, the payer has not paid yet
        return ChannelPaymentStatus.NOT_PAID
    if outcome_code in RESP_UNKNOWN:  # PIN pending / undecided
        return ChannelPaymentStatus.PAYING
    return ChannelPaymentStatus.FAILED


def payment_status(fields: Mapping[str, str], *, outcome_code: str) -> PaymentStatus:
    """A payment from a query answer (`origRespCode`), a notification or a micropay answer."""
    status = payment_state(outcome_code)
    paid = status is ChannelPaymentStatus.SUCCEEDED
    return PaymentStatus(
        order_id=our_id(fields),
        status=status,
        amount_fen=_amount(fields),
        currency="CNY" if fields.get("currencyCode", CURRENCY_CNY) == CURRENCY_CNY else None,
        channel_transaction_id=fields.get("queryId") or None,
        paid_at=parse_txn_time(_field(fields, "txnTime")) if paid else None,
        failure_reason=None if status is not ChannelPaymentStatus.FAILED else _reason(fields),
        raw=dict(fields),
    )


def _reason(fields: Mapping[str, str]) -> str:
    code = fields.get("origRespCode") or fields.get("respCode", "")
    message = fields.get("origRespMsg") or fields.get("respMsg", "")
    return f"{code} {message}".strip()


def refund_state(outcome_code: str) -> ChannelRefundStatus:
    if outcome_code == RESP_OK:
        return ChannelRefundStatus.SUCCEEDED
    if outcome_code in RESP_UNKNOWN:
        return ChannelRefundStatus.PROCESSING
    return ChannelRefundStatus.ABNORMAL


def refund_status(fields: Mapping[str, str], *, outcome_code: str) -> RefundStatus:
    status = refund_state(outcome_code)
    done = status is ChannelRefundStatus.SUCCEEDED
    return RefundStatus(
        refund_id=our_id(fields),
        status=status,
        amount_fen=_amount(fields),
        channel_refund_id=fields.get("queryId") or None,
        succeeded_at=parse_txn_time(_field(fields, "txnTime")) if done else None,
        raw=dict(fields),
    )
