"""The ledger accounts settlement writes, opened in bulk under stable ids.

Settlement touches thousands of merchants a run; opening their accounts one by one costs a
query each. The accounts settlement owns (available, reserve, agents' commission) get a
stable id, `{code}:{owner}`, and a batch opens or finds them all with one
`ledger.open_accounts_by_key` call: a fixed number of statements whatever the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from cloudpay import ledger
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.ledger import Purpose

RESERVE_CODE: Final = "merchant_reserve"  # 风险保证金 held back from payouts
COMMISSION_CODE: Final = "commission_payable"  # 分润 owed to an agent
AVAILABLE_CODE: Final = Purpose.MERCHANT_AVAILABLE.value
LIABILITY: Final = ledger.ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS
Key = tuple[str, str, str]  # owner, code, currency


def agent_owner(agent_id: str) -> str:
    return f"agent:{agent_id}"


def _new(key: Key) -> ledger.NewAccount:
    owner, code, currency = key
    return ledger.NewAccount(
        owner=owner, code=code, ledger=currency, flags=LIABILITY, id=f"{code}:{owner}"
    )


def open_accounts(uow: UnitOfWork, keys: Iterable[Key]) -> dict[Key, str]:
    """The ids of the settlement-owned accounts `keys`, opened if need be (an account some
    other context opened first under a generated id is found by its key)."""
    wanted = sorted(set(keys))
    by_key = ledger.open_accounts_by_key(uow, [_new(key) for key in wanted])
    return {(o, c, cur): by_key[(o, c, cur)].id for o, c, cur in wanted}


def open_one(uow: UnitOfWork, owner: str, code: str, currency: str = "CNY") -> str:
    return open_accounts(uow, [(owner, code, currency)])[(owner, code, currency)]


def available_account(uow: UnitOfWork, merchant_id: str, currency: str = "CNY") -> str:
    return open_one(uow, ledger.merchant_owner(merchant_id), AVAILABLE_CODE, currency)


def reserve_account(uow: UnitOfWork, merchant_id: str, currency: str = "CNY") -> str:
    return open_one(uow, ledger.merchant_owner(merchant_id), RESERVE_CODE, currency)
