"""Run a sandbox partner bank on loopback, and drive it from tests and the demo.

    with start_bank_sandbox(bank_code="WFRCB", time_scale=0.001) as bank:
        client = PartnerBankClient(bank.adapter_config())
        opened = client.open_account(...)
        bank.freeze(opened.account_no)

Several can run at once (a city has more than one local bank), each with its own code,
keys, custody account and limits.
"""

from __future__ import annotations

from cloudpay.channels.bank import wire
from cloudpay.channels.bank.client import PartnerBankConfig
from cloudpay.channels.bank.protocol import AccountStatus, BankLimits
from cloudpay.channels.bank.sandbox.app import DEFAULT_FAULT_HOLD_S, build_app
from cloudpay.channels.bank.sandbox.core import BankCore, RegisteredClient
from cloudpay.channels.bank.sandbox.notifier import DeliveryAttempt
from cloudpay.channels.bank.sandbox.state import BankState, Transfer
from cloudpay.channels.sandbox_kit import LoopbackServer, SandboxHandle, Scheduler
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.crypto import generate_rsa_key_pair, rsa_public_key_serial_no

DEFAULT_CUSTODY_BALANCE_FEN = 100_000_000_00  # 100 million CNY of customer reserve
PLATFORM_CLIENT_ID = "cloudpay"


class BankSandbox(SandboxHandle):
    """A running sandbox bank: its URL, the platform's credentials, and test controls."""

    def __init__(
        self,
        core: BankCore,
        server: LoopbackServer,
        *,
        client_key: wire.SigningKey,
        custody_account_no: str,
    ) -> None:
        super().__init__(server, on_stop=core.stop)
        self._core, self._client_key = core, client_key
        self.bank_code = core.state.bank_code
        self.limits = core.state.limits
        self.custody_account_no = custody_account_no

    def __repr__(self) -> str:
        return f"BankSandbox(bank_code={self.bank_code!r}, base_url={self.base_url!r})"

    def adapter_config(self, *, timeout_s: float = 5.0) -> PartnerBankConfig:
        """A `PartnerBankConfig` for the platform at this bank."""
        return PartnerBankConfig(
            bank_code=self.bank_code,
            client_id=PLATFORM_CLIENT_ID,
            client_private_key_pem=self._client_key.private_key_pem,
            client_serial_no=self._client_key.serial_no,
            bank_public_key_pem=self._core.bank_public_key_pem,
            bank_serial_no=self._core.bank_key.serial_no,
            custody_account_no=self.custody_account_no,
            base_url=self.base_url,
            limits=self.limits,
            timeout_s=timeout_s,
        )

    # ------------------------------------------------------------ test controls

    def set_available(self, available: bool) -> None:
        """While down, every `/api/v1` call answers 503 and does nothing."""
        self._core.available = available

    def inject_fault(self, kind: str, count: int = 1) -> None:
        """The next `count` API calls: `timeout` (acted on, answer held back),
        `server_error` (500, nothing done) or `bad_signature` (answer signature corrupted)."""
        self._core.state.inject_fault(kind, count)

    def freeze(self, account_no: str) -> None:
        self._core.state.set_status(account_no, AccountStatus.FROZEN)

    def unfreeze(self, account_no: str) -> None:
        self._core.state.set_status(account_no, AccountStatus.ACTIVE)

    def close_account(self, account_no: str) -> None:
        self._core.state.set_status(account_no, AccountStatus.CLOSED)

    def settle_later(
        self, count: int = 1, *, delay_s: float = 1.0, outcome: str = "succeeded"
    ) -> None:
        """The next `count` transfers answer PROCESSING and finish after `delay_s` sandbox
        seconds as `outcome` (`succeeded` or `failed`), announced by webhook."""
        self._core.state.settle_later(count, delay_s, outcome)

    def return_payout(self, transfer_id: str, reason: str = "收款账户已销户") -> Transfer:
        """退票: a succeeded payout to an external card comes back (webhook TXN_RETURNED)."""
        return self._core.return_payout(transfer_id, reason)

    def external_credit(
        self, account_no: str, card_number: str, amount_fen: int, reference: str | None = None
    ) -> Transfer:
        """Money arrives from a card at another bank (webhook CREDIT_RECEIVED if booked)."""
        return self._core.credit_from_outside(account_no, card_number, amount_fen, reference)

    def set_notify_url(self, url: str | None) -> None:
        """Where the bank POSTs its webhooks (none are sent while unset)."""
        self._core.notify_url = url

    def notification_attempts(self, transfer_id: str | None = None) -> list[DeliveryAttempt]:
        return self._core.notifier.attempts(transfer_id)


def _new_signing_key() -> tuple[wire.SigningKey, str]:
    keys = generate_rsa_key_pair()
    serial = rsa_public_key_serial_no(keys.public_key_pem)
    return wire.SigningKey(keys.private_key_pem, serial), keys.public_key_pem


def start_bank_sandbox(
    bank_code: str = "WFCB",
    limits: BankLimits | None = None,
    time_scale: float = 1.0,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock | None = None,
    custody_balance_fen: int = DEFAULT_CUSTODY_BALANCE_FEN,
    fault_hold_s: float = DEFAULT_FAULT_HOLD_S,
) -> BankSandbox:
    """Start a sandbox bank in a background thread; `port=0` picks a free port.

    The platform's custody account (备付金) is opened with `custody_balance_fen`. `time_scale`
    multiplies every delay (late settlement, webhook retries)."""
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")
    if not bank_code.isalnum() or not 2 <= len(bank_code) <= 12:
        raise ValueError("bank_code is 2..12 letters or digits")
    clock = clock or SystemClock()
    state = BankState(bank_code=bank_code, limits=limits or BankLimits(), clock=clock)
    bank_key, bank_public_pem = _new_signing_key()
    client_key, client_public_pem = _new_signing_key()
    core = BankCore(
        state,
        scheduler=Scheduler(time_scale=time_scale),
        bank_key=bank_key,
        bank_public_key_pem=bank_public_pem,
    )
    core.clients[PLATFORM_CLIENT_ID] = RegisteredClient(
        PLATFORM_CLIENT_ID, client_public_pem, client_key.serial_no
    )
    custody = f"{bank_code}0001000000000001"
    state.open_custody(custody, PLATFORM_CLIENT_ID, custody_balance_fen)
    server = LoopbackServer.start(
        build_app(core, fault_hold_s=fault_hold_s),
        name="bank sandbox",
        host=host,
        port=port,
        on_failure=core.stop,
    )
    return BankSandbox(core, server, client_key=client_key, custody_account_no=custody)
