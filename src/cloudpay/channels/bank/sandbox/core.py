"""What the sandbox's HTTP app and its Python handle share: books, keys, registered
clients, replay memory, timed settlement and webhooks; plus the bank's JSON views."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from cloudpay.channels.bank import transformers as tf
from cloudpay.channels.bank import wire
from cloudpay.channels.bank.protocol import NotificationKind, TransferStatus
from cloudpay.channels.bank.sandbox.notifier import Notifier, Webhook
from cloudpay.channels.bank.sandbox.state import Account, BankState, Transfer, TransferCommand
from cloudpay.channels.sandbox_kit import Scheduler
from cloudpay.kernel.masking import mask_card_number


@dataclass(frozen=True)
class RegisteredClient:
    """A platform the bank talks to: its id and the public key its requests verify with."""

    client_id: str
    public_key_pem: str
    serial_no: str


def account_view(account: Account) -> dict[str, Any]:
    wire_class = (
        tf.CUSTODY_CLASS if account.account_class is None
        else tf.CLASS_TO_WIRE[account.account_class]
    )  # fmt: skip
    return {
        "acct_no": account.account_no,
        "acct_class": wire_class,
        "acct_status": tf.STATUS_TO_WIRE[account.status],
        "owner_ref": account.owner_reference,
        "bind_card_no": mask_card_number(account.bound_card) if account.bound_card else None,
        "open_time": tf.format_time(account.opened_at),
        "warnings": [
            {"code": code, "msg": "绑定卡号未通过Luhn校验，请核实"} for code in account.warnings
        ],
    }


def balance_view(account: Account, now_iso: str) -> dict[str, Any]:
    return {
        "acct_no": account.account_no,
        "ledger_bal": account.balance_fen,
        "avail_bal": account.balance_fen - account.held_fen,
        "ccy": "CNY",
        "as_of": now_iso,
    }


def transfer_view(transfer: Transfer) -> dict[str, Any]:
    command, breach = transfer.command, transfer.breach
    return {
        "req_id": command.transfer_id,
        "bank_serial": transfer.bank_serial,
        "txn_status": tf.TXN_TO_WIRE[transfer.status],
        "amount": command.amount_fen,
        "ccy": command.currency,
        "payer_acct": command.payer,
        "payee_acct": command.payee,
        "fail_code": None if transfer.failure is None else transfer.failure.value,
        "fail_msg": transfer.failure_message,
        "limit_type": None if breach is None else breach.limit.value,
        "limit_remaining": None if breach is None else breach.remaining_fen,
        "accept_time": tf.format_time(transfer.accepted_at),
        "finish_time": tf.format_time(transfer.finished_at) if transfer.finished_at else None,
        "return_time": tf.format_time(transfer.returned_at) if transfer.returned_at else None,
    }


class BankCore:
    def __init__(
        self,
        state: BankState,
        *,
        scheduler: Scheduler,
        bank_key: wire.SigningKey,
        bank_public_key_pem: str,
    ) -> None:
        self.state, self.scheduler = state, scheduler
        self.bank_key, self.bank_public_key_pem = bank_key, bank_public_key_pem
        self.clients: dict[str, RegisteredClient] = {}
        self.nonces = wire.NonceMemory()
        self.notify_url: str | None = None
        self.available = True
        self.notifier = Notifier(scheduler=scheduler, sign=self.sign_webhook, clock=state.clock)

    def now_s(self) -> int:
        return self.state.clock.now_ns() // 1_000_000_000

    def sign_answer(self, status: int, request_nonce: str, body: bytes) -> dict[str, str]:
        return wire.sign_answer(
            self.bank_key,
            first_line=str(status),
            request_nonce=request_nonce,
            body=body,
            timestamp=str(self.now_s()),
        )

    def sign_webhook(self, body: bytes) -> dict[str, str]:
        return wire.sign_answer(
            self.bank_key,
            first_line=wire.WEBHOOK_LINE,
            request_nonce="",
            body=body,
            timestamp=str(self.now_s()),
        )

    # ------------------------------------------------------------ money that moves later

    def transfer(self, command: TransferCommand) -> Transfer:
        transfer, settlement = self.state.transfer(command)
        if settlement is not None:
            outcome = settlement.outcome
            self.scheduler.later(
                settlement.delay_s, lambda: self._settle(settlement.transfer_id, outcome)
            )
        return transfer

    def _settle(self, transfer_id: str, outcome: str) -> None:
        transfer = self.state.settle(transfer_id, outcome)
        succeeded = transfer.status is TransferStatus.SUCCEEDED
        kind = (
            NotificationKind.TRANSFER_SUCCEEDED if succeeded else NotificationKind.TRANSFER_FAILED
        )
        self.notify(kind, transfer)

    def return_payout(self, transfer_id: str, reason: str) -> Transfer:
        transfer = self.state.return_payout(transfer_id, reason)
        self.notify(NotificationKind.TRANSFER_RETURNED, transfer)
        return transfer

    def credit_from_outside(
        self, account_no: str, card_number: str, amount_fen: int, reference: str | None = None
    ) -> Transfer:
        transfer = self.state.credit_from_outside(account_no, card_number, amount_fen, reference)
        if transfer.status is TransferStatus.SUCCEEDED:
            self.notify(NotificationKind.CREDIT_RECEIVED, transfer)
        return transfer

    def notify(self, kind: NotificationKind, transfer: Transfer) -> None:
        url = self.notify_url
        if url is None:
            return
        with self.state.lock:  # the webhook carries the transfer as it is now
            view = transfer_view(transfer)
        event_id = f"evt_{uuid.uuid4().hex}"
        event = {
            "event_id": event_id,
            "event_type": tf.EVENT_TO_WIRE[kind],
            "bank_code": self.state.bank_code,
            "create_time": tf.format_time(self.state.clock.now()),
            "txn": view,
        }
        body = json.dumps(event, ensure_ascii=False).encode()
        self.notifier.submit(Webhook(url, event_id, kind.value, transfer.command.transfer_id, body))

    def stop(self) -> None:
        self.scheduler.stop()
        self.notifier.stop()
