"""Run the Alipay sandbox on loopback, and drive it from tests and the CLI.

with start_alipay_sandbox(time_scale=0.001) as sandbox:
    channel = AlipayChannel(sandbox.adapter_config())
    ...
    sandbox.pay(order_id, "success")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cloudpay.channels.alipay.bill import parse_trade_bill
from cloudpay.channels.alipay.client import AlipayConfig
from cloudpay.channels.alipay.sandbox.app import DEFAULT_FAULT_HOLD_S, SandboxApi, build_app
from cloudpay.channels.alipay.sandbox.bills import BillTamper
from cloudpay.channels.alipay.sandbox.core import AlipayKey, SandboxCore
from cloudpay.channels.alipay.sandbox.grants import sandbox_user_id
from cloudpay.channels.alipay.sandbox.notifier import DeliveryAttempt, Notifier
from cloudpay.channels.alipay.sandbox.state import DEFAULT_FEE_RATE_BP, App, SandboxState
from cloudpay.channels.sandbox_kit import LoopbackServer, SandboxHandle
from cloudpay.channels.sandbox_settlement import (
    SettlementAccount,
    SettlementTamper,
    net_fen,
    settle_into_bank,
    settlement_reference,
)
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.crypto import generate_rsa_key_pair
from cloudpay.kernel.masking import Secret

SETTLEMENT_PREFIX = "ALIPAY"  # the reference of its settlement credits: ALIPAY-SETTLE-<date>
SETTLEMENT_PAYER_ACCOUNT = "9200000000000016"  # Alipay's clearing account (sandbox)


@dataclass(frozen=True)
class SandboxAppCredentials:
    """An Alipay app's keys as the merchant holds them; the private key masked."""

    app_id: str
    seller_id: str  # the merchant's Alipay account (2088…)
    private_key_pem: Secret[str] = field(repr=False)
    public_key_pem: str = field(repr=False)  # uploaded to Alipay: verifies our requests


def new_alipay_credentials(app_id: str = "2021000000000001") -> SandboxAppCredentials:
    keys = generate_rsa_key_pair()
    seller_id = "2088" + app_id[-12:].rjust(12, "0")
    return SandboxAppCredentials(app_id, seller_id, keys.private_key_pem, keys.public_key_pem)


class AlipaySandbox(SandboxHandle):
    """A running sandbox: its URLs, apps, simulated customer, faults and notifications."""

    def __init__(self, core: SandboxCore, server: LoopbackServer) -> None:
        super().__init__(server, on_stop=core.notifier.stop)
        self._core = core
        self.gateway_url = f"{self.base_url}/gateway.do"
        self.oauth_url = f"{self.base_url}/oauth2/publicAppAuthorize.htm"
        self._credentials: dict[str, SandboxAppCredentials] = {}

    def __repr__(self) -> str:
        return f"AlipaySandbox(base_url={self.base_url!r}, apps={sorted(self._credentials)})"

    def add_app(self, credentials: SandboxAppCredentials) -> SandboxAppCredentials:
        app = App(credentials.app_id, credentials.public_key_pem, credentials.seller_id)
        self._core.state.add_app(app)
        self._credentials[credentials.app_id] = credentials
        return credentials

    @property
    def app(self) -> SandboxAppCredentials:
        """The first app (the one a sandbox starts with)."""
        return next(iter(self._credentials.values()))

    @property
    def alipay_public_key_pem(self) -> str:
        return self._core.key.public_key_pem

    def adapter_config(self, app_id: str | None = None, *, timeout_s: float = 5.0) -> AlipayConfig:
        """An `AlipayConfig` for `app_id` (default: the first app) at this sandbox."""
        credentials = self._credentials[app_id] if app_id else self.app
        return AlipayConfig(
            app_id=credentials.app_id,
            app_private_key_pem=credentials.private_key_pem,
            alipay_public_key_pem=self.alipay_public_key_pem,
            gateway_url=self.gateway_url,
            oauth_url=self.oauth_url,
            timeout_s=timeout_s,
        )

    def sandbox_user_id(self, app_id: str | None = None) -> str:
        """The payer id every OAuth consent for `app_id` resolves to."""
        return sandbox_user_id(app_id or self.app.app_id)

    def issue_app_auth_token(self, app_id: str | None = None) -> str:
        """A merchant authorises the app to call for it (第三方应用授权): its app_auth_token."""
        return self._core.grants.issue_app_auth_token(app_id or self.app.app_id)

    # ------------------------------------------------------------ customer, faults, notices

    def pay(
        self,
        out_trade_no: str,
        outcome: str = "success",
        *,
        app_id: str | None = None,
        notify_delay_s: float = 0.0,
        duplicate_notifications: int = 0,
    ) -> dict[str, Any]:
        """The simulated customer: `success`, `fail`, `timeout` (walks away), `pay_twice`.
        On a micropay waiting for the password, `success` confirms and `timeout` abandons."""
        return self._core.customer_pay(
            out_trade_no,
            outcome,
            app_id=app_id,
            notify_delay_s=notify_delay_s,
            duplicate_notifications=duplicate_notifications,
        )

    def register_auth_code(self, auth_code: str, outcome: str) -> None:
        """What the next micropay with this payment code does: `success` (the default),
        `password_pending` (10003, confirm later with `pay`) or `insufficient_balance`."""
        self._core.state.register_auth_code(auth_code, outcome)

    def inject_fault(self, kind: str, count: int = 1) -> None:
        """The next `count` gateway calls: `timeout` (acted on, answer held back),
        `server_error` (HTTP 500, nothing done) or `bad_signature`."""
        self._core.state.inject_fault(kind, count)

    def set_available(self, available: bool) -> None:
        """While False every gateway call answers HTTP 503 without doing anything."""
        self._core.state.available = available

    def tamper_bill(self, out_trade_no: str, tamper: BillTamper) -> None:
        """Test-only: the trade bill misreports this paid trade (amount, fee, a duplicate row,
        its time); queries and notifications stay truthful. For reconciliation tests."""
        self._core.state.tamper_bill(out_trade_no, tamper)

    def notification_attempts(self, out_trade_no: str | None = None) -> list[DeliveryAttempt]:
        return self._core.notifier.attempts(out_trade_no)

    def settle_day(
        self,
        bill_date: date,
        into: SettlementAccount,
        tamper: SettlementTamper | None = None,
        *,
        app_id: str | None = None,
    ) -> int:
        """资金结算: credit the app's net of `bill_date` (its trade bill's 商家实收 less
        服务费) to the bank account `into`; returns the fen credited."""
        state = self._core.state
        app = state.app(app_id or self.app.app_id)
        assert app is not None, "settling an app the sandbox does not know"
        bill = parse_trade_bill(
            state.bill(app, {"bill_type": "trade", "bill_date": bill_date.isoformat()})
        )
        net = net_fen((row.received_fen, 0, -row.fee_fen) for row in bill.rows)
        return settle_into_bank(
            into, reference=settlement_reference(SETTLEMENT_PREFIX, bill_date),
            payer_account_no=SETTLEMENT_PAYER_ACCOUNT, amount_fen=net, tamper=tamper,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """What to print for a developer: URLs and ids, no secrets."""
        return {
            "gateway_url": self.gateway_url,
            "oauth_url": self.oauth_url,
            "apps": [
                {"app_id": c.app_id, "seller_id": c.seller_id} for c in self._credentials.values()
            ],
            "customer": f"POST {self.base_url}/sandbox/customer/pay",
        }


def start_alipay_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float = 1.0,
    *,
    clock: Clock | None = None,
    fault_hold_s: float = DEFAULT_FAULT_HOLD_S,
    fee_rate_bp: int = DEFAULT_FEE_RATE_BP,
    refund_window_s: float | None = None,
    credentials: SandboxAppCredentials | None = None,
) -> AlipaySandbox:
    """Start a sandbox in a background thread; `port=0` picks a free port.

    `time_scale` multiplies every sandbox delay: 0.001 runs Alipay's 25-hour notification
    retry schedule in about 90 seconds. `fee_rate_bp` is the 服务费 rate in the bills;
    with `refund_window_s` (sandbox clock seconds) a paid trade becomes TRADE_FINISHED.
    """
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")
    clock = clock or SystemClock()
    keys = generate_rsa_key_pair()
    window = timedelta(seconds=refund_window_s) if refund_window_s is not None else None
    state = SandboxState(clock=clock, fee_rate_bp=fee_rate_bp, refund_window=window)
    core = SandboxCore(
        state,
        Notifier(clock=clock, time_scale=time_scale),
        AlipayKey(keys.private_key_pem, keys.public_key_pem),
    )
    api = SandboxApi(core, fault_hold_s=fault_hold_s)
    server = LoopbackServer.start(
        build_app(api), name="Alipay sandbox", host=host, port=port, on_failure=core.notifier.stop
    )
    sandbox = AlipaySandbox(core, server)
    api.base_url = sandbox.base_url
    sandbox.add_app(credentials or new_alipay_credentials())
    return sandbox
