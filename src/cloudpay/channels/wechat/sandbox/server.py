"""Run the sandbox on loopback, and drive it from tests and the CLI.

    with start_wechat_sandbox(time_scale=0.001) as sandbox:
        channel = WeChatPayChannel(sandbox.adapter_config())
        ...
        sandbox.pay(order_id, "success")

`customer_pay(base_url, …)` does the same over HTTP, for a sandbox in another process
(`cloudpay sandbox pay ORDER_ID --outcome …`); so do `expect_micropay(base_url, …)` and
`set_available(base_url, …)`.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from cloudpay.channels.sandbox_kit import LoopbackServer, SandboxHandle
from cloudpay.channels.sandbox_settlement import (
    SettlementAccount,
    SettlementTamper,
    fee_fen,
    net_fen,
    settle_into_bank,
    settlement_reference,
)
from cloudpay.channels.wechat.client import WeChatPayConfig
from cloudpay.channels.wechat.sandbox.app import DEFAULT_FAULT_HOLD_S, build_app, day_bill_rows
from cloudpay.channels.wechat.sandbox.core import PlatformKey, SandboxCore, platform_signer
from cloudpay.channels.wechat.sandbox.notifier import DeliveryAttempt, Notifier
from cloudpay.channels.wechat.sandbox.state import (
    FEE_RATE_BASIS_POINTS,
    BillTamper,
    Merchant,
    SandboxState,
)
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.crypto import generate_rsa_key_pair, rsa_public_key_serial_no
from cloudpay.kernel.masking import Secret

SETTLEMENT_PREFIX = "WXPAY"  # the reference of its settlement credits: WXPAY-SETTLE-<date>
SETTLEMENT_PAYER_ACCOUNT = "9100000000000018"  # Tenpay's clearing account (sandbox)
DEFAULT_REFUND_DELAY_S = 1.0  # sandbox seconds before a refund settles (PROCESSING → SUCCESS)


@dataclass(frozen=True)
class SandboxMerchantCredentials:
    """Everything a merchant's adapter needs to talk to the sandbox; secrets masked."""

    mchid: str
    appid: str
    apiv3_key: Secret[str] = field(repr=False)
    private_key_pem: Secret[str] = field(repr=False)
    serial_no: str
    sub_mchids: tuple[str, ...] = ()
    app_secret: Secret[str] | None = field(default=None, repr=False)  # AppSecret (OAuth)

    @property
    def public_key_pem(self) -> str:
        """The public half of the merchant API key: what WeChat verifies requests with."""
        return _public_pem(self.private_key_pem)

    def as_json(self) -> dict[str, Any]:
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "apiv3_key": self.apiv3_key.reveal(),
            "private_key_pem": self.private_key_pem.reveal(),
            "serial_no": self.serial_no,
            "sub_mchids": list(self.sub_mchids),
            "app_secret": self.app_secret.reveal() if self.app_secret else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxMerchantCredentials:
        return cls(
            mchid=data["mchid"],
            appid=data["appid"],
            apiv3_key=Secret(data["apiv3_key"]),
            private_key_pem=Secret(data["private_key_pem"]),
            serial_no=data["serial_no"],
            sub_mchids=tuple(data.get("sub_mchids", ())),
            # Files written before payer OAuth existed have no app secret: OAuth is then off.
            app_secret=Secret(data["app_secret"]) if data.get("app_secret") else None,
        )


def new_merchant_credentials(
    mchid: str, *, sub_mchids: tuple[str, ...] = ()
) -> SandboxMerchantCredentials:
    keys = generate_rsa_key_pair()
    return SandboxMerchantCredentials(
        mchid=mchid,
        appid=f"wxsandbox{mchid[-9:]}",
        apiv3_key=Secret(os.urandom(16).hex()),  # 32 ASCII characters, as WeChat's
        private_key_pem=keys.private_key_pem,
        serial_no=rsa_public_key_serial_no(keys.public_key_pem),
        sub_mchids=sub_mchids,
        app_secret=Secret(secrets.token_hex(16)),  # 32 characters, as WeChat's AppSecret
    )


def new_platform_key() -> PlatformKey:
    keys = generate_rsa_key_pair()
    key_id = "PUB_KEY_ID_01" + rsa_public_key_serial_no(keys.public_key_pem)[:24]
    return PlatformKey(keys.private_key_pem, keys.public_key_pem, key_id)


def _public_pem(private_key_pem: Secret[str]) -> str:
    key = serialization.load_pem_private_key(private_key_pem.reveal().encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


class WeChatSandbox(SandboxHandle):
    """A running sandbox: its URL, merchants, simulated customer, faults and notifications."""

    def __init__(self, core: SandboxCore, server: LoopbackServer) -> None:
        super().__init__(server, on_stop=core.notifier.stop)
        self._core = core
        self._credentials: dict[str, SandboxMerchantCredentials] = {}

    def __repr__(self) -> str:
        return f"WeChatSandbox(base_url={self.base_url!r}, merchants={sorted(self._credentials)})"

    # ------------------------------------------------------------ merchants

    def add_merchant(self, credentials: SandboxMerchantCredentials) -> SandboxMerchantCredentials:
        self._core.state.add_merchant(
            Merchant(
                mchid=credentials.mchid,
                appids=frozenset({credentials.appid}),
                apiv3_key=credentials.apiv3_key,
                public_key_pem=credentials.public_key_pem,
                serial_no=credentials.serial_no,
                sub_mchids=frozenset(credentials.sub_mchids),
                app_secret=credentials.app_secret,
            )
        )
        self._credentials[credentials.mchid] = credentials
        return credentials

    @property
    def merchant(self) -> SandboxMerchantCredentials:
        """The first merchant (the one a sandbox starts with)."""
        return next(iter(self._credentials.values()))

    @property
    def platform_public_key_pem(self) -> str:
        return self._core.platform.public_key_pem

    @property
    def platform_public_key_id(self) -> str:
        return self._core.platform.public_key_id

    def adapter_config(
        self, mchid: str | None = None, *, timeout_s: float = 5.0, sub_mchid: str | None = None
    ) -> WeChatPayConfig:
        """A `WeChatPayConfig` for `mchid` (default: the first merchant) at this sandbox."""
        credentials = self._credentials[mchid] if mchid else self.merchant
        return WeChatPayConfig(
            mchid=credentials.mchid,
            appid=credentials.appid,
            apiv3_key=credentials.apiv3_key,
            merchant_private_key_pem=credentials.private_key_pem,
            merchant_serial_no=credentials.serial_no,
            platform_public_key_pem=self.platform_public_key_pem,
            platform_public_key_id=self.platform_public_key_id,
            base_url=self.base_url,
            timeout_s=timeout_s,
            sub_mchid=sub_mchid,
            app_secret=credentials.app_secret,
            oauth_base_url=self.base_url,
            oauth_api_base_url=self.base_url,
        )

    # ------------------------------------------------------------ customer, faults, notices

    def pay(
        self,
        out_trade_no: str,
        outcome: str = "success",
        *,
        mchid: str | None = None,
        notify_delay_s: float = 0.0,
        duplicate_notifications: int = 0,
    ) -> dict[str, Any]:
        """The simulated customer acts on an order; see `customer_pay` for the outcomes."""
        return self._core.customer_pay(
            out_trade_no,
            outcome,
            mchid=mchid,
            notify_delay_s=notify_delay_s,
            duplicate_notifications=duplicate_notifications,
        )

    def expect_micropay(self, auth_code: str, outcome: str) -> None:
        """What the next payment with `auth_code` does: `success` (default), `password_pending`
        (202 USERPAYING until `pay(order, "confirm")` or `pay(order, "abandon")`),
        `insufficient_balance` (NOTENOUGH) or `invalid_code` (AUTH_CODE_INVALID)."""
        self._core.micropay.expect(auth_code, outcome)

    def set_available(self, available: bool) -> None:
        """Switch the whole API off (every `/v3` call: 503 SYSTEM_ERROR, nothing done) or on."""
        self._core.state.set_available(available)

    def inject_fault(self, kind: str, count: int = 1) -> None:
        """The next `count` API calls: `timeout` (acted on, answer held back), `server_error`
        (500 SYSTEM_ERROR, nothing done), `bad_signature` or `tampered_body`."""
        self._core.state.inject_fault(kind, count)

    def tamper_bill(self, out_trade_no: str, tamper: BillTamper) -> None:
        """Test-only: the trade bill misreports this paid order (amount, fee, a duplicate row,
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
        mchid: str | None = None,
    ) -> int:
        """资金结算: credit the merchant's net of `bill_date` (its trade bill's payments −
        refunds − fees) to the bank account `into`; returns the fen credited."""
        state = self._core.state
        merchant = state.merchant(mchid or self.merchant.mchid)
        assert merchant is not None, "settling a merchant the sandbox does not know"
        rows = day_bill_rows(state, merchant, None, bill_date)
        net = net_fen((r.settlement_total_fen, r.refund_fen, fee_fen(r.fee_yuan)) for r in rows)
        return settle_into_bank(
            into, reference=settlement_reference(SETTLEMENT_PREFIX, bill_date),
            payer_account_no=SETTLEMENT_PAYER_ACCOUNT, amount_fen=net, tamper=tamper,
        )  # fmt: skip

    # ------------------------------------------------------------ lifecycle

    def write_credentials(self, path: Path) -> None:
        """Merchants and platform key as JSON (mode 0600): a restart or another process
        (`cloudpay serve` configured for the sandbox) uses the same keys."""
        platform = self._core.platform
        data = {
            "base_url": self.base_url,
            "platform": {
                "private_key_pem": platform.private_key_pem.reveal(),
                "public_key_pem": platform.public_key_pem,
                "public_key_id": platform.public_key_id,
            },
            "merchants": [c.as_json() for c in self._credentials.values()],
        }
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))

    def describe(self) -> dict[str, Any]:
        """What to print for a developer: URLs and ids, no secrets."""
        return {
            "base_url": self.base_url,
            "platform_public_key_id": self.platform_public_key_id,
            "merchants": [
                {
                    "mchid": c.mchid,
                    "appid": c.appid,
                    "serial_no": c.serial_no,
                    "sub_mchids": c.sub_mchids,
                }
                for c in self._credentials.values()
            ],
            "customer": f"POST {self.base_url}/sandbox/customer/pay",
            "payer_oauth": f"GET {self.base_url}/connect/oauth2/authorize",
        }


def _load_credentials(path: Path | None) -> tuple[PlatformKey, list[SandboxMerchantCredentials]]:
    if path is None or not path.exists():
        return new_platform_key(), [
            new_merchant_credentials("1900000109", sub_mchids=("1900000110",))
        ]
    data = json.loads(path.read_text())
    platform = data["platform"]
    key = PlatformKey(
        Secret(platform["private_key_pem"]), platform["public_key_pem"], platform["public_key_id"]
    )
    return key, [SandboxMerchantCredentials.from_json(m) for m in data["merchants"]]


def start_wechat_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float = 1.0,
    *,
    clock: Clock | None = None,
    refund_delay_s: float = DEFAULT_REFUND_DELAY_S,
    fault_hold_s: float = DEFAULT_FAULT_HOLD_S,
    credentials_path: Path | None = None,
    fee_rate_bp: int = FEE_RATE_BASIS_POINTS,
) -> WeChatSandbox:
    """Start a sandbox in a background thread; `port=0` picks a free port.

    `fee_rate_bp` is the merchant's contracted 费率 its bills charge (0.60% unless told).

    `time_scale` multiplies every sandbox delay (notification retries, late notifications,
    refund settlement): 0.001 runs WeChat's 24-hour retry schedule in about 90 seconds.
    With `credentials_path`, keys are loaded from that file if it exists, else written to it.
    """
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")
    clock = clock or SystemClock()
    platform, merchants = _load_credentials(credentials_path)
    if not 0 <= fee_rate_bp <= 10_000:
        raise ValueError("fee_rate_bp must be 0–10,000")
    state = SandboxState(
        clock=clock, time_scale=time_scale, refund_delay_s=refund_delay_s, fee_rate_bp=fee_rate_bp
    )
    notifier = Notifier(sign=platform_signer(platform, clock), clock=clock, time_scale=time_scale)
    core = SandboxCore(state, notifier, platform)
    server = LoopbackServer.start(
        build_app(core, fault_hold_s=fault_hold_s),
        name="WeChat sandbox",
        host=host,
        port=port,
        on_failure=notifier.stop,
    )
    sandbox = WeChatSandbox(core, server)
    for credentials in merchants:
        sandbox.add_merchant(credentials)
    if credentials_path is not None and not credentials_path.exists():
        sandbox.write_credentials(credentials_path)
    return sandbox


def customer_pay(
    base_url: str,
    out_trade_no: str,
    outcome: str = "success",
    *,
    mchid: str | None = None,
    notify_delay_s: float = 0.0,
    duplicate_notifications: int = 0,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Ask a running sandbox's simulated customer to act on an order, over HTTP.

    Outcomes: `success` (paid, TRANSACTION.SUCCESS notified), `fail` (PAYERROR, no
    notification), `timeout` (the payer never confirms: the order stays NOTPAY until closed or
    expired), `pay_twice` (paid; the second attempt is refused and the notification is sent
    twice); for a payment-code order waiting in USERPAYING, `confirm` (the password is
    entered: paid) or `abandon` (the password box is closed: PAYERROR). `notify_delay_s`
    (sandbox seconds) makes the notification late, `duplicate_notifications` sends extra
    copies of it. Raises `ValueError` with the
    sandbox's reason if the customer cannot act (unknown order, already paid, …).
    """
    payload = {
        "out_trade_no": out_trade_no,
        "outcome": outcome,
        "mchid": mchid,
        "notify_delay_s": notify_delay_s,
        "duplicate_notifications": duplicate_notifications,
    }
    refused = "the simulated customer could not act"
    return _control(base_url, "/sandbox/customer/pay", payload, timeout_s, refused)


def expect_micropay(
    base_url: str, auth_code: str, outcome: str, *, timeout_s: float = 10.0
) -> dict[str, Any]:
    """Script a running sandbox's payment code over HTTP (see `WeChatSandbox.expect_micropay`)."""
    payload = {"auth_code": auth_code, "outcome": outcome}
    refused = "the payment code could not be scripted"
    return _control(base_url, "/sandbox/micropay/expect", payload, timeout_s, refused)


def set_available(base_url: str, available: bool, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """Switch a running sandbox's API off or on over HTTP."""
    payload = {"available": available}
    return _control(base_url, "/sandbox/availability", payload, timeout_s, "not switched")


def _control(
    base_url: str, path: str, payload: dict[str, Any], timeout_s: float, refused: str
) -> dict[str, Any]:
    """POST to the sandbox's control API; `ValueError(refused: reason)` if it says no."""
    response = httpx.post(f"{base_url.rstrip('/')}{path}", json=payload, timeout=timeout_s)
    if response.status_code != 200:
        try:
            reason = response.json().get("error", response.text)
        except ValueError:
            reason = response.text
        raise ValueError(f"{refused}: {reason}")
    result: dict[str, Any] = response.json()
    return result


def adapter_config_from_credentials(
    path: Path, *, base_url: str | None = None, mchid: str | None = None, timeout_s: float = 10.0
) -> WeChatPayConfig:
    """A `WeChatPayConfig` for a sandbox running elsewhere, from its credentials file."""
    data = json.loads(path.read_text())
    merchants = [SandboxMerchantCredentials.from_json(m) for m in data["merchants"]]
    merchant = next(m for m in merchants if mchid in (None, m.mchid))
    return WeChatPayConfig(
        mchid=merchant.mchid,
        appid=merchant.appid,
        apiv3_key=merchant.apiv3_key,
        merchant_private_key_pem=merchant.private_key_pem,
        merchant_serial_no=merchant.serial_no,
        platform_public_key_pem=data["platform"]["public_key_pem"],
        platform_public_key_id=data["platform"]["public_key_id"],
        base_url=base_url or data["base_url"],
        timeout_s=timeout_s,
        app_secret=merchant.app_secret,
        oauth_base_url=base_url or data["base_url"],
        oauth_api_base_url=base_url or data["base_url"],
    )
