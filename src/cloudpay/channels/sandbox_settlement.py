"""How a channel sandbox settles its day into the partner bank (结算到账), over HTTP only.

WeChat Pay, Alipay and UnionPay pay a merchant's daily net — payments − refunds − fees, as
their own trade bill states it — into the settlement account the merchant named, the next
day; for a payment platform that account is its custody (备付金) account at a partner bank.
The sandboxes do the same: a channel sandbox sums its bill of the day and credits the bank
sandbox's custody account through the bank's incoming-credit control endpoint
(`POST /sandbox/credits`), with a reference naming the channel and the bill date
(`WXPAY-SETTLE-20261124`), the way the real credit's remark (附言) does. Tests and the demo can
make the credit go missing or arrive with a different amount (`SettlementTamper`).

Fees are settled per bill row, each rounded half away from zero to the fen, so the credit is
exactly what a reader that rounds each row's fee the same way sums from the bill file.

WeChat Pay settlement (资金结算, T+1 to the bound account):
https://pay.weixin.qq.com/docs/merchant/products/bill-download/introduction.html
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

SETTLEMENT_REFERENCE_WORD = "SETTLE"
CREDITS_PATH = "/sandbox/credits"


@dataclass(frozen=True)
class SettlementAccount:
    """Where a channel sandbox pays its days: a bank sandbox and the custody account there."""

    bank_base_url: str
    account_no: str


@dataclass(frozen=True)
class SettlementTamper:
    """Test-only: the day's credit never arrives (`missing`) or is off by `delta_fen`."""

    missing: bool = False
    delta_fen: int = 0


def settlement_reference(prefix: str, bill_date: date) -> str:
    """The credit's reference (附言): `WXPAY-SETTLE-20261124`."""
    return f"{prefix}-{SETTLEMENT_REFERENCE_WORD}-{bill_date:%Y%m%d}"


def fee_fen(fee_yuan: Decimal) -> int:
    """A bill row's fee (yuan, up to 5 decimals) in fen, half away from zero."""
    return int((fee_yuan * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def net_fen(rows: Iterable[tuple[int, int, int]]) -> int:
    """The day's net from (received fen, refunded fen, fee fen) per bill row."""
    return sum(received - refunded - fee for received, refunded, fee in rows)


def settle_into_bank(
    account: SettlementAccount,
    *,
    reference: str,
    payer_account_no: str,
    amount_fen: int,
    tamper: SettlementTamper | None = None,
    timeout_s: float = 10.0,
) -> int:
    """Credit the day's net to the custody account; returns what was credited (0: nothing,
    as on a day whose refunds and fees ate the payments — the channel then keeps the debt)."""
    tamper = tamper or SettlementTamper()
    amount = amount_fen + tamper.delta_fen
    if tamper.missing or amount <= 0:
        return 0
    body: dict[str, Any] = {
        "acct_no": account.account_no, "card_no": payer_account_no, "amount": amount,
        "req_id": reference,
    }  # fmt: skip
    answer = httpx.post(account.bank_base_url + CREDITS_PATH, json=body, timeout=timeout_s)
    answer.raise_for_status()
    if answer.json().get("txn_status") != "SUCCESS":
        raise RuntimeError(f"the bank did not book the settlement credit: {answer.text}")
    return amount
