"""The ledger journals of payments: capture, refund hold, refund post / void.

Transfer ids derive from our order and refund ids, so a step that runs twice (a retried
transaction, a duplicate notification) replays the same transfer and changes nothing.
"""

from __future__ import annotations

from cloudpay import ledger
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import PaymentRefused
from cloudpay.ledger import Purpose, Transfer
from cloudpay.payments.model import (
    capture_transfer_id,
    refund_hold_transfer_id,
    refund_post_transfer_id,
    refund_void_transfer_id,
)


class LedgerInvariantBroken(RuntimeError):
    """A posting the payment rules guarantee was refused: a bug, never the caller's fault."""


def _accounts(uow: UnitOfWork, channel: str, merchant_id: str, currency: str) -> tuple[str, str]:
    clearing = ledger.open_chart_account(
        uow, Purpose.CHANNEL_CLEARING, ledger.channel_owner(channel), currency
    )
    pending = ledger.open_chart_account(
        uow, Purpose.MERCHANT_PENDING, ledger.merchant_owner(merchant_id), currency
    )
    return clearing.id, pending.id


def _apply(uow: UnitOfWork, transfer: Transfer) -> ledger.TransferResult:
    [result] = ledger.create_transfers(uow, [transfer])
    return result


def post_capture(
    uow: UnitOfWork,
    *,
    order_id: str,
    channel: str,
    merchant_id: str,
    amount_fen: int,
    currency: str,
) -> None:
    """The channel owes us the payment; we owe it to the merchant (待结算)."""
    clearing, pending = _accounts(uow, channel, merchant_id, currency)
    transfer = Transfer(
        capture_transfer_id(order_id), clearing, pending, amount_fen, currency,
        "payment.capture", user_data=order_id,
    )  # fmt: skip
    result = _apply(uow, transfer)
    if not result.ok:
        raise LedgerInvariantBroken(f"capture of {order_id} refused: {result.result}")


def hold_refund(
    uow: UnitOfWork, *, refund_id: str, order_id: str, channel: str, merchant_id: str,
    amount_fen: int, currency: str,
) -> None:  # fmt: skip
    """Reserve the refund in the merchant's pending balance before asking the channel."""
    clearing, pending = _accounts(uow, channel, merchant_id, currency)
    transfer = Transfer(
        refund_hold_transfer_id(refund_id), pending, clearing, amount_fen, currency,
        "refund", flags=ledger.PENDING, user_data=order_id,
    )  # fmt: skip
    result = _apply(uow, transfer)
    if result.result == "exceeds_credits":
        raise PaymentRefused(
            "the merchant's unsettled balance does not cover this refund",
            code="insufficient_merchant_balance",
            param="amount",
        )
    if not result.ok:
        raise LedgerInvariantBroken(f"refund hold {refund_id} refused: {result.result}")


def settle_refund(uow: UnitOfWork, *, refund_id: str, succeeded: bool) -> None:
    """The channel returned the money (post the hold) or could not (void it)."""
    pending_id = refund_hold_transfer_id(refund_id)
    if succeeded:
        transfer = Transfer(refund_post_transfer_id(refund_id), pending_id=pending_id,
                            flags=ledger.POST_PENDING, user_data=refund_id)  # fmt: skip
    else:
        transfer = Transfer(refund_void_transfer_id(refund_id), pending_id=pending_id,
                            flags=ledger.VOID_PENDING, user_data=refund_id)  # fmt: skip
    result = _apply(uow, transfer)
    if not result.ok:
        raise LedgerInvariantBroken(f"refund {refund_id} settlement refused: {result.result}")
