"""The sandbox's in-memory WeChat Pay: merchants, orders, refunds and their rules.

No HTTP and no threads here: the ASGI app calls these methods under one lock and gets back
views and the notifications to send. Rules follow the v3 references quoted in `payloads.py`;
where WeChat's documents do not say which HTTP status a business error has, we chose one and
say so next to it.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.masking import Secret

FEE_RATE_BASIS_POINTS = 60  # unless told, the sandbox charges the common 0.60% rate

# Notification retry delays after a failed attempt, in sandbox seconds:
# 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (24h4m in all).
RETRY_SCHEDULE_S: tuple[int, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)  # fmt: skip
DEFAULT_ORDER_LIFETIME = timedelta(hours=2)  # an order without time_expire lives 2 hours
MAX_REFUNDS_PER_ORDER = 50  # "一笔订单最多部分退款50次"
MAX_DUPLICATE_NOTIFICATIONS = 10
MAX_BILLS_KEPT = 256
# confirm / abandon: the payer of a payment-code order left USERPAYING enters the password
# (paid) or closes the password box (PAYERROR).
PAY_OUTCOMES = frozenset({"success", "fail", "timeout", "pay_twice", "confirm", "abandon"})
FAULT_KINDS = frozenset({"timeout", "server_error", "bad_signature", "tampered_body"})
UNPAID = frozenset({"NOTPAY", "USERPAYING"})
PAYING_OUTCOMES = frozenset({"success", "pay_twice", "confirm"})
PAID = frozenset({"SUCCESS", "REFUND"})


class WeChatError(Exception):
    """An API refusal in WeChat's error shape: `{"code", "message", "detail"?}`."""

    def __init__(
        self, status: int, code: str, message: str, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


class CustomerRefused(Exception):
    """The simulated customer could not do what was asked (unknown order, already paid…)."""


@dataclass(frozen=True)
class Merchant:
    mchid: str
    appids: frozenset[str]
    apiv3_key: Secret[str] = field(repr=False)
    public_key_pem: str = field(repr=False)  # verifies the merchant's request signatures
    serial_no: str  # the merchant API certificate serial those requests name
    sub_mchids: frozenset[str] = frozenset()  # sub-merchants it may act for (服务商)
    app_secret: Secret[str] | None = field(default=None, repr=False)  # of its appid (OAuth)


@dataclass(frozen=True)
class CreateCommand:
    trade_type: str  # NATIVE | JSAPI | MICROPAY
    appid: str
    sub_mchid: str | None
    sub_appid: str | None
    description: str
    out_trade_no: str
    notify_url: str
    total_fen: int
    currency: str
    time_expire: datetime | None
    attach: str
    payer: dict[str, str] | None
    fingerprint: str  # the canonical request body: the same order is the same body
    auth_code: str | None = None  # MICROPAY: the payer's payment code
    device_id: str = ""  # MICROPAY: scene_info.device_id, the cashier's terminal


@dataclass
class Order:
    mchid: str
    command: CreateCommand
    created_at: datetime
    expires_at: datetime
    prepay_id: str
    code_url: str | None
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_at: datetime | None = None
    openid: str | None = None
    refund_keys: list[tuple[str, str, str]] = field(default_factory=list)
    # MICROPAY: (status, code, message) of the refusal a resent payment gets again
    refusal: tuple[int, str, str] | None = None
    revoked_at: datetime | None = None  # 撤销
    revoked_refund_id: str | None = None  # set when the revoked order had been paid

    @property
    def out_trade_no(self) -> str:
        return self.command.out_trade_no


@dataclass(frozen=True)
class RefundCommand:
    sub_mchid: str | None
    out_trade_no: str | None
    transaction_id: str | None
    out_refund_no: str
    refund_fen: int
    total_fen: int
    currency: str
    reason: str
    notify_url: str | None


@dataclass
class Refund:
    mchid: str
    order: Order
    command: RefundCommand
    refund_id: str
    created_at: datetime
    settles_at: datetime

    def status(self, now: datetime) -> str:
        return "SUCCESS" if now >= self.settles_at else "PROCESSING"


@dataclass(frozen=True)
class Notice:
    """A notification to deliver: the plaintext resource plus where and when."""

    url: str
    event_type: str  # TRANSACTION.SUCCESS | REFUND.SUCCESS
    original_type: str  # transaction | refund (also the AEAD associated data)
    summary: str
    order: Order
    refund: Refund | None
    delay_s: float  # sandbox seconds before the first attempt
    copies: int = 1  # > 1: the same notification (same id) delivered that many times


@dataclass(frozen=True)
class PayResult:
    out_trade_no: str
    mchid: str
    outcome: str
    trade_state: str
    transaction_id: str | None
    second_attempt: str | None
    notices: tuple[Notice, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_trade_no": self.out_trade_no,
            "mchid": self.mchid,
            "outcome": self.outcome,
            "trade_state": self.trade_state,
            "transaction_id": self.transaction_id,
            "second_attempt": self.second_attempt,
            "notifications": sum(notice.copies for notice in self.notices),
        }


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


@dataclass(frozen=True)
class BillTamper:
    """Test-only: how the trade bill misreports one paid order, so reconciliation tests can
    inject the mistakes a real channel's file can carry (the API answers stay truthful)."""

    amount_delta_fen: int = 0  # added to the order amount on its bill row
    fee_delta_fen: int = 0  # added to the fee on its bill row
    duplicate: bool = False  # the row appears twice
    traded_at: datetime | None = None  # the bill's time for it; may move it to another day


class SandboxState:
    """All sandbox data behind one lock; every public method is atomic."""

    def __init__(
        self,
        *,
        clock: Clock,
        time_scale: float,
        refund_delay_s: float,
        fee_rate_bp: int = FEE_RATE_BASIS_POINTS,
    ) -> None:
        self.clock = clock
        self.fee_rate_bp = fee_rate_bp  # the 费率 the bills charge (a contracted rate)
        self.time_scale = time_scale
        self.refund_delay_s = refund_delay_s
        self.lock = threading.RLock()
        self._merchants: dict[str, Merchant] = {}
        self._orders: dict[tuple[str, str, str], Order] = {}
        self._refunds: dict[tuple[str, str, str], Refund] = {}
        self._bills: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._faults: deque[str] = deque()
        self._bill_tampering: dict[str, BillTamper] = {}  # out_trade_no → test-only mistake
        self._sequence = 0
        self.available = True  # False: every API call answers 503 and does nothing

    # ------------------------------------------------------------ merchants, ids, faults

    def add_merchant(self, merchant: Merchant) -> None:
        with self.lock:
            self._merchants[merchant.mchid] = merchant

    def merchant(self, mchid: str) -> Merchant | None:
        with self.lock:
            return self._merchants.get(mchid)

    def merchants(self) -> list[Merchant]:
        with self.lock:
            return list(self._merchants.values())

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def set_available(self, available: bool) -> None:
        with self.lock:
            self.available = available

    def new_refund_id(self, now: datetime) -> str:
        with self.lock:
            return f"50{self._next():09d}{self._stamp(now)}{_digits(10)}"

    def _stamp(self, now: datetime) -> str:
        return now.astimezone(SHANGHAI).strftime("%Y%m%d")

    def inject_fault(self, kind: str, count: int = 1) -> None:
        if kind not in FAULT_KINDS or not 1 <= count <= 1000:
            raise ValueError(f"fault kind is one of {sorted(FAULT_KINDS)}, count 1..1000")
        with self.lock:
            self._faults.extend([kind] * count)

    def take_fault(self) -> str | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def tamper_bill(self, out_trade_no: str, tamper: BillTamper) -> None:
        with self.lock:
            self._bill_tampering[out_trade_no] = tamper

    def bill_tamper(self, out_trade_no: str) -> BillTamper | None:
        with self.lock:
            return self._bill_tampering.get(out_trade_no)

    def _bill_time(self, order: Order) -> datetime | None:
        tamper = self._bill_tampering.get(order.out_trade_no)
        return tamper.traded_at if tamper and tamper.traded_at else order.success_at

    # ------------------------------------------------------------ orders

    def _refresh(self, order: Order, now: datetime) -> None:
        # WeChat closes an unpaid order once its time_expire has passed.
        if order.trade_state in UNPAID and now > order.expires_at:
            order.trade_state = "CLOSED"

    def create_order(self, merchant: Merchant, command: CreateCommand) -> Order:
        key = (merchant.mchid, command.sub_mchid or "", command.out_trade_no)
        with self.lock:
            now = self.clock.now()
            existing = self._orders.get(key)
            if existing is not None:
                return self._repeat_create(existing, command, now)
            sequence = self._next()
            prepay_id = f"wx{now.astimezone(SHANGHAI):%Y%m%d%H%M%S}{secrets.token_hex(10)}"
            code_url = (
                f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}{sequence}"
                if command.trade_type == "NATIVE"
                else None
            )
            order = Order(
                mchid=merchant.mchid,
                command=command,
                created_at=now,
                expires_at=command.time_expire or now + DEFAULT_ORDER_LIFETIME,
                prepay_id=prepay_id,
                code_url=code_url,
            )
            self._orders[key] = order
            return order

    def _repeat_create(self, order: Order, command: CreateCommand, now: datetime) -> Order:
        self._refresh(order, now)
        if order.trade_state in PAID:
            raise WeChatError(400, "ORDERPAID", "该订单已支付")  # status: our choice
        if order.trade_state == "CLOSED":
            raise WeChatError(400, "ORDER_CLOSED", "订单已关闭，请重新下单")
        if order.command.fingerprint != command.fingerprint:
            raise WeChatError(403, "OUT_TRADE_NO_USED", "商户订单号重复，且下单参数与原订单不一致")
        return order  # same parameters: the same prepay_id / code_url again

    def refresh(self, order: Order) -> None:
        """Apply what time did to an order (expiry) before answering about it."""
        with self.lock:
            self._refresh(order, self.clock.now())

    def order_at(
        self, merchant: Merchant, sub_mchid: str | None, out_trade_no: str
    ) -> Order | None:
        with self.lock:
            return self._orders.get((merchant.mchid, sub_mchid or "", out_trade_no))

    def find_order(self, merchant: Merchant, sub_mchid: str | None, out_trade_no: str) -> Order:
        with self.lock:
            order = self._orders.get((merchant.mchid, sub_mchid or "", out_trade_no))
            if order is None:
                raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在")
            self._refresh(order, self.clock.now())
            return order

    def find_by_transaction_id(self, merchant: Merchant, transaction_id: str) -> Order:
        with self.lock:
            for order in self._orders.values():
                if order.mchid == merchant.mchid and order.transaction_id == transaction_id:
                    return order
            raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在")

    def close_order(self, merchant: Merchant, sub_mchid: str | None, out_trade_no: str) -> None:
        with self.lock:
            order = self.find_order(merchant, sub_mchid, out_trade_no)
            if order.trade_state in PAID:
                raise WeChatError(400, "ORDERPAID", "订单已支付，不能关单")  # status: our choice
            if order.trade_state == "REVOKED":
                return  # already final; a revoked paid order must keep saying so
            order.trade_state = "CLOSED"  # closing a closed order again is a no-op (204)

    # ------------------------------------------------------------ the simulated customer

    def customer_pay(
        self,
        out_trade_no: str,
        outcome: str,
        *,
        mchid: str | None = None,
        notify_delay_s: float = 0.0,
        duplicate_notifications: int = 0,
    ) -> PayResult:
        if outcome not in PAY_OUTCOMES:
            raise CustomerRefused(f"outcome is one of {sorted(PAY_OUTCOMES)}")
        if not 0 <= duplicate_notifications <= MAX_DUPLICATE_NOTIFICATIONS or notify_delay_s < 0:
            raise CustomerRefused("0..10 duplicate notifications, a delay of 0 s or more")
        with self.lock:
            order = self._customer_order(out_trade_no, mchid)
            now = self.clock.now()
            self._refresh(order, now)
            if order.trade_state not in UNPAID:
                raise CustomerRefused(f"order {out_trade_no} is {order.trade_state}")
            if (outcome in ("confirm", "abandon")) != (order.trade_state == "USERPAYING"):
                raise CustomerRefused(
                    "a USERPAYING payment-code order takes confirm or abandon, only"
                )
            if outcome in ("fail", "abandon"):
                order.trade_state = "PAYERROR"  # v3 sends no notification for a failed payment
            if outcome in PAYING_OUTCOMES:
                self.mark_paid(order, now)
            return self._pay_result(order, outcome, notify_delay_s, duplicate_notifications)

    def _customer_order(self, out_trade_no: str, mchid: str | None) -> Order:
        matches = [
            order
            for (order_mchid, _, number), order in self._orders.items()
            if number == out_trade_no and mchid in (None, order_mchid)
        ]
        if not matches:
            raise CustomerRefused(f"no order {out_trade_no!r} in the sandbox")
        if len(matches) > 1:
            raise CustomerRefused(
                f"{len(matches)} merchants have order {out_trade_no!r}: give mchid"
            )
        return matches[0]

    def mark_paid(self, order: Order, now: datetime) -> None:
        payer = order.command.payer or {}
        order.openid = next(iter(payer.values()), None) or f"o{secrets.token_urlsafe(20)[:27]}"
        order.transaction_id = f"42{self._next():08d}{self._stamp(now)}{_digits(10)}"
        order.success_at = now
        order.trade_state = "SUCCESS"  # last: the state is what readers look at first

    def _pay_result(self, order: Order, outcome: str, delay_s: float, duplicates: int) -> PayResult:
        notices: tuple[Notice, ...] = ()
        second_attempt = None
        # A payment-code order without a notify_url (the real API has none) is not notified.
        if outcome in PAYING_OUTCOMES and order.command.notify_url:
            # pay_twice: the second attempt is refused, and WeChat's answer to the confused
            # payer's retry is a second copy of the same success notification.
            copies = 1 + duplicates + (1 if outcome == "pay_twice" else 0)
            notices = (
                Notice(
                    url=order.command.notify_url,
                    event_type="TRANSACTION.SUCCESS",
                    original_type="transaction",
                    summary="支付成功",
                    order=order,
                    refund=None,
                    delay_s=delay_s,
                    copies=copies,
                ),
            )
            if outcome == "pay_twice":
                second_attempt = "refused: ORDERPAID (该订单已支付)"
        return PayResult(
            out_trade_no=order.out_trade_no,
            mchid=order.mchid,
            outcome=outcome,
            trade_state=order.trade_state,
            transaction_id=order.transaction_id,
            second_attempt=second_attempt,
            notices=notices,
        )

    # ------------------------------------------------------------ refunds

    def refund(self, merchant: Merchant, command: RefundCommand) -> tuple[Refund, list[Notice]]:
        key = (merchant.mchid, command.sub_mchid or "", command.out_refund_no)
        with self.lock:
            existing = self._refunds.get(key)
            if existing is not None:
                return self._repeat_refund(existing, command), []
            order = self._refund_order(merchant, command)
            self._check_refundable(order, command)
            now = self.clock.now()
            refund = Refund(
                mchid=merchant.mchid,
                order=order,
                command=command,
                refund_id=f"50{self._next():09d}{self._stamp(now)}{_digits(10)}",
                created_at=now,
                settles_at=now + timedelta(seconds=self.refund_delay_s * self.time_scale),
            )
            self._refunds[key] = refund
            order.refund_keys.append(key)
            order.trade_state = "REFUND"  # 转入退款
            return refund, self._refund_notices(refund)

    def _repeat_refund(self, refund: Refund, command: RefundCommand) -> Refund:
        # The same out_refund_no refunds once; resending it is how a merchant retries safely.
        same = refund.command.refund_fen == command.refund_fen and command.out_trade_no in (
            None,
            refund.order.out_trade_no,
        )
        if not same:
            raise WeChatError(400, "INVALID_REQUEST", "同一商户退款单号的退款参数与之前不一致")
        return refund

    def _refund_order(self, merchant: Merchant, command: RefundCommand) -> Order:
        try:
            if command.out_trade_no:
                return self.find_order(merchant, command.sub_mchid, command.out_trade_no)
            return self.find_by_transaction_id(merchant, str(command.transaction_id))
        except WeChatError:
            raise WeChatError(404, "RESOURCE_NOT_EXISTS", "订单不存在") from None

    def _check_refundable(self, order: Order, command: RefundCommand) -> None:
        if order.trade_state not in PAID:
            raise WeChatError(400, "INVALID_REQUEST", f"订单状态为{order.trade_state}，不能退款")
        if command.total_fen != order.command.total_fen:
            raise WeChatError(400, "INVALID_REQUEST", "订单金额与原订单金额不一致")
        if len(order.refund_keys) >= MAX_REFUNDS_PER_ORDER:
            raise WeChatError(400, "INVALID_REQUEST", "一笔订单最多部分退款50次")
        refunded = sum(self._refunds[key].command.refund_fen for key in order.refund_keys)
        if refunded + command.refund_fen > order.command.total_fen:
            # What WeChat answers when the sum of refunds would pass the amount paid
            # ("refund_fee大于可退金额"). NOT_ENOUGH is its code for a merchant balance too
            # small to fund a refund, a different thing.
            raise WeChatError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")

    def _refund_notices(self, refund: Refund) -> list[Notice]:
        if not refund.command.notify_url:
            return []
        notice = Notice(
            url=refund.command.notify_url,
            event_type="REFUND.SUCCESS",
            original_type="refund",
            summary="退款成功",
            order=refund.order,
            refund=refund,
            delay_s=self.refund_delay_s,  # sent when the refund settles
        )
        return [notice]

    def find_refund(self, merchant: Merchant, sub_mchid: str | None, out_refund_no: str) -> Refund:
        with self.lock:
            refund = self._refunds.get((merchant.mchid, sub_mchid or "", out_refund_no))
            if refund is None:
                raise WeChatError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            return refund

    # ------------------------------------------------------------ bills

    def day_activity(
        self, merchant: Merchant, sub_mchid: str | None, bill_date: date
    ) -> tuple[list[Order], list[Refund], list[Order]]:
        """Orders paid, refunds accepted and paid orders revoked (money returned) on
        `bill_date` (Asia/Shanghai), oldest first."""

        def on_day(instant: datetime | None) -> bool:
            return instant is not None and instant.astimezone(SHANGHAI).date() == bill_date

        def mine(mchid: str, command_sub_mchid: str | None) -> bool:
            return mchid == merchant.mchid and sub_mchid in (None, command_sub_mchid)

        with self.lock:
            paid = [
                order
                for order in self._orders.values()
                if mine(order.mchid, order.command.sub_mchid) and on_day(self._bill_time(order))
            ]
            refunds = [
                refund
                for refund in self._refunds.values()
                if mine(refund.mchid, refund.command.sub_mchid) and on_day(refund.created_at)
            ]
            revoked = [
                order
                for order in self._orders.values()
                if mine(order.mchid, order.command.sub_mchid)
                and order.revoked_refund_id is not None
                and on_day(order.revoked_at)
            ]
        paid.sort(key=lambda order: order.success_at or order.created_at)
        refunds.sort(key=lambda refund: refund.created_at)
        return paid, refunds, revoked

    def keep_bill(self, mchid: str, data: bytes) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self._bills[token] = (mchid, data)
            while len(self._bills) > MAX_BILLS_KEPT:
                self._bills.popitem(last=False)
        return token

    def bill(self, mchid: str, token: str) -> bytes:
        with self.lock:
            entry = self._bills.get(token)
        if entry is None or entry[0] != mchid:
            raise WeChatError(400, "INVALID_REQUEST", "账单下载链接无效或已过期")
        return entry[1]

    def orders_snapshot(self, out_trade_no: str | None = None) -> list[Order]:
        with self.lock:
            return [
                order
                for order in self._orders.values()
                if out_trade_no in (None, order.out_trade_no)
            ]
