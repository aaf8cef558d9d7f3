"""The ledger side of splits (分账): each receiver's account, and the transfers that move a
merchant's day's split parts from its pending account to the receivers (and back).

A receiver is paid like a merchant: its own receivers (stores, agents, suppliers) hold a
balance under `merchant:{receiver_id}` in the available account that payouts draw on, so the
same payout path and settlement profile (its e-account) serve both. A merchant receiver is
credited on its own available account; the platform on its income account. A receiver's own
account has no balance limit: a split return after it was paid out leaves a debt, netted
from its next splits before anything is paid again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from cloudpay import ledger, merchants
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.ledger import Purpose, Transfer
from cloudpay.settlement.accounts import AVAILABLE_CODE, Key, open_accounts

SPLIT_CODE: Final = "split"
SPLIT_RETURN_CODE: Final = "split_return"


def receiver_key(receiver: merchants.Receiver, currency: str) -> Key:
    """The ledger account (owner, code, currency) a receiver's parts are credited to."""
    if receiver.kind is merchants.ReceiverKind.PLATFORM:
        return ledger.PLATFORM, Purpose.FEE_INCOME.value, currency
    if receiver.kind is merchants.ReceiverKind.MERCHANT and receiver.reference_id:
        return ledger.merchant_owner(receiver.reference_id), AVAILABLE_CODE, currency
    return ledger.merchant_owner(receiver.id), AVAILABLE_CODE, currency


def _open_debt_capable(uow: UnitOfWork, key: Key) -> str:
    owner, code, currency = key
    new = ledger.NewAccount(owner=owner, code=code, ledger=currency, id=f"{code}:{owner}")
    [result] = ledger.create_accounts(uow, [new])
    if result.ok:
        return result.id
    return ledger.open_account(uow, new).id  # opened before under another id: use it


def open_receiver_account(uow: UnitOfWork, receiver: merchants.Receiver, currency: str) -> str:
    key = receiver_key(receiver, currency)
    if receiver.kind is merchants.ReceiverKind.PLATFORM:
        return ledger.open_chart_account(uow, Purpose.FEE_INCOME, ledger.PLATFORM, currency).id
    if receiver.kind is merchants.ReceiverKind.MERCHANT:
        return open_accounts(uow, [key])[key]
    return _open_debt_capable(uow, key)


def open_receiver_accounts(
    uow: UnitOfWork, receivers: Iterable[merchants.Receiver], currency: str
) -> dict[str, str]:
    """Account id per receiver id, opened if need be."""
    return {r.id: open_receiver_account(uow, r, currency) for r in receivers}


def split_transfers(
    *,
    line_id: str,
    pending_account: str,
    accounts: Mapping[str, str],
    credits: Mapping[str, int],
    returns: Mapping[str, int],
    currency: str,
) -> list[Transfer]:
    """Returns first (receivers → merchant_pending), then splits (merchant_pending →
    receivers), all linked: the caller appends the merchant's own parts to the same chain."""
    transfers = []
    for n, receiver_id in enumerate(sorted(returns)):
        if returns[receiver_id]:
            transfers.append(
                Transfer(
                    f"{line_id}:return{n}",
                    accounts[receiver_id],
                    pending_account,
                    returns[receiver_id],
                    currency,
                    SPLIT_RETURN_CODE,
                    flags=ledger.LINKED,
                    user_data=line_id,
                )
            )
    for n, receiver_id in enumerate(sorted(credits)):
        if credits[receiver_id]:
            transfers.append(
                Transfer(
                    f"{line_id}:split{n}",
                    pending_account,
                    accounts[receiver_id],
                    credits[receiver_id],
                    currency,
                    SPLIT_CODE,
                    flags=ledger.LINKED,
                    user_data=line_id,
                )
            )
    return transfers


def link(transfers: list[Transfer]) -> list[Transfer]:
    """One all-or-nothing chain: every transfer linked to the next, the last ends it."""
    for transfer in transfers:
        transfer.flags |= ledger.LINKED
    if transfers:
        transfers[-1].flags &= ~ledger.LINKED
    return transfers
