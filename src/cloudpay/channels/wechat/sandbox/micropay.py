"""The sandbox's payment-code pay (付款码支付) and reverse (撤销), with scripted payers.

What happens to a payment code is scripted per code with `expect(auth_code, outcome)`:
- `success` (the default): paid at once, 200 with the transaction;
- `password_pending`: 202 USERPAYING, the order waits in USERPAYING until the simulated payer
  `confirm`s (paid) or `abandon`s (PAYERROR) it through the customer API;
- `insufficient_balance`: 403 NOTENOUGH, the order is PAYERROR;
- `invalid_code`: 400 AUTH_CODE_INVALID, no order.
A payment code pays once: a second order with the same code is refused AUTH_CODE_INVALID.
Resending the same order (same body) answers its current state, so a merchant whose answer
was lost may simply send it again.

Sources: https://pay.weixin.qq.com/docs/merchant/apis/code-payment-v3/direct/code-pay.html,
https://pay.weixin.qq.com/docs/merchant/apis/code-payment-v3/direct/reverse.html; which HTTP
status each business error has is our choice where the documents do not say (noted inline).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from cloudpay.channels.wechat.sandbox.state import (
    CreateCommand,
    Merchant,
    Notice,
    Order,
    SandboxState,
    WeChatError,
)

MICROPAY_OUTCOMES = frozenset(
    {"success", "password_pending", "insufficient_balance", "invalid_code"}
)
MAX_EXPECTATIONS = 10_000
MAX_USED_CODES = 100_000  # remembered to refuse reuse; real codes expire within a minute
REVERSE_WINDOW = timedelta(days=7)  # "7天以内的交易单可调用撤销", older ones need a refund
_AUTH_CODE = re.compile(r"1[0-5][0-9]{16}")
_INVALID_CODE = "请扫描微信支付付款码(以10/11/12/13/14/15为前缀的18位数字)"


@dataclass(frozen=True)
class CodePayAnswer:
    order: Order
    pending: bool  # True: 202 USERPAYING; False: 200 with the transaction
    notices: tuple[Notice, ...]


class Micropay:
    """Payment-code rules over `SandboxState`; every method runs under the state's lock."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._expected: dict[str, str] = {}
        self._used: OrderedDict[str, None] = OrderedDict()

    def expect(self, auth_code: str, outcome: str) -> None:
        if outcome not in MICROPAY_OUTCOMES:
            raise ValueError(f"micropay outcome is one of {sorted(MICROPAY_OUTCOMES)}")
        if not _AUTH_CODE.fullmatch(auth_code):
            raise ValueError("a WeChat payment code is 18 digits starting 10..15")
        with self.state.lock:
            if len(self._expected) >= MAX_EXPECTATIONS:
                raise ValueError(f"at most {MAX_EXPECTATIONS} scripted payment codes")
            self._expected[auth_code] = outcome

    def pay(self, merchant: Merchant, command: CreateCommand) -> CodePayAnswer:
        auth_code = command.auth_code or ""
        with self.state.lock:
            existing = self.state.order_at(merchant, command.sub_mchid, command.out_trade_no)
            if existing is not None:
                return self._repeat(existing, command)
            if not _AUTH_CODE.fullmatch(auth_code):
                raise WeChatError(400, "AUTH_CODE_INVALID", _INVALID_CODE)
            if auth_code in self._used:
                raise WeChatError(400, "AUTH_CODE_INVALID", "付款码已使用，请刷新付款码后重新支付")
            outcome = self._expected.pop(auth_code, "success")
            if outcome == "invalid_code":
                raise WeChatError(400, "AUTH_CODE_INVALID", _INVALID_CODE)
            order = self.state.create_order(merchant, command)
            self._used[auth_code] = None
            while len(self._used) > MAX_USED_CODES:
                self._used.popitem(last=False)
            return self._settle(order, outcome)

    def _settle(self, order: Order, outcome: str) -> CodePayAnswer:
        if outcome == "insufficient_balance":
            order.trade_state = "PAYERROR"
            # 403: our choice for a business refusal by the payer's side.
            order.refusal = (403, "NOTENOUGH", "用户余额不足，请提示用户换卡支付")
            raise WeChatError(*order.refusal)
        if outcome == "password_pending":
            order.trade_state = "USERPAYING"
            return CodePayAnswer(order, pending=True, notices=())
        self.state.mark_paid(order, self.state.clock.now())
        return CodePayAnswer(order, pending=False, notices=_paid_notices(order))

    def _repeat(self, order: Order, command: CreateCommand) -> CodePayAnswer:
        if order.command.fingerprint != command.fingerprint:
            raise WeChatError(403, "OUT_TRADE_NO_USED", "商户订单号重复，且下单参数与原订单不一致")
        self.state.refresh(order)
        state = order.trade_state
        if state == "SUCCESS":
            return CodePayAnswer(order, pending=False, notices=())
        if state == "USERPAYING":
            return CodePayAnswer(order, pending=True, notices=())
        if state == "REFUND":
            raise WeChatError(400, "ORDERPAID", "该订单已支付")
        if state == "REVOKED":
            raise WeChatError(400, "ORDERREVERSED", "订单已撤销")
        if state == "PAYERROR":
            raise WeChatError(*(order.refusal or (403, "TRADE_ERROR", "用户取消支付")))
        raise WeChatError(400, "ORDER_CLOSED", "订单已关闭")

    def reverse(self, merchant: Merchant, sub_mchid: str | None, out_trade_no: str) -> Order:
        """Close an unpaid order, or return a paid one's money in full; repeats are no-ops."""
        with self.state.lock:
            order = self.state.find_order(merchant, sub_mchid, out_trade_no)
            now = self.state.clock.now()
            if order.trade_state == "REVOKED":
                return order
            if order.trade_state == "REFUND":  # 400: our choice
                raise WeChatError(400, "INVALID_REQUEST", "订单已发生退款，请使用退款接口")
            if now - order.created_at > REVERSE_WINDOW:
                raise WeChatError(400, "INVALID_REQUEST", "超过7天的订单不能撤销，请使用退款接口")
            if order.trade_state == "SUCCESS":
                order.revoked_refund_id = self.state.new_refund_id(now)
            order.revoked_at = now
            order.trade_state = "REVOKED"
            return order


def _paid_notices(order: Order) -> tuple[Notice, ...]:
    if not order.command.notify_url:  # the real codepay API takes no notify_url
        return ()
    notice = Notice(
        url=order.command.notify_url,
        event_type="TRANSACTION.SUCCESS",
        original_type="transaction",
        summary="支付成功",
        order=order,
        refund=None,
        delay_s=0.0,
    )
    return (notice,)
