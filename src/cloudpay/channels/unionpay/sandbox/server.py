"""Run the UnionPay sandbox on loopback, and drive it from tests and the demo.

with start_unionpay_sandbox(time_scale=0.001) as sandbox:
    channel = UnionPayChannel(sandbox.adapter_config())
    ...
    sandbox.pay(order_id, "success")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cloudpay.channels.sandbox_kit import LoopbackServer, SandboxHandle
from cloudpay.channels.sandbox_settlement import (
    SettlementAccount,
    SettlementTamper,
    net_fen,
    settle_into_bank,
    settlement_reference,
)
from cloudpay.channels.unionpay import transformers as tf
from cloudpay.channels.unionpay.client import UnionPayConfig
from cloudpay.channels.unionpay.sandbox.app import (
    DEFAULT_FAULT_HOLD_S,
    FILE_PATH,
    Gateway,
    build_app,
)
from cloudpay.channels.unionpay.sandbox.notifier import DeliveryAttempt, Notifier
from cloudpay.channels.unionpay.sandbox.pki import Hierarchy, Issued, issue_merchant_cert
from cloudpay.channels.unionpay.sandbox.pki import new_hierarchy as new_pki
from cloudpay.channels.unionpay.sandbox.state import BillTamper, Merchant, SandboxState
from cloudpay.channels.unionpay.wire import load_certificate, public_key_pem
from cloudpay.kernel.clock import Clock, SystemClock

DEFAULT_MER_ID = "777290058110048"  # the shape of UnionPay's public test merchant numbers
DEFAULT_REFUND_DELAY_S = 1.0  # sandbox seconds before an accepted refund succeeds
DEFAULT_FEE_RATE_BPS = 38  # 0.38 %, a common QR-payment merchant rate
SETTLEMENT_PREFIX = "UNIONPAY"  # the reference of its settlement credits: UNIONPAY-SETTLE-<date>
SETTLEMENT_PAYER_ACCOUNT = "9300000000000014"  # UnionPay's clearing account (sandbox)


@dataclass(frozen=True)
class SandboxMerchant:
    mer_id: str
    cert: Issued


class UnionPaySandbox(SandboxHandle):
    """A running sandbox: its URL, certificates, merchants, simulated customer and faults."""

    def __init__(self, gateway: Gateway, server: LoopbackServer) -> None:
        super().__init__(server, on_stop=gateway.notifier.stop)
        self._gateway = gateway
        self._merchants: dict[str, SandboxMerchant] = {}

    def __repr__(self) -> str:
        return f"UnionPaySandbox(base_url={self.base_url!r}, merchants={sorted(self._merchants)})"

    @property
    def pki(self) -> Hierarchy:
        return self._gateway.pki

    def add_merchant(self, mer_id: str) -> SandboxMerchant:
        """Register a merchant and issue its signing certificate (its certId)."""
        cert = issue_merchant_cert(self.pki, mer_id, self._gateway.state.clock.now())
        key_pem = public_key_pem(load_certificate(cert.cert_pem))
        self._gateway.state.add_merchant(Merchant(mer_id, cert.cert_id, key_pem))
        merchant = SandboxMerchant(mer_id, cert)
        self._merchants[mer_id] = merchant
        return merchant

    @property
    def merchant(self) -> SandboxMerchant:
        return next(iter(self._merchants.values()))

    def adapter_config(
        self, mer_id: str | None = None, *, timeout_s: float = 5.0
    ) -> UnionPayConfig:
        """A `UnionPayConfig` for `mer_id` (default: the first merchant) at this sandbox."""
        merchant = self._merchants[mer_id] if mer_id else self.merchant
        return UnionPayConfig(
            mer_id=merchant.mer_id,
            signing_private_key_pem=merchant.cert.private_key_pem,
            signing_cert_id=merchant.cert.cert_id,
            root_cert_pem=self.pki.root.cert_pem,
            middle_cert_pem=self.pki.middle.cert_pem,
            gateway_url=self.base_url,
            file_url=self.base_url + FILE_PATH,
            timeout_s=timeout_s,
        )

    # ------------------------------------------------------------ customer, faults

    def pay(
        self, order_id: str, outcome: str = "success", *, duplicate_notifications: int = 0
    ) -> None:
        """The simulated customer: `success`, `fail`, `timeout` (walks away) or `pay_twice`
        (one payment, its notification sent twice); raises `CustomerRefused` if it cannot."""
        notices = self._gateway.state.customer_pay(
            tf.order_number(order_id), outcome, duplicate_notifications=duplicate_notifications
        )
        self._gateway.dispatch(notices)

    def register_auth_code(self, auth_code: str, outcome: str = "success") -> None:
        """What the next payment with this payment code does: `success`, `pin_pending` or
        `declined`. Unregistered codes succeed."""
        self._gateway.state.register_auth_code(auth_code, outcome)

    def confirm_auth_code(self, auth_code: str) -> None:
        self._gateway.dispatch(self._gateway.state.settle_auth_code(auth_code, confirm=True))

    def abandon_auth_code(self, auth_code: str) -> None:
        self._gateway.dispatch(self._gateway.state.settle_auth_code(auth_code, confirm=False))

    def inject_fault(self, kind: str, count: int = 1) -> None:
        """The next `count` gateway calls: `timeout` (done, answer held back), `server_error`
        (HTTP 500, nothing done) or `bad_signature`."""
        self._gateway.state.inject_fault(kind, count)

    def set_available(self, available: bool) -> None:
        """While unavailable every gateway call answers HTTP 503 and does nothing."""
        self._gateway.state.available = available

    def tamper_bill(self, order_id: str, tamper: BillTamper) -> None:
        """Test-only: the reconciliation file misreports this paid order (amount, fee, a
        duplicate line, its time); answers stay truthful. For reconciliation tests."""
        self._gateway.state.tamper_bill(tf.order_number(order_id), tamper)

    def notification_attempts(self, order_id: str | None = None) -> list[DeliveryAttempt]:
        number = tf.order_number(order_id) if order_id else None
        return self._gateway.notifier.attempts(number)

    def settle_day(
        self,
        bill_date: date,
        into: SettlementAccount,
        tamper: SettlementTamper | None = None,
        *,
        mer_id: str | None = None,
    ) -> int:
        """清算: credit the merchant's net of `bill_date` (its file's 清算金额, which is the
        amount less the fee, negative on refunds) to the bank account `into`."""
        lines = self._gateway.state.bill_lines(mer_id or self.merchant.mer_id, bill_date)
        net = net_fen((line.settle_fen, 0, 0) for line in lines)
        return settle_into_bank(
            into, reference=settlement_reference(SETTLEMENT_PREFIX, bill_date),
            payer_account_no=SETTLEMENT_PAYER_ACCOUNT, amount_fen=net, tamper=tamper,
        )  # fmt: skip


def start_unionpay_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float = 1.0,
    *,
    clock: Clock | None = None,
    fault_hold_s: float = DEFAULT_FAULT_HOLD_S,
    refund_delay_s: float = DEFAULT_REFUND_DELAY_S,
    fee_rate_bps: int = DEFAULT_FEE_RATE_BPS,
    mer_id: str = DEFAULT_MER_ID,
) -> UnionPaySandbox:
    """Start a sandbox in a background thread with one merchant; `port=0` picks a free port.

    `time_scale` multiplies every sandbox delay (notification retries, refund settlement)."""
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")
    clock = clock or SystemClock()
    state = SandboxState(
        clock=clock, time_scale=time_scale, refund_delay_s=refund_delay_s, fee_rate_bps=fee_rate_bps
    )
    notifier = Notifier(clock=clock, time_scale=time_scale)
    gateway = Gateway(state, notifier, new_pki(clock.now()), fault_hold_s=fault_hold_s)
    server = LoopbackServer.start(
        build_app(gateway), name="UnionPay sandbox", host=host, port=port, on_failure=notifier.stop
    )
    sandbox = UnionPaySandbox(gateway, server)
    sandbox.add_merchant(mer_id)
    return sandbox
