"""What the sandbox's HTTP app and its Python handle share: state, Alipay's key, delivery."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cloudpay.channels.alipay.sandbox.grants import Grants
from cloudpay.channels.alipay.sandbox.notifier import Delivery, Notifier, signed_form
from cloudpay.channels.alipay.sandbox.state import Notice, SandboxState
from cloudpay.kernel.crypto import rsa_sign
from cloudpay.kernel.masking import Secret

DUPLICATE_SPACING_S = 1.0  # sandbox seconds between deliberate copies of one notification


@dataclass(frozen=True)
class AlipayKey:
    """The sandbox's "Alipay public key" pair (支付宝公钥): signs answers and notifications."""

    private_key_pem: Secret[str] = field(repr=False)
    public_key_pem: str

    def sign(self, text: str) -> str:
        return rsa_sign(self.private_key_pem, text.encode())


class SandboxCore:
    def __init__(self, state: SandboxState, notifier: Notifier, key: AlipayKey) -> None:
        self.state, self.notifier, self.key = state, notifier, key
        self.grants = Grants(state.clock)

    def dispatch(self, notices: Iterable[Notice]) -> None:
        """Sign each notice once and queue it (and its deliberate copies, same notify_id)."""
        for notice in notices:
            body = signed_form(notice.params, self.key.sign)
            for copy in range(1, notice.copies + 1):
                delivery = Delivery(
                    url=notice.url,
                    body=body,
                    notify_id=notice.params["notify_id"],
                    trade_status=notice.params["trade_status"],
                    out_trade_no=notice.out_trade_no,
                    out_biz_no=notice.params.get("out_biz_no"),
                    copy=copy,
                )
                self.notifier.submit(delivery, notice.delay_s + (copy - 1) * DUPLICATE_SPACING_S)

    def customer_pay(
        self,
        out_trade_no: str,
        outcome: str = "success",
        *,
        app_id: str | None = None,
        notify_delay_s: float = 0.0,
        duplicate_notifications: int = 0,
    ) -> dict[str, Any]:
        result, notices = self.state.customer_pay(
            out_trade_no,
            outcome,
            app_id=app_id,
            notify_delay_s=notify_delay_s,
            duplicate_notifications=duplicate_notifications,
        )
        self.dispatch(notices)
        return result
