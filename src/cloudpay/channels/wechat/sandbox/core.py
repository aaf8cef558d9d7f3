"""What the sandbox's HTTP app and its Python handle share: state, keys, notifications."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cloudpay.channels.wechat import wire
from cloudpay.channels.wechat.sandbox.micropay import Micropay
from cloudpay.channels.wechat.sandbox.notifier import Delivery, Notifier, envelope
from cloudpay.channels.wechat.sandbox.oauth import OAuthDesk
from cloudpay.channels.wechat.sandbox.state import Notice, SandboxState
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.masking import Secret

DUPLICATE_SPACING_S = 1.0  # sandbox seconds between deliberate copies of one notification


@dataclass(frozen=True)
class PlatformKey:
    """The sandbox's "WeChat Pay public key" pair (public-key mode, `PUB_KEY_ID_…`)."""

    private_key_pem: Secret[str] = field(repr=False)
    public_key_pem: str
    public_key_id: str


def platform_signer(platform: PlatformKey, clock: Clock) -> Callable[[bytes], dict[str, str]]:
    """Signs a body as WeChat signs answers and notifications, timestamped by `clock`."""

    def sign(body: bytes) -> dict[str, str]:
        return wire.signed_headers(
            body=body,
            private_key_pem=platform.private_key_pem,
            public_key_id=platform.public_key_id,
            timestamp=str(clock.now_ns() // 1_000_000_000),
        )

    return sign


class SandboxCore:
    def __init__(self, state: SandboxState, notifier: Notifier, platform: PlatformKey) -> None:
        self.state, self.notifier, self.platform = state, notifier, platform
        self.signed_headers = platform_signer(platform, state.clock)
        self.micropay = Micropay(state)
        self.oauth = OAuthDesk(state)

    def now_s(self) -> int:
        return self.state.clock.now_ns() // 1_000_000_000

    def dispatch(self, notices: Iterable[Notice]) -> None:
        """Queue each notice (and its deliberate copies, same id) for delivery."""
        for notice in notices:
            merchant = self.state.merchant(notice.order.mchid)
            assert merchant is not None, "an order always belongs to a registered merchant"
            with self.state.lock:  # the resource is a snapshot of the order as it is now
                notification_id, body = envelope(
                    notice, apiv3_key=merchant.apiv3_key, now=self.state.clock.now()
                )
            for copy in range(1, notice.copies + 1):
                delivery = Delivery(
                    url=notice.url,
                    body=body,
                    notification_id=notification_id,
                    event_type=notice.event_type,
                    out_trade_no=notice.order.out_trade_no,
                    out_refund_no=notice.refund.command.out_refund_no if notice.refund else None,
                    copy=copy,
                )
                self.notifier.submit(delivery, notice.delay_s + (copy - 1) * DUPLICATE_SPACING_S)

    def customer_pay(
        self,
        out_trade_no: str,
        outcome: str = "success",
        *,
        mchid: str | None = None,
        notify_delay_s: float = 0.0,
        duplicate_notifications: int = 0,
    ) -> dict[str, Any]:
        result = self.state.customer_pay(
            out_trade_no,
            outcome,
            mchid=mchid,
            notify_delay_s=notify_delay_s,
            duplicate_notifications=duplicate_notifications,
        )
        self.dispatch(result.notices)
        return result.as_dict()
