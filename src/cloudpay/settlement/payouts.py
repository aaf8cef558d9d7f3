"""Payout use cases (出款): each a short transaction around, never during, a bank call.

A payout is a row and a pending ledger transfer merchant_available → the platform's custody
account at the bank (备付金), created before the bank is asked; the bank's answer posts it
(money left), voids it (money back on the merchant's balance) or leaves it pending (the bank
is still processing, or did not answer: the same payout id is sent again, and the bank moves
money once per id). A payout returned later (退票) is credited back by a new transfer.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from cloudpay import ledger
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.ledger import Purpose, Transfer
from cloudpay.settlement import repository
from cloudpay.settlement.accounts import available_account, reserve_account
from cloudpay.settlement.service import SettlementRefused

E_ACCOUNT: Final = "e_account"
CLASS_I: Final = "class_i"
SENDING, SUCCEEDED, FAILED, RETURNED = "sending", "succeeded", "failed", "returned"


def custody_account(uow: UnitOfWork, bank_code: str, currency: str = "CNY") -> str:
    owner = ledger.bank_owner(bank_code)
    return ledger.open_chart_account(uow, Purpose.BANK_RESERVE, owner, currency).id


def mirror_custody_opening(uow: UnitOfWork, *, bank_code: str, balance_fen: int) -> None:
    """The custody account's balance on the day the bank was connected, mirrored once."""
    funding = ledger.open_chart_account(uow, Purpose.FUNDING, ledger.PLATFORM, "CNY").id
    transfer = Transfer(
        f"custody:{bank_code}:opening",
        custody_account(uow, bank_code),
        funding,
        balance_fen,
        "CNY",
        "custody_opening",
    )
    [result] = ledger.create_transfers(uow, [transfer])
    if not result.ok:
        raise SettlementRefused(f"custody mirror for {bank_code}: {result.result}")


def custody_balance_fen(uow: UnitOfWork, bank_code: str) -> int:
    account = ledger.get_account(uow, custody_account(uow, bank_code))
    return account.balance.net_debit


def available_fen(uow: UnitOfWork, merchant_id: str, currency: str = "CNY") -> int:
    """What the merchant may be paid now: available, less payouts in transit."""
    balance = ledger.get_account(uow, available_account(uow, merchant_id, currency)).balance
    return balance.credits_posted - balance.debits_posted - balance.debits_pending


def balances(uow: UnitOfWork, merchant_id: str, currency: str = "CNY") -> dict[str, Any]:
    """Pending (captured, not settled), available, in transit (payouts sent) and reserved."""
    owner = ledger.merchant_owner(merchant_id)
    pending_account = ledger.open_chart_account(uow, Purpose.MERCHANT_PENDING, owner, currency)
    pending = ledger.get_account(uow, pending_account.id).balance
    available = ledger.get_account(uow, available_account(uow, merchant_id, currency)).balance
    reserved = ledger.get_account(uow, reserve_account(uow, merchant_id, currency)).balance
    return {
        "object": "merchant_balance",
        "merchant_id": merchant_id,
        "currency": currency,
        "pending": pending.net_credit - pending.debits_pending,
        "available": available.net_credit - available.debits_pending,
        "in_transit": available.debits_pending,
        "reserved": reserved.net_credit,
    }


def used_this_year_fen(uow: UnitOfWork, merchant_id: str, pay_date: date) -> tuple[int, int]:
    """Our e-account payouts that count against the limits: (today, this year)."""
    rows = repository.payouts_of_merchant(uow.connection, merchant_id, date(pay_date.year, 1, 1))
    counted = [r for r in rows if r.destination_kind == E_ACCOUNT and r.status != FAILED]
    today = sum(r.amount_fen for r in counted if r.pay_date == pay_date)
    return today, sum(r.amount_fen for r in counted)


def create_payout(
    uow: UnitOfWork,
    *,
    run_id: str,
    merchant_id: str,
    pay_date: date,
    kind: str,
    bank_code: str,
    destination: str,
    amount_fen: int,
    limited_by: str | None,
) -> str | None:
    """The payout row and its hold; None when today's payout of this kind already exists
    (a second run of the same date pays nothing twice)."""
    if repository.payout_for_day(uow.connection, merchant_id, pay_date, kind) is not None:
        return None
    if amount_fen <= 0 or amount_fen > available_fen(uow, merchant_id):
        return None
    # Stored before the bank is asked, so a resend after a crash reuses it.
    payout_id = new_id("pout")
    available = available_account(uow, merchant_id)
    hold = Transfer(
        f"{payout_id}:hold",
        available,
        custody_account(uow, bank_code),
        amount_fen,
        "CNY",
        "payout",
        flags=ledger.PENDING,
        user_data=payout_id,
    )
    [result] = ledger.create_transfers(uow, [hold])
    if not result.ok:
        raise SettlementRefused(f"payout hold {payout_id}: {result.result}")
    now = uow.clock.now()
    repository.insert_payout(
        uow.connection,
        {
            "id": payout_id,
            "run_id": run_id,
            "merchant_id": merchant_id,
            "pay_date": pay_date,
            "destination_kind": kind,
            "bank_code": bank_code,
            "destination_account": destination,
            "amount_fen": amount_fen,
            "currency": "CNY",
            "status": SENDING,
            "limited_by": limited_by,
            "failure_reason": None,
            "bank_serial": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    return payout_id


def record_outcome(
    uow: UnitOfWork,
    *,
    payout_id: str,
    status: str,
    bank_serial: str | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """Apply the bank's answer once: post, void, or credit back a returned payout."""
    payout = repository.get_payout(uow.connection, payout_id)
    if payout is None:
        raise SettlementRefused(f"no payout {payout_id}")
    current = payout.status
    transfer: Transfer | None = None
    if current == SENDING and status == SUCCEEDED:
        transfer = Transfer(
            f"{payout_id}:post",
            pending_id=f"{payout_id}:hold",
            flags=ledger.POST_PENDING,
            user_data=payout_id,
        )
    elif current == SENDING and status == FAILED:
        transfer = Transfer(
            f"{payout_id}:void",
            pending_id=f"{payout_id}:hold",
            flags=ledger.VOID_PENDING,
            user_data=payout_id,
        )
    elif current in (SENDING, SUCCEEDED) and status == RETURNED:
        if current == SENDING:
            record_outcome(uow, payout_id=payout_id, status=SUCCEEDED, bank_serial=bank_serial)
        available = available_account(uow, payout.merchant_id)
        transfer = Transfer(
            f"{payout_id}:returned",
            custody_account(uow, payout.bank_code),
            available,
            payout.amount_fen,
            "CNY",
            "payout_returned",
        )
    else:
        return dict(payout._mapping)  # already applied, or nothing new
    [result] = ledger.create_transfers(uow, [transfer])
    if not result.ok:
        raise SettlementRefused(f"payout {payout_id} {status}: {result.result}")
    repository.update_payout(
        uow.connection,
        payout_id,
        status=status,
        bank_serial=bank_serial or payout.bank_serial,
        failure_reason=failure_reason,
        updated_at=uow.clock.now(),
    )
    return get_payout(uow, payout_id)


def get_payout(uow: UnitOfWork, payout_id: str) -> dict[str, Any]:
    found = repository.get_payout(uow.connection, payout_id)
    if found is None:
        raise NotFound(f"no payout {payout_id}", param="payout_id")
    return dict(found._mapping)
