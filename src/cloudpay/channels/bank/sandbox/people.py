"""Made-up but well-formed applicants for the sandbox bank: tests, the demo and other
contexts' tests open e-accounts with these instead of real people's numbers.

ID numbers use a real region code (370702, 潍坊市潍城区) so `stdnum.cn.ric` accepts them, a
birth date chosen by the caller and a computed check character; card numbers carry a Luhn
check digit (or deliberately the wrong one)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from stdnum import luhn
from stdnum.cn import ric

from cloudpay.channels.bank.protocol import AccountClass, OpenAccount, OwnerKind

WEIFANG_WEICHENG = "370702"
DEBIT_CARD_BIN = "622202"


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def id_number(birth: date, *, region: str = WEIFANG_WEICHENG) -> str:
    """A GB 11643 number with a valid check character."""
    body = f"{region}{birth:%Y%m%d}{_digits(3)}"
    return body + ric.calc_check_digit(body + "0")


def card_number(*, luhn_valid: bool = True, length: int = 19) -> str:
    body = DEBIT_CARD_BIN + _digits(length - len(DEBIT_CARD_BIN) - 1)
    check = int(luhn.calc_check_digit(body))
    return body + str(check if luhn_valid else (check + 1) % 10)


def phone_number() -> str:
    return "138" + _digits(8)


@dataclass(frozen=True)
class Applicant:
    name: str
    id_number: str
    phone: str
    bound_card_number: str

    def open_request(
        self,
        account_class: AccountClass,
        *,
        owner_reference: str,
        owner_kind: OwnerKind = OwnerKind.CITIZEN,
        request_id: str | None = None,
    ) -> OpenAccount:
        return OpenAccount(
            request_id=request_id or f"open_{secrets.token_hex(8)}",
            account_class=account_class,
            owner_kind=owner_kind,
            owner_reference=owner_reference,
            name=self.name,
            id_number=self.id_number,
            phone=self.phone,
            bound_card_number=self.bound_card_number,
        )


def applicant(*, name: str = "王小明", birth: date = date(1990, 5, 17)) -> Applicant:
    return Applicant(name, id_number(birth), phone_number(), card_number())
