"""A protocol-faithful partner-bank sandbox for loopback: e-accounts with real-name checks,
PBoC limits, idempotent transfers, late settlement, returned payouts, signed webhooks and
daily statements. Entry point: `start_bank_sandbox` (returns a `BankSandbox` handle)."""

from cloudpay.channels.bank.sandbox.notifier import RETRY_SCHEDULE_S, DeliveryAttempt
from cloudpay.channels.bank.sandbox.server import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.state import FAULT_KINDS, SETTLE_OUTCOMES

__all__ = [
    "FAULT_KINDS",
    "RETRY_SCHEDULE_S",
    "SETTLE_OUTCOMES",
    "BankSandbox",
    "DeliveryAttempt",
    "start_bank_sandbox",
]
