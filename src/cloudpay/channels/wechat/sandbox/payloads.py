"""JSON in and out of the sandbox, in WeChat Pay v3's shapes.

Requests are checked the way WeChat does (required fields, types, lengths) and refused with
400 PARAM_ERROR naming the field; answers and notification resources carry the fields of the
v3 references (order query https://pay.weixin.qq.com/doc/v3/merchant/4013070356, refunds
https://pay.weixin.qq.com/doc/v3/merchant/4012587971, payment notification
https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_4_5.shtml).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cloudpay.channels.wechat.bill import TradeBillRow
from cloudpay.channels.wechat.sandbox.state import (
    FEE_RATE_BASIS_POINTS,
    CreateCommand,
    Merchant,
    Order,
    Refund,
    RefundCommand,
    WeChatError,
)
from cloudpay.channels.wechat.transformers import format_time, parse_time

_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-*|]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-*|@]{1,64}")
_URL = re.compile(r"https?://[^\s?#]+")  # notify_url: no query string allowed
TRADE_STATE_DESC = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "未支付",
    "CLOSED": "已关闭",
    "USERPAYING": "用户支付中",
    "PAYERROR": "支付失败(其他原因，如银行返回失败)",
    "REVOKED": "已撤销",
}


def param_error(field: str, issue: str) -> WeChatError:
    return WeChatError(
        400, "PARAM_ERROR", f"参数错误: {field} {issue}", {"field": field, "location": "body"}
    )


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise WeChatError(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
    if not isinstance(body, dict):
        raise WeChatError(400, "PARAM_ERROR", "请求体必须是JSON对象")
    return body


def _text(
    body: Mapping[str, Any], field: str, *, max_chars: int, required: bool = True
) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise param_error(f"/{field}", "is required")
        return None
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise param_error(f"/{field}", f"must be a string of 1..{max_chars} characters")
    return value


def _must(body: Mapping[str, Any], field: str, max_chars: int = 64) -> str:
    return str(_text(body, field, max_chars=max_chars))


def _amount(body: Mapping[str, Any], *fields: str) -> tuple[dict[str, int], str]:
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise param_error("/amount", "is required")
    values: dict[str, int] = {}
    for field in fields:
        value = amount.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise param_error(f"/amount/{field}", "must be a positive integer (fen)")
        values[field] = value
    currency = amount.get("currency", "CNY")
    if currency != "CNY":
        raise param_error("/amount/currency", "must be CNY")
    return values, currency


def _check_caller(merchant: Merchant, body: Mapping[str, Any], partner: bool) -> None:
    caller = _must(body, "sp_mchid" if partner else "mchid", 32)
    if caller != merchant.mchid:
        raise param_error("/sp_mchid" if partner else "/mchid", "differs from the caller")
    if partner:
        sub_mchid = _must(body, "sub_mchid", 32)
        if sub_mchid not in merchant.sub_mchids:
            raise WeChatError(403, "NO_AUTH", "服务商与特约商户未建立受理关系")


def parse_create(
    merchant: Merchant, raw: bytes, *, trade_type: str, partner: bool
) -> CreateCommand:
    body = parse_json(raw)
    _check_caller(merchant, body, partner)
    appid = _must(body, "sp_appid" if partner else "appid", 32)
    if appid not in merchant.appids:
        raise WeChatError(400, "APPID_MCHID_NOT_MATCH", "appid和mchid不匹配")
    out_trade_no = _must(body, "out_trade_no", 32)
    if not _OUT_TRADE_NO.fullmatch(out_trade_no):
        raise param_error("/out_trade_no", "must be 6..32 of [0-9A-Za-z_-*|]")
    notify_url = _must(body, "notify_url", 255)
    if not _URL.fullmatch(notify_url):
        raise param_error("/notify_url", "must be an http(s) URL without a query")
    amounts, currency = _amount(body, "total")
    expire_text = _text(body, "time_expire", max_chars=64, required=False)
    return CreateCommand(
        trade_type=trade_type,
        appid=appid,
        sub_mchid=str(body["sub_mchid"]) if partner else None,
        sub_appid=_text(body, "sub_appid", max_chars=32, required=False) if partner else None,
        description=_must(body, "description", 127),
        out_trade_no=out_trade_no,
        notify_url=notify_url,
        total_fen=amounts["total"],
        currency=currency,
        time_expire=_expire(expire_text),
        attach=_text(body, "attach", max_chars=128, required=False) or "",
        payer=_payer(body, trade_type),
        fingerprint=json.dumps(body, sort_keys=True, ensure_ascii=False),
    )


def _expire(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise param_error(
            "/time_expire", "must be RFC 3339, e.g. 2026-01-01T10:00:00+08:00"
        ) from None


def _payer(body: Mapping[str, Any], trade_type: str) -> dict[str, str] | None:
    payer = body.get("payer")
    if trade_type != "JSAPI":
        return None
    if not isinstance(payer, dict) or not payer:
        raise param_error("/payer", "is required for JSAPI")
    ids = {key: value for key, value in payer.items() if key.endswith("openid")}
    if len(ids) != 1 or not all(isinstance(value, str) and value for value in ids.values()):
        raise param_error("/payer/openid", "one openid / sp_openid / sub_openid is required")
    return {str(key): str(value) for key, value in ids.items()}


def parse_codepay(merchant: Merchant, raw: bytes, *, partner: bool) -> CreateCommand:
    """A payment-code payment (付款码支付); `notify_url` is a sandbox extension (optional)."""
    body = parse_json(raw)
    _check_caller(merchant, body, partner)
    appid = _must(body, "sp_appid" if partner else "appid", 32)
    if appid not in merchant.appids:
        raise WeChatError(400, "APPID_MCHID_NOT_MATCH", "appid和mchid不匹配")
    out_trade_no = _must(body, "out_trade_no", 32)
    if not _OUT_TRADE_NO.fullmatch(out_trade_no):
        raise param_error("/out_trade_no", "must be 6..32 of [0-9A-Za-z_-*|]")
    payer, scene_info = body.get("payer"), body.get("scene_info")
    if not isinstance(payer, dict):
        raise param_error("/payer", "is required")
    if not isinstance(scene_info, dict):
        raise param_error("/scene_info", "is required")
    notify_url = _text(body, "notify_url", max_chars=255, required=False)
    if notify_url is not None and not _URL.fullmatch(notify_url):
        raise param_error("/notify_url", "must be an http(s) URL without a query")
    amounts, currency = _amount(body, "total")
    return CreateCommand(
        trade_type="MICROPAY",
        appid=appid,
        sub_mchid=str(body["sub_mchid"]) if partner else None,
        sub_appid=_text(body, "sub_appid", max_chars=32, required=False) if partner else None,
        description=_must(body, "description", 127),
        out_trade_no=out_trade_no,
        notify_url=notify_url or "",
        total_fen=amounts["total"],
        currency=currency,
        time_expire=None,
        attach=_text(body, "attach", max_chars=128, required=False) or "",
        payer=None,
        fingerprint=json.dumps(body, sort_keys=True, ensure_ascii=False),
        auth_code=_must(payer, "auth_code", 128),
        device_id=_must(scene_info, "device_id", 32),
    )


def parse_reverse(merchant: Merchant, raw: bytes, *, partner: bool) -> str | None:
    """The caller of a reverse (撤销); the sub-merchant in partner mode."""
    body = parse_json(raw)
    _check_caller(merchant, body, partner)
    appid = _text(body, "sp_appid" if partner else "appid", max_chars=32, required=not partner)
    if appid is not None and appid not in merchant.appids:
        raise WeChatError(400, "APPID_MCHID_NOT_MATCH", "appid和mchid不匹配")
    return str(body["sub_mchid"]) if partner else None


def parse_close(merchant: Merchant, raw: bytes, *, partner: bool) -> str | None:
    body = parse_json(raw)
    _check_caller(merchant, body, partner)
    return str(body["sub_mchid"]) if partner else None


def parse_refund(merchant: Merchant, raw: bytes) -> RefundCommand:
    body = parse_json(raw)
    sub_mchid = _text(body, "sub_mchid", max_chars=32, required=False)
    if sub_mchid is not None and sub_mchid not in merchant.sub_mchids:
        raise WeChatError(403, "NO_AUTH", "服务商与特约商户未建立受理关系")
    out_trade_no = _text(body, "out_trade_no", max_chars=32, required=False)
    transaction_id = _text(body, "transaction_id", max_chars=32, required=False)
    if (out_trade_no is None) == (transaction_id is None):
        raise param_error("/out_trade_no", "give exactly one of out_trade_no, transaction_id")
    out_refund_no = _must(body, "out_refund_no", 64)
    if not _OUT_REFUND_NO.fullmatch(out_refund_no):
        raise param_error("/out_refund_no", "must be 1..64 of [0-9A-Za-z_-*|@]")
    amounts, currency = _amount(body, "refund", "total")
    notify_url = _text(body, "notify_url", max_chars=255, required=False)
    if notify_url is not None and not _URL.fullmatch(notify_url):
        raise param_error("/notify_url", "must be an http(s) URL without a query")
    return RefundCommand(
        sub_mchid=sub_mchid,
        out_trade_no=out_trade_no,
        transaction_id=transaction_id,
        out_refund_no=out_refund_no,
        refund_fen=amounts["refund"],
        total_fen=amounts["total"],
        currency=currency,
        reason=_text(body, "reason", max_chars=80, required=False) or "",
        notify_url=notify_url,
    )


def parse_bill_date(text: str | None, today: date) -> date:
    try:
        bill_date = date.fromisoformat(text or "")
    except ValueError:
        raise WeChatError(400, "PARAM_ERROR", "bill_date格式应为yyyy-MM-DD") from None
    if bill_date > today:
        raise WeChatError(400, "INVALID_REQUEST", "账单日期不能晚于今天")
    return bill_date


# ---------------------------------------------------------------- answers


def _caller_view(order: Order) -> dict[str, str]:
    command = order.command
    if command.sub_mchid is None:
        return {"appid": command.appid, "mchid": order.mchid}
    view = {"sp_appid": command.appid, "sp_mchid": order.mchid, "sub_mchid": command.sub_mchid}
    if command.sub_appid:
        view["sub_appid"] = command.sub_appid
    return view


def _payer_view(order: Order) -> dict[str, str]:
    if order.command.payer:
        return dict(order.command.payer)
    if order.openid is None:
        return {}
    key = "openid" if order.command.sub_mchid is None else "sp_openid"
    return {key: order.openid}


def reverse_view(order: Order) -> dict[str, Any]:
    """The answer of a reverse: who, and which order."""
    return {**_caller_view(order), "out_trade_no": order.out_trade_no}


def transaction_view(order: Order) -> dict[str, Any]:
    """The order as the query API and the TRANSACTION.* resource show it."""
    command, paid = order.command, order.success_at is not None
    view: dict[str, Any] = {
        **_caller_view(order),
        "out_trade_no": command.out_trade_no,
        "trade_type": command.trade_type,
        "trade_state": order.trade_state,
        "trade_state_desc": TRADE_STATE_DESC.get(order.trade_state, order.trade_state),
        "attach": command.attach,
        "amount": {"total": command.total_fen, "currency": command.currency},
    }
    payer = _payer_view(order)
    if payer:
        view["payer"] = payer
    if paid and order.success_at is not None:
        view["transaction_id"] = order.transaction_id
        view["bank_type"] = "OTHERS"
        view["success_time"] = format_time(order.success_at)
        view["amount"].update(payer_total=command.total_fen, payer_currency=command.currency)
        view["promotion_detail"] = []
    return view


def refund_view(refund: Refund, now: datetime) -> dict[str, Any]:
    """A refund as the refund create and query APIs answer."""
    status, command = refund.status(now), refund.command
    view: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "out_refund_no": command.out_refund_no,
        "transaction_id": refund.order.transaction_id,
        "out_trade_no": refund.order.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": format_time(refund.created_at),
        "status": status,
        "funds_account": "AVAILABLE",
        "amount": _refund_amount(refund),
        "promotion_detail": [],
    }
    if status == "SUCCESS":
        view["success_time"] = format_time(refund.settles_at)
    return view


def _refund_amount(refund: Refund) -> dict[str, Any]:
    total, amount = refund.order.command.total_fen, refund.command.refund_fen
    return {
        "total": total,
        "refund": amount,
        "payer_total": total,
        "payer_refund": amount,
        "settlement_total": total,
        "settlement_refund": amount,
        "discount_refund": 0,
        "refund_fee": 0,
        "currency": refund.command.currency,
    }


def refund_resource(refund: Refund) -> dict[str, Any]:
    """The REFUND.SUCCESS resource (decrypted), sent when the refund settles."""
    order = refund.order
    caller = (
        {"mchid": order.mchid}
        if order.command.sub_mchid is None
        else {"sp_mchid": order.mchid, "sub_mchid": order.command.sub_mchid}
    )
    amount = _refund_amount(refund)
    return {
        **caller,
        "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id,
        "out_refund_no": refund.command.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": "SUCCESS",
        "success_time": format_time(refund.settles_at),
        "user_received_account": "支付用户零钱",
        "amount": {key: amount[key] for key in ("total", "refund", "payer_total", "payer_refund")},
    }


# ---------------------------------------------------------------- bill rows


def fee_rate_text(rate_bp: int) -> str:
    """The bill's 费率 column: basis points as a percentage, e.g. 60 → "0.60%"."""
    return f"{rate_bp // 100}.{rate_bp % 100:02d}%"


def fee_fen(amount_fen: int, rate_bp: int = FEE_RATE_BASIS_POINTS) -> int:
    """The channel fee at the merchant's contracted rate, rounded half up to the fen."""
    return (amount_fen * rate_bp + 5_000) // 10_000


def refund_fee_fen(
    order_total_fen: int, refund_fen: int, rate_bp: int = FEE_RATE_BASIS_POINTS
) -> int:
    """The fee a refund gives back: the refunded share of the fee the payment was charged,
    rounded half up once per refund. WeChat documents the negative 手续费 of a REFUND row
    (https://pay.weixin.qq.com/docs/merchant/products/bill-download/format-trade.html) but
    not its rounding; this is the rule reconciliation expects (`expected_refund_fee`) and the
    Alipay and UnionPay sandboxes bill. The rate on the refund itself would differ by a fen
    on odd amounts (75 of 150 fen: 0.45 → 0 by rate, half of the 1 fen charged → 1)."""
    charged = fee_fen(order_total_fen, rate_bp)
    return (2 * charged * refund_fen + order_total_fen) // (2 * order_total_fen)


def payment_row(order: Order, rate_bp: int = FEE_RATE_BASIS_POINTS) -> TradeBillRow:
    command = order.command
    assert order.success_at is not None, "only paid orders have a payment row"
    assert order.transaction_id is not None, "a paid order has a transaction id"
    return TradeBillRow(
        traded_at=order.success_at, appid=command.appid, mchid=order.mchid,
        sub_mchid=command.sub_mchid or "0", device_info=command.device_id,
        transaction_id=order.transaction_id,
        out_trade_no=command.out_trade_no, openid=order.openid or "",
        trade_type=command.trade_type, trade_state="SUCCESS", bank_type="OTHERS",
        currency=command.currency, settlement_total_fen=command.total_fen, coupon_fen=0,
        refund_id="0", out_refund_no="0", refund_fen=0, coupon_refund_fen=0, refund_type="",
        refund_status="", description=command.description, attach=command.attach,
        fee_yuan=Decimal(fee_fen(command.total_fen, rate_bp)) / 100,
        fee_rate=fee_rate_text(rate_bp),
        order_total_fen=command.total_fen, refund_requested_fen=0, fee_rate_note="",
    )  # fmt: skip


def revoked_row(order: Order, rate_bp: int = FEE_RATE_BASIS_POINTS) -> TradeBillRow:
    """A paid payment-code order reversed: the whole amount back to the payer (REVOKED)."""
    command = order.command
    assert order.revoked_at is not None, "only revoked orders have a revoked row"
    assert order.revoked_refund_id is not None, "a revoked paid order has a refund id"
    amount = command.total_fen
    return TradeBillRow(
        traded_at=order.revoked_at, appid=command.appid, mchid=order.mchid,
        sub_mchid=command.sub_mchid or "0", device_info=command.device_id,
        transaction_id=order.transaction_id or "", out_trade_no=command.out_trade_no,
        openid=order.openid or "", trade_type=command.trade_type, trade_state="REVOKED",
        bank_type="OTHERS", currency=command.currency, settlement_total_fen=0, coupon_fen=0,
        refund_id=order.revoked_refund_id, out_refund_no="0", refund_fen=amount,
        coupon_refund_fen=0, refund_type="ORIGINAL", refund_status="SUCCESS",
        description=command.description, attach=command.attach,
        fee_yuan=Decimal(-refund_fee_fen(amount, amount, rate_bp)) / 100,
        fee_rate=fee_rate_text(rate_bp),
        order_total_fen=0,
        refund_requested_fen=amount, fee_rate_note="",
    )  # fmt: skip


def refund_row(refund: Refund, now: datetime, rate_bp: int = FEE_RATE_BASIS_POINTS) -> TradeBillRow:
    order, command = refund.order, refund.order.command
    amount = refund.command.refund_fen
    return TradeBillRow(
        traded_at=refund.created_at, appid=command.appid, mchid=order.mchid,
        sub_mchid=command.sub_mchid or "0", device_info="",
        transaction_id=order.transaction_id or "", out_trade_no=command.out_trade_no,
        openid=order.openid or "", trade_type=command.trade_type, trade_state="REFUND",
        bank_type="OTHERS", currency=command.currency, settlement_total_fen=0, coupon_fen=0,
        refund_id=refund.refund_id, out_refund_no=refund.command.out_refund_no,
        refund_fen=amount, coupon_refund_fen=0, refund_type="ORIGINAL",
        refund_status=refund.status(now), description=command.description,
        attach=command.attach,
        fee_yuan=Decimal(-refund_fee_fen(command.total_fen, amount, rate_bp)) / 100,
        fee_rate=fee_rate_text(rate_bp), order_total_fen=0, refund_requested_fen=amount,
        fee_rate_note="",
    )  # fmt: skip
