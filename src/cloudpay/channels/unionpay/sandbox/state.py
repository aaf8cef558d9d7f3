"""The sandbox's UnionPay: transactions, their states, the simulated customer, faults.

Everything here runs under one lock and decides; `app.py` only parses, verifies and signs.
A consumption (txnType 01) is `accepted` (QR applied or web form posted, waiting for the
payer), `pin_pending` (payment code, the payer is entering a PIN), `success`, `failed` or
`reversed` (冲正). An unpaid consumption past its `payTimeout` can no longer be paid; like a
reversed one, a query answers 34 (查无此交易): UnionPay records a transaction only when money
moves. Refunds (04) are accepted, then succeed `refund_delay_s` later; voids (31) succeed at
once and only on the day of the payment. Conventions we chose where the sources are silent:
the txnTime window (`TXN_TIME_WINDOW`), respCode 36 for a refund beyond what is left, 35 for
reversing a paid consumption (the sandbox does not reverse money), and a query matching on
`orderId` alone (the real gateway also matches the original `txnTime`).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from cloudpay.channels.unionpay import transformers as tf
from cloudpay.channels.unionpay.bill import BillLine
from cloudpay.kernel.business_time import SHANGHAI, business_date
from cloudpay.kernel.clock import Clock

# Not found in a source we could open; see notifier.py.
RETRY_SCHEDULE_S: tuple[int, ...] = (60, 120, 240, 480, 960)
PAY_OUTCOMES = frozenset({"success", "fail", "timeout", "pay_twice"})
AUTH_CODE_OUTCOMES = frozenset({"success", "pin_pending", "declined"})
FAULT_KINDS = frozenset({"timeout", "server_error", "bad_signature"})
TXN_TIME_WINDOW = timedelta(minutes=10)
MAX_TXNS = 200_000
OK_MESSAGE = "成功[0000000]"
_NOT_FINGERPRINTED = frozenset({"txnTime", "signature", "certId", "signPubKeyCert"})


class GatewayRefusal(Exception):
    """The gateway answers with this respCode instead of 00."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message


class CustomerRefused(ValueError):
    """The simulated customer cannot do that (unknown order, already paid, expired…)."""


@dataclass(frozen=True)
class Merchant:
    mer_id: str
    cert_id: str
    public_key_pem: str = field(repr=False)


@dataclass
class Txn:
    mer_id: str
    order_id: str
    txn_type: str
    txn_sub_type: str
    biz_type: str
    access_type: str
    txn_time: str
    amount_fen: int
    request: dict[str, str]
    state: str
    answer: dict[str, str] = field(default_factory=dict)
    query_id: str | None = None
    trace_no: str = ""
    trace_time: str = ""
    completed_at: datetime | None = None
    resp_code: str = "05"
    resp_msg: str = "交易已受理，请稍后查询交易结果"
    orig: Txn | None = None
    refunded_fen: int = 0  # consumption: refunds and voids taken against it, pending included
    pay_timeout: datetime | None = None

    @property
    def back_url(self) -> str | None:
        return self.request.get("backUrl") or None


@dataclass(frozen=True)
class Notice:
    url: str
    fields: dict[str, str]
    order_id: str
    copies: int = 1
    delay_s: float = 0.0


def _fingerprint(fields: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in fields.items() if k not in _NOT_FINGERPRINTED))


def _require(fields: dict[str, str], *names: str) -> None:
    for name in names:
        if not fields.get(name):
            raise GatewayRefusal("13", f"报文交易要素缺失[{name}]")


def _amount(fields: dict[str, str]) -> int:
    _require(fields, "txnAmt")
    text = fields["txnAmt"]
    if not text.isdigit() or not 0 < int(text) <= 10**12 or text.startswith("0"):
        raise GatewayRefusal("10", "报文格式错误[txnAmt]")
    return int(text)


def check_txn_time(fields: dict[str, str], now: datetime) -> None:
    """A new transaction's txnTime is Beijing time within `TXN_TIME_WINDOW` of now."""
    _require(fields, "txnTime")
    try:
        sent = tf.parse_txn_time(fields["txnTime"])
    except tf.UnexpectedField:
        raise GatewayRefusal("10", "报文格式错误[txnTime]") from None
    if abs(now - sent) > TXN_TIME_WINDOW:
        raise GatewayRefusal("39", "交易不在受理时间范围内[txnTime]")


@dataclass(frozen=True)
class BillTamper:
    """Test-only: how the reconciliation file misreports one paid consumption, so
    reconciliation tests can inject a channel file's mistakes (answers stay truthful)."""

    amount_delta_fen: int = 0  # added to the line's txnAmt and settlement amounts
    fee_delta_fen: int = 0  # added to the merchant fee charged
    duplicate: bool = False  # the line appears twice
    completed_at: datetime | None = None  # its txnTime and file day; may move it to another


class SandboxState:
    def __init__(
        self, *, clock: Clock, time_scale: float, refund_delay_s: float, fee_rate_bps: int
    ) -> None:
        self.clock, self.time_scale = clock, time_scale
        self.refund_delay_s, self.fee_rate_bps = refund_delay_s, fee_rate_bps
        self.lock = threading.RLock()
        self.available = True
        self._merchants: dict[str, Merchant] = {}
        self._txns: dict[tuple[str, str], Txn] = {}
        self._by_query_id: dict[str, Txn] = {}
        self._auth_codes: dict[str, str] = {}
        self._faults: deque[str] = deque(maxlen=1000)
        self._counter = itertools.count(1)
        self._bill_tampering: dict[str, BillTamper] = {}  # by UnionPay orderId

    # ------------------------------------------------------------ setup, faults

    def add_merchant(self, merchant: Merchant) -> None:
        with self.lock:
            self._merchants[merchant.mer_id] = merchant

    def merchant(self, mer_id: str) -> Merchant | None:
        with self.lock:
            return self._merchants.get(mer_id)

    def inject_fault(self, kind: str, count: int = 1) -> None:
        if kind not in FAULT_KINDS or not 1 <= count <= 1000:
            raise ValueError(f"fault kind is one of {sorted(FAULT_KINDS)}, count 1..1000")
        with self.lock:
            self._faults.extend([kind] * count)

    def take_fault(self) -> str | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def register_auth_code(self, auth_code: str, outcome: str) -> None:
        if outcome not in AUTH_CODE_OUTCOMES or not auth_code.isdigit():
            raise CustomerRefused(
                f"auth code is digits, outcome one of {sorted(AUTH_CODE_OUTCOMES)}"
            )
        with self.lock:
            self._auth_codes[auth_code] = outcome

    # ------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        return self.clock.now()

    def _stamp(self, txn: Txn) -> None:
        """Give a transaction UnionPay's ids: queryId (21 digits), traceNo, traceTime."""
        now, serial = self._now().astimezone(SHANGHAI), next(self._counter)
        txn.query_id = f"{now:%Y%m%d%H%M%S}{serial % 10**7:07d}"
        txn.trace_no, txn.trace_time = f"{serial % 10**6:06d}", f"{now:%m%d%H%M%S}"
        self._by_query_id[txn.query_id] = txn

    def _finish(self, txn: Txn, code: str, message: str) -> None:
        txn.state = "success" if code == tf.RESP_OK else "failed"
        txn.resp_code, txn.resp_msg, txn.completed_at = code, message, self._now()

    def _new_txn(self, merchant: Merchant, fields: dict[str, str], state: str) -> Txn | None:
        """The new transaction, or None when the same request was already taken (replay)."""
        _require(fields, "orderId", "txnType", "txnSubType", "bizType", "accessType")
        key = (merchant.mer_id, fields["orderId"])
        existing = self._txns.get(key)
        if existing is not None:
            if _fingerprint(existing.request) != _fingerprint(fields):
                raise GatewayRefusal(tf.RESP_DUPLICATE, "重复交易")
            return None
        if len(self._txns) >= MAX_TXNS:
            raise GatewayRefusal("06", "系统繁忙，请稍后再试")
        txn = Txn(
            mer_id=merchant.mer_id,
            order_id=fields["orderId"],
            txn_type=fields["txnType"],
            txn_sub_type=fields["txnSubType"],
            biz_type=fields["bizType"],
            access_type=fields["accessType"],
            txn_time=fields.get("txnTime", ""),
            amount_fen=_amount(fields) if "txnAmt" in fields else 0,
            request=dict(fields),
            state=state,
        )
        self._txns[key] = txn
        return txn

    def _lapsed(self, txn: Txn) -> bool:
        unpaid = txn.state in ("accepted", "pin_pending")
        return unpaid and txn.pay_timeout is not None and self._now() > txn.pay_timeout

    def _settle_refund(self, txn: Txn) -> None:
        if txn.state == "processing" and txn.completed_at and self._now() >= txn.completed_at:
            txn.state, txn.resp_code, txn.resp_msg = "success", tf.RESP_OK, OK_MESSAGE

    # ------------------------------------------------------------ views

    def base_view(self, txn: Txn) -> dict[str, str]:
        view = {
            "txnType": txn.txn_type,
            "txnSubType": txn.txn_sub_type,
            "bizType": txn.biz_type,
            "accessType": txn.access_type,
            "merId": txn.mer_id,
            "orderId": txn.order_id,
            "txnTime": txn.txn_time,
        }
        if "reqReserved" in txn.request:
            view["reqReserved"] = txn.request["reqReserved"]
        return view

    def detail_view(self, txn: Txn) -> dict[str, str]:
        view = {**self.base_view(txn), "txnAmt": str(txn.amount_fen), "currencyCode": "156"}
        if txn.query_id:
            view.update(queryId=txn.query_id, traceNo=txn.trace_no, traceTime=txn.trace_time)
        if txn.state == "success" and txn.completed_at is not None:
            settle_day = business_date(txn.completed_at)
            view.update(settleDate=f"{settle_day:%m%d}", settleAmt=str(txn.amount_fen))
            view["settleCurrencyCode"] = "156"
        if txn.orig is not None and txn.orig.query_id:
            view["origQryId"] = txn.orig.query_id
        return view

    def _notice(self, txn: Txn, copies: int = 1, delay_s: float = 0.0) -> list[Notice]:
        if not txn.back_url:
            return []
        fields = {**self.detail_view(txn), "respCode": txn.resp_code, "respMsg": txn.resp_msg}
        return [Notice(txn.back_url, fields, txn.order_id, copies, delay_s)]

    # ------------------------------------------------------------ consumption

    def apply_qr(self, merchant: Merchant, fields: dict[str, str]) -> dict[str, str]:
        _require(fields, "backUrl", "currencyCode")
        with self.lock:
            txn = self._new_txn(merchant, fields, "accepted")
            if txn is None:
                return self._txns[(merchant.mer_id, fields["orderId"])].answer
            txn.pay_timeout = self._pay_timeout(fields)
            qr_code = f"https://qr.95516.com/00010000/{txn.order_id[-20:]}{next(self._counter)}"
            txn.answer = {**self.base_view(txn), "respCode": "00", "respMsg": OK_MESSAGE}
            txn.answer["qrCode"] = qr_code
            return txn.answer

    def front_submit(self, merchant: Merchant, fields: dict[str, str]) -> Txn:
        """The payer's browser posted the mobile web form: the cashier page is open."""
        _require(fields, "backUrl", "currencyCode")
        with self.lock:
            txn = self._new_txn(merchant, fields, "accepted")
            found = txn or self._txns[(merchant.mer_id, fields["orderId"])]
            found.pay_timeout = found.pay_timeout or self._pay_timeout(fields)
            return found

    def _pay_timeout(self, fields: dict[str, str]) -> datetime | None:
        if not fields.get("payTimeout"):
            return None
        try:
            return tf.parse_txn_time(fields["payTimeout"])
        except tf.UnexpectedField:
            raise GatewayRefusal("10", "报文格式错误[payTimeout]") from None

    def micropay(
        self, merchant: Merchant, fields: dict[str, str]
    ) -> tuple[dict[str, str], list[Notice]]:
        _require(fields, "qrNo", "currencyCode")
        with self.lock:
            txn = self._new_txn(merchant, fields, "accepted")
            if txn is None:
                return self._txns[(merchant.mer_id, fields["orderId"])].answer, []
            outcome = self._auth_codes.pop(fields["qrNo"], "success")
            notices: list[Notice] = []
            if outcome == "success":
                self._stamp(txn)
                self._finish(txn, tf.RESP_OK, OK_MESSAGE)
                notices = self._notice(txn)
            elif outcome == "pin_pending":
                txn.state, txn.pay_timeout = "pin_pending", self._pay_timeout(fields)
            else:
                self._finish(txn, "60", "交易失败，详情请咨询您的发卡行")
            txn.answer = {**self.detail_view(txn), "respCode": txn.resp_code}
            txn.answer["respMsg"] = txn.resp_msg
            return txn.answer, notices

    def settle_auth_code(self, auth_code: str, *, confirm: bool) -> list[Notice]:
        """The payer finished entering the PIN (confirm) or gave up."""
        with self.lock:
            waiting = [
                t
                for t in self._txns.values()
                if t.state == "pin_pending" and t.request.get("qrNo") == auth_code
            ]
            if not waiting or self._lapsed(waiting[0]):
                raise CustomerRefused(f"no payment waits for a PIN on {auth_code!r}")
            txn = waiting[0]
            if not confirm:
                self._finish(txn, "60", "交易失败，持卡人取消")
                return []
            self._stamp(txn)
            self._finish(txn, tf.RESP_OK, OK_MESSAGE)
            return self._notice(txn)

    def customer_pay(
        self, order_id: str, outcome: str, *, duplicate_notifications: int = 0
    ) -> list[Notice]:
        if outcome not in PAY_OUTCOMES or not 0 <= duplicate_notifications <= 10:
            raise CustomerRefused(f"outcome is one of {sorted(PAY_OUTCOMES)}, duplicates 0..10")
        with self.lock:
            matches = [
                t for t in self._txns.values() if t.order_id == order_id and t.txn_type == "01"
            ]
            if not matches:
                raise CustomerRefused(f"no order {order_id!r} (a web order needs its form posted)")
            txn = matches[0]
            if txn.state != "accepted" or self._lapsed(txn):
                state = "expired" if self._lapsed(txn) else txn.state
                raise CustomerRefused(f"order {order_id!r} cannot be paid: it is {state}")
            if outcome == "timeout":
                return []
            if outcome == "fail":
                self._stamp(txn)
                self._finish(txn, "60", "交易失败，详情请咨询您的发卡行")
                return []
            self._stamp(txn)
            self._finish(txn, tf.RESP_OK, OK_MESSAGE)
            copies = 1 + duplicate_notifications + (1 if outcome == "pay_twice" else 0)
            return self._notice(txn, copies=copies)

    # ------------------------------------------------------------ query

    def query(self, merchant: Merchant, fields: dict[str, str]) -> dict[str, str]:
        _require(fields, "orderId", "txnTime")
        with self.lock:
            txn = self._txns.get((merchant.mer_id, fields["orderId"]))
            if txn is not None:
                self._settle_refund(txn)
            if txn is None or txn.state == "reversed" or self._lapsed(txn):
                raise GatewayRefusal(tf.RESP_NOT_FOUND, "查无此交易")
            if txn.txn_type == tf.TXN_REVERSAL:
                raise GatewayRefusal(tf.RESP_NOT_FOUND, "查无此交易")
            view = {**self.detail_view(txn), "respCode": "00", "respMsg": OK_MESSAGE}
            view.update(origRespCode=txn.resp_code, origRespMsg=txn.resp_msg)
            if txn.state == "pin_pending":
                view.update(origRespCode="04", origRespMsg="交易状态未明，请查询对账结果")
            return view

    # ------------------------------------------------------------ after the payment

    def _original(self, merchant: Merchant, fields: dict[str, str]) -> Txn:
        _require(fields, "origQryId")
        orig = self._by_query_id.get(fields["origQryId"])
        if orig is None or orig.mer_id != merchant.mer_id or orig.txn_type != "01":
            raise GatewayRefusal("35", "原交易不存在或状态不正确")
        if orig.state != "success":
            raise GatewayRefusal("35", "原交易不存在或状态不正确")
        return orig

    def refund(
        self, merchant: Merchant, fields: dict[str, str]
    ) -> tuple[dict[str, str], list[Notice]]:
        with self.lock:
            existing = self._txns.get((merchant.mer_id, fields.get("orderId", "")))
            if existing is not None and _fingerprint(existing.request) == _fingerprint(fields):
                return existing.answer, []
            orig, amount = self._original(merchant, fields), _amount(fields)
            if amount > orig.amount_fen - orig.refunded_fen:
                raise GatewayRefusal("36", "退货金额超过原交易可退金额")
            txn = self._new_txn(merchant, fields, "processing")
            assert txn is not None
            txn.orig, orig.refunded_fen = orig, orig.refunded_fen + amount
            self._stamp(txn)
            delay_real_s = self.refund_delay_s * self.time_scale
            txn.completed_at = self._now() + timedelta(seconds=delay_real_s)
            txn.answer = {**self.detail_view(txn), "respCode": "00", "respMsg": OK_MESSAGE}
            settled = {"state": "success", "resp_code": "00", "resp_msg": OK_MESSAGE}
            notice = self._notice_as(txn, settled, self.refund_delay_s)
            return txn.answer, notice

    def _notice_as(self, txn: Txn, changes: dict[str, str], delay_s: float) -> list[Notice]:
        """The notification of `txn` as it will be once `changes` happen (sent `delay_s` later)."""
        saved = (txn.state, txn.resp_code, txn.resp_msg)
        txn.state, txn.resp_code, txn.resp_msg = (
            changes["state"],
            changes["resp_code"],
            changes["resp_msg"],
        )
        try:
            return self._notice(txn, delay_s=delay_s)
        finally:
            txn.state, txn.resp_code, txn.resp_msg = saved

    def void(
        self, merchant: Merchant, fields: dict[str, str]
    ) -> tuple[dict[str, str], list[Notice]]:
        with self.lock:
            existing = self._txns.get((merchant.mer_id, fields.get("orderId", "")))
            if existing is not None and _fingerprint(existing.request) == _fingerprint(fields):
                return existing.answer, []
            orig, amount = self._original(merchant, fields), _amount(fields)
            assert orig.completed_at is not None
            if business_date(orig.completed_at) != business_date(self._now()):
                raise GatewayRefusal("35", "原交易不存在或状态不正确[非当日交易不能撤销]")
            if amount != orig.amount_fen or orig.refunded_fen:
                raise GatewayRefusal("36", "与原交易信息不符")
            txn = self._new_txn(merchant, fields, "processing")
            assert txn is not None
            txn.orig, orig.refunded_fen = orig, amount
            self._stamp(txn)
            self._finish(txn, tf.RESP_OK, OK_MESSAGE)
            txn.answer = {**self.detail_view(txn), "respCode": "00", "respMsg": OK_MESSAGE}
            return txn.answer, self._notice(txn)

    def reverse(self, merchant: Merchant, fields: dict[str, str]) -> dict[str, str]:
        _require(fields, "origOrderId")
        with self.lock:
            orig = self._txns.get((merchant.mer_id, fields["origOrderId"]))
            if orig is None or orig.txn_type != "01" or orig.state in ("success", "failed"):
                raise GatewayRefusal("35", "原交易不存在或状态不正确")
            txn = self._new_txn(merchant, fields, "success")
            if txn is None:
                return self._txns[(merchant.mer_id, fields["orderId"])].answer
            orig.state = "reversed"
            txn.answer = {**self.base_view(txn), "respCode": "00", "respMsg": OK_MESSAGE}
            return txn.answer

    # ------------------------------------------------------------ the day's file

    def settle_day(self, settle_date: str) -> date:
        """The latest day on or before today whose MMdd is `settle_date`."""
        today = business_date(self._now())
        for back in range(367):
            day = today - timedelta(days=back)
            if f"{day:%m%d}" == settle_date:
                return day
        raise GatewayRefusal("10", "报文格式错误[settleDate]")

    def tamper_bill(self, order_id: str, tamper: BillTamper) -> None:
        with self.lock:
            self._bill_tampering[order_id] = tamper

    def fee_fen(self, amount_fen: int) -> int:
        """Merchant fee at `fee_rate_bps`, rounded half up once, per transaction."""
        return (amount_fen * self.fee_rate_bps + 5_000) // 10_000

    def _fee_fen(self, txn: Txn) -> int:
        """A consumption's fee; a refund or void gives back its share of the consumption's
        fee (pro rata, rounded half up once), the rule reconciliation expects. The share is
        our choice: the fee terms are the acquiring contract's, not the interface spec's."""
        if txn.orig is None:
            return self.fee_fen(txn.amount_fen)
        paid, charged = txn.orig.amount_fen, self.fee_fen(txn.orig.amount_fen)
        return (2 * charged * txn.amount_fen + paid) // (2 * paid)

    def _completed_at(self, txn: Txn) -> datetime | None:
        tamper = self._bill_tampering.get(txn.order_id)
        return tamper.completed_at if tamper and tamper.completed_at else txn.completed_at

    def bill_lines(self, mer_id: str, day: date) -> list[BillLine]:
        with self.lock:
            done = []
            for txn in self._txns.values():
                self._settle_refund(txn)
                if txn.mer_id != mer_id or txn.state != "success" or txn.query_id is None:
                    continue
                completed_at = self._completed_at(txn)
                if completed_at and business_date(completed_at) == day:
                    done.append(txn)
            ordered = sorted(done, key=lambda t: t.query_id or "")
            return [line for txn in ordered for line in self._bill_line(txn)]

    def _bill_line(self, txn: Txn) -> list[BillLine]:
        fee, credit = self._fee_fen(txn), txn.txn_type == "01"
        tamper = self._bill_tampering.get(txn.order_id) or BillTamper()
        amount, fee = txn.amount_fen + tamper.amount_delta_fen, fee + tamper.fee_delta_fen
        moved = tamper.completed_at.astimezone(SHANGHAI) if tamper.completed_at else None
        line = BillLine(
            txn_type=txn.txn_type,
            txn_sub_type=txn.txn_sub_type,
            biz_type=txn.biz_type,
            order_id=txn.order_id,
            query_id=txn.query_id or "",
            orig_query_id=txn.orig.query_id or "" if txn.orig else "",
            txn_time=f"{moved:%m%d%H%M%S}" if moved else txn.trace_time,
            trace_no=txn.trace_no,
            amount_fen=amount,
            fee_fen=fee if credit else -fee,
            settle_fen=amount - fee if credit else -(amount - fee),
            mer_id=txn.mer_id,
            card_no="6216********0001",
        )
        return [line, line] if tamper.duplicate else [line]
