"""The sandbox's in-memory Alipay: apps, trades, refunds, payment codes and bills.

No HTTP and no threads here: the ASGI app calls these methods under one lock and gets back
`_response` contents and the notifications to send. Rules and codes follow the API pages
cited in `cloudpay.channels.alipay.transformers`; where Alipay's pages are silent we chose,
and say so next to the choice.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from cloudpay.channels.alipay import wire
from cloudpay.channels.alipay.bill import render_trade_bill
from cloudpay.channels.alipay.sandbox.bills import SANDBOX_BUYER_LOGON_ID, BillTamper, bill_rows
from cloudpay.channels.alipay.sandbox.grants import sandbox_user_id
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import Clock

# Notification retries after a failed attempt, in sandbox seconds: 4m,10m,10m,1h,2h,6h,15h —
# "25 小时以内完成 8 次通知" (https://opendocs.alipay.com/open/270/105902).
RETRY_SCHEDULE_S: tuple[int, ...] = (240, 600, 600, 3600, 7200, 21600, 54000)
PAY_OUTCOMES = frozenset({"success", "fail", "timeout", "pay_twice"})
MICROPAY_OUTCOMES = frozenset({"success", "password_pending", "insufficient_balance"})
FAULT_KINDS = frozenset({"timeout", "server_error", "bad_signature"})
DEFAULT_FEE_RATE_BP = 60  # 0.6%, the common offline rate (服务费)
DEFAULT_ORDER_LIFETIME = timedelta(minutes=90)  # Alipay's default timeout_express is 90m
MAX_DUPLICATE_NOTIFICATIONS = 10
MAX_BILLS_KEPT = 256
BILL_URL_LIFETIME = timedelta(seconds=30)  # "下载地址 30 秒后失效"
_AUTH_CODE = re.compile(r"(2[5-9]|30)\d{14,22}")  # 付款码: 25–30 then 14–22 digits
_OUT_NO = re.compile(r"[0-9A-Za-z_\-]{1,64}")


class AlipayError(Exception):
    """A refusal in Alipay's `_response` shape: code, msg, sub_code, sub_msg."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "40001": "Missing Required Arguments",
        "40002": "Invalid Arguments",
        "40004": "Business Failed",
        "20000": "Service Currently Unavailable",
    }

    def __init__(self, code: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg

    def content(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.MESSAGES.get(self.code, "Failed"),
                "sub_code": self.sub_code, "sub_msg": self.sub_msg}  # fmt: skip


def business(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40004", sub_code, sub_msg)


def invalid(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40002", sub_code, sub_msg)


class CustomerRefused(Exception):
    """The simulated customer could not do what was asked (unknown trade, already paid…)."""


@dataclass(frozen=True)
class App:
    app_id: str
    public_key_pem: str = field(repr=False)  # verifies the app's request signatures
    seller_id: str  # the merchant's Alipay account (2088…) the app collects for


@dataclass(frozen=True)
class Refund:
    out_request_no: str
    amount_fen: int
    at: datetime
    reason: str


@dataclass
class Trade:
    app: App
    out_trade_no: str
    trade_no: str
    api_method: str
    total_fen: int
    subject: str
    notify_url: str | None
    passback: str | None
    fingerprint: str
    created_at: datetime
    expires_at: datetime
    buyer_id: str | None = None
    status: str = "WAIT_BUYER_PAY"
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    failed_attempts: int = 0
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded_fen(self) -> int:
        return sum(refund.amount_fen for refund in self.refunds.values())


@dataclass(frozen=True)
class Notice:
    """An async notification to deliver: its unsigned parameters, where, when, how often."""

    url: str
    params: dict[str, str]
    out_trade_no: str
    delay_s: float = 0.0
    copies: int = 1


def _text(biz: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = biz.get(name)
    if value in (None, ""):
        if required:
            raise AlipayError("40001", f"isv.missing-{name.replace('_', '-')}", f"缺少{name}")
        return None
    if not isinstance(value, str):
        raise invalid("isv.invalid-parameter", f"{name} must be a string")
    return value


def _amount(biz: dict[str, Any], name: str) -> int:
    text = _text(biz, name)
    try:
        amount = wire.fen(str(text))
    except wire.WireFormatError:
        raise invalid("isv.invalid-parameter", f"{name} 金额格式错误") from None
    if amount <= 0:
        raise invalid("isv.invalid-parameter", f"{name} 必须大于0")
    return amount


class SandboxState:
    def __init__(
        self,
        *,
        clock: Clock,
        fee_rate_bp: int = DEFAULT_FEE_RATE_BP,
        refund_window: timedelta | None = None,
    ) -> None:
        self.clock, self.fee_rate_bp, self.refund_window = clock, fee_rate_bp, refund_window
        self.lock = threading.RLock()
        self._apps: dict[str, App] = {}
        self._trades: dict[tuple[str, str], Trade] = {}
        self._auth_codes: dict[str, str] = {}
        self._bills: OrderedDict[str, tuple[bytes, datetime]] = OrderedDict()
        self._faults: list[str] = []
        self._bill_tampering: dict[str, BillTamper] = {}
        self.available = True

    # ------------------------------------------------------------ apps, faults

    def add_app(self, app: App) -> None:
        with self.lock:
            self._apps[app.app_id] = app

    def app(self, app_id: str) -> App | None:
        with self.lock:
            return self._apps.get(app_id)

    def inject_fault(self, kind: str, count: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault must be one of {sorted(FAULT_KINDS)}")
        if not 1 <= count <= 100:
            raise ValueError("count must be between 1 and 100")
        with self.lock:
            self._faults.extend([kind] * count)

    def take_fault(self) -> str | None:
        with self.lock:
            return self._faults.pop(0) if self._faults else None

    def register_auth_code(self, auth_code: str, outcome: str) -> None:
        if outcome not in MICROPAY_OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(MICROPAY_OUTCOMES)}")
        if not _AUTH_CODE.fullmatch(auth_code):
            raise ValueError("a payment code is 25–30 followed by 14–22 digits")
        with self.lock:
            self._auth_codes[auth_code] = outcome

    # ------------------------------------------------------------ creating trades

    def create_trade(
        self, app: App, api_method: str, biz: dict[str, Any], notify_url: str | None
    ) -> Trade:
        """precreate / create / wap.pay: a WAIT_BUYER_PAY trade, or the same one again."""
        out_trade_no = str(_text(biz, "out_trade_no"))
        if not _OUT_NO.fullmatch(out_trade_no):
            raise invalid("isv.invalid-parameter", "out_trade_no 格式错误")
        total_fen, subject = _amount(biz, "total_amount"), str(_text(biz, "subject"))
        buyer_id = _text(biz, "buyer_id", required=False) or _text(
            biz, "buyer_open_id", required=False
        )
        if api_method == "alipay.trade.create" and buyer_id is None:
            raise AlipayError("40001", "isv.missing-buyer-id", "缺少买家ID")
        fingerprint = json.dumps([api_method, total_fen, subject, buyer_id], ensure_ascii=False)
        with self.lock:
            existing = self._trades.get((app.app_id, out_trade_no))
            if existing is not None:
                return self._repeat(existing, fingerprint)
            now = self.clock.now()
            trade = Trade(
                app=app,
                out_trade_no=out_trade_no,
                trade_no=self._trade_no(now),
                api_method=api_method,
                total_fen=total_fen,
                subject=subject,
                notify_url=notify_url,
                passback=_text(biz, "passback_params", required=False),
                fingerprint=fingerprint,
                created_at=now,
                expires_at=self._expiry(biz, now),
                buyer_id=buyer_id,
            )
            self._trades[(app.app_id, out_trade_no)] = trade
            return trade

    def _repeat(self, trade: Trade, fingerprint: str) -> Trade:
        if trade.fingerprint != fingerprint:
            raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        if trade.status == "TRADE_SUCCESS":
            raise business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if trade.status != "WAIT_BUYER_PAY":
            raise business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        return trade

    def _expiry(self, biz: dict[str, Any], now: datetime) -> datetime:
        text = _text(biz, "time_expire", required=False)
        if text is None:
            return now + DEFAULT_ORDER_LIFETIME
        try:
            return wire.parse_beijing_time(text)
        except wire.WireFormatError:
            raise invalid("isv.invalid-parameter", "time_expire 格式错误") from None

    def _trade_no(self, now: datetime) -> str:
        return f"{business_date(now):%Y%m%d}2200{secrets.randbelow(10**16):016d}"

    def pay_with_code(
        self, app: App, biz: dict[str, Any], notify_url: str | None
    ) -> tuple[dict[str, Any], list[Notice]]:
        """trade.pay (scene bar_code): the payment code's registered outcome decides."""
        if biz.get("scene") not in ("bar_code", "security_code"):
            raise invalid("isv.invalid-parameter", "scene 必须为 bar_code")
        auth_code = str(_text(biz, "auth_code"))
        if not _AUTH_CODE.fullmatch(auth_code):
            raise business("ACQ.PAYMENT_AUTH_CODE_INVALID", "付款码无效，请重新扫码")
        with self.lock:
            outcome = self._auth_codes.pop(auth_code, "success")
            if outcome == "insufficient_balance":
                raise business("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")
            trade = self.create_trade(app, "alipay.trade.pay", biz, notify_url)
            trade.buyer_id = trade.buyer_id or sandbox_user_id(app.app_id)
            if outcome == "password_pending":
                pending = {"code": wire.PENDING_CODE, "msg": "Order success pay inprocess"}
                return {**pending, **self.pay_view(trade)}, []
            notices = self._settle(trade, copies=1, delay_s=0.0)
            return self.pay_view(trade), notices

    # ------------------------------------------------------------ the simulated customer

    def customer_pay(
        self,
        out_trade_no: str,
        outcome: str,
        *,
        app_id: str | None = None,
        notify_delay_s: float = 0.0,
        duplicate_notifications: int = 0,
    ) -> tuple[dict[str, Any], list[Notice]]:
        """`success` pays (TRADE_SUCCESS notified), `fail` is a failed attempt (the trade
        stays WAIT_BUYER_PAY, as Alipay lets the payer retry, and nothing is notified),
        `timeout` walks away, `pay_twice` pays and the notification arrives twice."""
        if outcome not in PAY_OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(PAY_OUTCOMES)}")
        if not 0 <= duplicate_notifications <= MAX_DUPLICATE_NOTIFICATIONS:
            raise ValueError(f"duplicate_notifications must be 0..{MAX_DUPLICATE_NOTIFICATIONS}")
        with self.lock:
            trade = self._customer_trade(out_trade_no, app_id)
            self._expire(trade)
            if trade.status != "WAIT_BUYER_PAY":
                raise CustomerRefused(f"trade {out_trade_no} is {trade.status}")
            notices: list[Notice] = []
            if outcome == "fail":
                trade.failed_attempts += 1
            elif outcome in ("success", "pay_twice"):
                trade.buyer_id = trade.buyer_id or sandbox_user_id(trade.app.app_id)
                copies = 1 + duplicate_notifications + (outcome == "pay_twice")
                notices = self._settle(trade, copies=copies, delay_s=notify_delay_s)
            return {"out_trade_no": out_trade_no, "outcome": outcome,
                    "trade_status": trade.status, "trade_no": trade.trade_no}, notices  # fmt: skip

    def _customer_trade(self, out_trade_no: str, app_id: str | None) -> Trade:
        found = [
            t for (app, number), t in self._trades.items()
            if number == out_trade_no and app_id in (None, app)
        ]  # fmt: skip
        if len(found) != 1:
            raise CustomerRefused(f"no single trade {out_trade_no!r}")
        return found[0]

    def _settle(self, trade: Trade, *, copies: int, delay_s: float) -> list[Notice]:
        trade.status, trade.paid_at = "TRADE_SUCCESS", self.clock.now()
        return self._notices(trade, copies=copies, delay_s=delay_s)

    def _notices(
        self, trade: Trade, *, copies: int = 1, delay_s: float = 0.0, refund: Refund | None = None
    ) -> list[Notice]:
        if not trade.notify_url:
            return []
        params = self.notification_params(trade, refund)
        return [Notice(trade.notify_url, params, trade.out_trade_no, delay_s, copies)]

    def notification_params(self, trade: Trade, refund: Refund | None) -> dict[str, str]:
        """The trade as Alipay notifies it now (https://opendocs.alipay.com/open/203/105286)."""
        now = self.clock.now()
        params = {
            "notify_time": wire.beijing_time(now),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "app_id": trade.app.app_id,
            "charset": wire.CHARSET,
            "version": wire.VERSION,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_id": trade.buyer_id or "",
            "seller_id": trade.app.seller_id,
            "trade_status": trade.status,
            "total_amount": wire.yuan(trade.total_fen),
            "receipt_amount": wire.yuan(trade.total_fen),
            "buyer_pay_amount": wire.yuan(trade.total_fen),
            "subject": trade.subject,
            "gmt_create": wire.beijing_time(trade.created_at),
            "passback_params": trade.passback or "",
        }
        if trade.paid_at:
            params["gmt_payment"] = wire.beijing_time(trade.paid_at)
        if trade.closed_at:
            params["gmt_close"] = wire.beijing_time(trade.closed_at)
        if trade.refunds:
            last = refund or max(trade.refunds.values(), key=lambda r: r.at)
            params["refund_fee"] = wire.yuan(trade.refunded_fen)
            params["gmt_refund"] = wire.beijing_time(last.at)
        if refund is not None:
            params["out_biz_no"] = refund.out_request_no
        return {key: value for key, value in params.items() if value}

    # ------------------------------------------------------------ reading, closing

    def trade(self, app: App, biz: dict[str, Any]) -> Trade:
        out_trade_no = _text(biz, "out_trade_no", required=False)
        trade_no = _text(biz, "trade_no", required=False)
        if out_trade_no is None and trade_no is None:
            raise AlipayError(
                "40001", "isv.missing-out-trade-no", "out_trade_no和trade_no不能同时为空"
            )
        with self.lock:
            if out_trade_no is not None:
                found = self._trades.get((app.app_id, out_trade_no))
            else:
                found = next(
                    (t for t in self._trades.values() if t.app == app and t.trade_no == trade_no),
                    None,
                )
            if found is None or (trade_no is not None and found.trade_no != trade_no):
                raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
            self._expire(found)
            return found

    def _expire(self, trade: Trade) -> None:
        """Time-driven transitions, applied when the trade is next touched (so the sandbox
        sends no TRADE_FINISHED notification): unpaid past time_expire closes; paid past the
        refund window (退款期, a product setting) finishes and can no longer be refunded."""
        now = self.clock.now()
        if trade.status == "WAIT_BUYER_PAY" and now >= trade.expires_at:
            trade.status, trade.closed_at = "TRADE_CLOSED", trade.expires_at
        window, paid_at = self.refund_window, trade.paid_at
        if trade.status == "TRADE_SUCCESS" and window and paid_at and now >= paid_at + window:
            trade.status = "TRADE_FINISHED"

    def query_view(self, trade: Trade) -> dict[str, Any]:
        view: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": wire.yuan(trade.total_fen),
            "buyer_logon_id": SANDBOX_BUYER_LOGON_ID if trade.buyer_id else None,
            "buyer_user_id": trade.buyer_id,
        }
        if trade.paid_at is not None:
            view["send_pay_date"] = wire.beijing_time(trade.paid_at)
            view["receipt_amount"] = wire.yuan(trade.total_fen)
            view["buyer_pay_amount"] = wire.yuan(trade.total_fen)
        return {key: value for key, value in view.items() if value is not None}

    def pay_view(self, trade: Trade) -> dict[str, Any]:
        view = self.query_view(trade)
        view.pop("trade_status")
        if trade.paid_at is not None:
            view["gmt_payment"] = view.pop("send_pay_date")
        return view

    def close(self, app: App, biz: dict[str, Any]) -> tuple[dict[str, Any], list[Notice]]:
        with self.lock:
            trade = self.trade(app, biz)
            if trade.status != "WAIT_BUYER_PAY":
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.status, trade.closed_at = "TRADE_CLOSED", self.clock.now()
            # TRADE_CLOSED is notified by default (open/203/105286, 通知触发条件).
            view = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
            return view, self._notices(trade)

    def cancel(self, app: App, biz: dict[str, Any]) -> tuple[dict[str, Any], list[Notice]]:
        """trade.cancel: closes an unpaid trade, refunds the rest of a paid one."""
        with self.lock:
            trade = self.trade(app, biz)
            action, notices = "close", []
            if trade.status == "WAIT_BUYER_PAY":
                trade.status, trade.closed_at = "TRADE_CLOSED", self.clock.now()
                notices = self._notices(trade)
            elif trade.status == "TRADE_SUCCESS":
                rest = trade.total_fen - trade.refunded_fen
                number = f"cancel_{trade.trade_no}"
                trade.refunds[number] = Refund(number, rest, self.clock.now(), "撤销")
                trade.status, trade.closed_at, action = "TRADE_CLOSED", self.clock.now(), "refund"
                notices = self._notices(trade)
            elif trade.paid_at is not None:
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            view = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                    "retry_flag": "N", "action": action}  # fmt: skip
            return view, notices

    # ------------------------------------------------------------ refunds

    def refund(self, app: App, biz: dict[str, Any]) -> tuple[dict[str, Any], list[Notice]]:
        amount_fen = _amount(biz, "refund_amount")
        # Without out_request_no Alipay refunds in full at most once; we require it.
        number = str(_text(biz, "out_request_no"))
        with self.lock:
            trade = self.trade(app, biz)
            previous = trade.refunds.get(number)
            if previous is not None:
                if previous.amount_fen != amount_fen:
                    raise business("ACQ.DISCORDANT_REPEAT_REQUEST", "退款请求号重复但金额不一致")
                return self._refund_view(trade, previous, fund_change=False), []
            if trade.status == "TRADE_FINISHED":
                raise business("ACQ.TRADE_HAS_FINISHED", "交易已完结")
            if trade.status != "TRADE_SUCCESS":
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if amount_fen > trade.total_fen - trade.refunded_fen:
                raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            refund = Refund(
                number, amount_fen, self.clock.now(), str(biz.get("refund_reason") or "")
            )
            trade.refunds[number] = refund
            if trade.refunded_fen == trade.total_fen:
                trade.status, trade.closed_at = "TRADE_CLOSED", refund.at
            notices = self._notices(trade, refund=refund)
            return self._refund_view(trade, refund, fund_change=True), notices

    def _refund_view(self, trade: Trade, refund: Refund, *, fund_change: bool) -> dict[str, Any]:
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": SANDBOX_BUYER_LOGON_ID,
            "buyer_user_id": trade.buyer_id,
            "fund_change": "Y" if fund_change else "N",
            "refund_fee": wire.yuan(trade.refunded_fen),
            "gmt_refund_pay": wire.beijing_time(refund.at),
        }

    def refund_query(self, app: App, biz: dict[str, Any]) -> dict[str, Any]:
        number = str(_text(biz, "out_request_no"))
        with self.lock:
            trade = self.trade(app, biz)
            view: dict[str, Any] = {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}
            refund = trade.refunds.get(number)
            if refund is None:  # Alipay answers 10000 without refund fields: not refunded
                return view
            view.update(
                out_request_no=number,
                total_amount=wire.yuan(trade.total_fen),
                refund_amount=wire.yuan(refund.amount_fen),
                refund_status="REFUND_SUCCESS",
            )
            if "gmt_refund_pay" in (biz.get("query_options") or []):
                view["gmt_refund_pay"] = wire.beijing_time(refund.at)
            return view

    # ------------------------------------------------------------ bills

    def bill(self, app: App, biz: dict[str, Any]) -> bytes:
        if biz.get("bill_type") != "trade":
            raise invalid("isv.invalid-parameter", "sandbox bills are bill_type=trade only")
        try:
            bill_date = date.fromisoformat(str(_text(biz, "bill_date")))
        except ValueError:
            raise invalid("isv.invalid-parameter", "bill_date 格式为 yyyy-MM-dd") from None
        now = self.clock.now()
        # Alipay publishes a day's bill the next morning; the sandbox also serves today's.
        if bill_date > business_date(now):
            raise business("isp.bill_not_exist", "账单不存在")
        with self.lock:
            trades = list(self._trades.values())
            rows = bill_rows(trades, app, bill_date, self.fee_rate_bp, self._bill_tampering)
        return render_trade_bill(
            account=app.seller_id, bill_date=bill_date, rows=rows, exported_at=now
        )

    def tamper_bill(self, out_trade_no: str, tamper: BillTamper) -> None:
        with self.lock:
            self._bill_tampering[out_trade_no] = tamper

    def keep_bill(self, data: bytes) -> str:
        token = secrets.token_urlsafe(16)
        with self.lock:
            self._bills[token] = (data, self.clock.now() + BILL_URL_LIFETIME)
            while len(self._bills) > MAX_BILLS_KEPT:
                self._bills.popitem(last=False)
        return token

    def kept_bill(self, token: str) -> bytes | None:
        with self.lock:
            kept = self._bills.get(token)
        if kept is None or kept[1] < self.clock.now():
            return None
        return kept[0]
