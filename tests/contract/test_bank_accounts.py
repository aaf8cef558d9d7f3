"""E-account opening and account state through `PartnerBankClient` against the sandbox bank:
real-name checks, the Luhn warning, idempotent opening, status, balances, published limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date

import pytest

from cloudpay.channels.bank import BankError, BankErrorKind, PartnerBankClient
from cloudpay.channels.bank.protocol import (
    AccountClass,
    AccountStatus,
    BankChannel,
    BankLimits,
    ClassLimits,
    OwnerKind,
)
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant, card_number, id_number
from cloudpay.kernel.business_time import business_date

LOW_CLASS_II = ClassLimits(300_000, 3_000_000, 300_000, 3_000_000, None)
VALID_ID = id_number(date(1990, 5, 17))


def wrong_check_character(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


@pytest.fixture(scope="module")
def bank() -> Iterator[BankSandbox]:
    with start_bank_sandbox(bank_code="WFCB", time_scale=0.001) as bank:
        yield bank


@pytest.fixture
def client(bank: BankSandbox) -> Iterator[PartnerBankClient]:
    with PartnerBankClient(bank.adapter_config()) as client:
        yield client


def refusal_code(call: object) -> str | None:
    assert callable(call)
    with pytest.raises(BankError) as caught:
        call()
    assert caught.value.kind == BankErrorKind.REJECTED
    return caught.value.code


def test_client_is_a_bank_channel(client: PartnerBankClient) -> None:
    """The adapter satisfies the `BankChannel` protocol settlement code depends on."""
    assert isinstance(client, BankChannel)


def test_open_class_ii_account(client: PartnerBankClient) -> None:
    """A well-formed applicant gets an active Class II account bound to their masked card."""
    person = applicant()
    opened = client.open_account(
        person.open_request(
            AccountClass.CLASS_II, owner_reference="mch_1", owner_kind=OwnerKind.MERCHANT
        )
    )
    assert opened.account_class is AccountClass.CLASS_II
    assert opened.status is AccountStatus.ACTIVE
    assert opened.warnings == ()
    assert opened.owner_reference == "mch_1"
    assert person.bound_card_number not in opened.bound_card_masked
    assert opened.bound_card_masked.endswith(person.bound_card_number[-4:])
    info = client.account(opened.account_no)
    assert (info.account_class, info.status) == (AccountClass.CLASS_II, AccountStatus.ACTIVE)
    assert client.balance(opened.account_no).balance_fen == 0


def test_luhn_failure_is_a_warning_not_a_refusal(client: PartnerBankClient) -> None:
    """A bound card failing Luhn opens the account, with `bound_card_luhn_failed` to check."""
    person = dataclasses.replace(applicant(), bound_card_number=card_number(luhn_valid=False))
    opened = client.open_account(person.open_request(AccountClass.CLASS_III, owner_reference="c1"))
    assert opened.warnings == ("bound_card_luhn_failed",)
    assert client.account(opened.account_no).status is AccountStatus.ACTIVE


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id_number": wrong_check_character(VALID_ID)}, "id_number_invalid"),
        ({"id_number": VALID_ID[:17]}, "id_number_invalid"),
        ({"id_number": VALID_ID[:6] + "19900230" + VALID_ID[14:]}, "id_number_invalid"),
        ({"id_number": id_number(date(1990, 2, 17), region="000000")}, "id_number_invalid"),
        ({"id_number": id_number(date(2020, 1, 1))}, "applicant_under_16"),
        ({"phone": "12800138000"}, "phone_invalid"),
        ({"phone": "1380013800"}, "phone_invalid"),
        ({"bound_card_number": "6222-0202"}, "bound_card_invalid"),
        ({"name": "A1"}, "name_invalid"),
    ],
)
def test_real_name_checks_refuse_with_a_reason(
    client: PartnerBankClient, change: dict[str, str], code: str
) -> None:
    """Each failed real-name check refuses the opening with its own precise code."""
    person = dataclasses.replace(applicant(), **change)
    request = person.open_request(AccountClass.CLASS_II, owner_reference="c2")
    assert refusal_code(lambda: client.open_account(request)) == code


def test_sixteenth_birthday_is_old_enough(client: PartnerBankClient) -> None:
    """An applicant who turns 16 today may open an account; one day younger may not."""
    shanghai_today = business_date(client.balance(client.custody_account_no).as_of)
    sixteen = shanghai_today.replace(year=shanghai_today.year - 16)
    day_younger = date.fromordinal(sixteen.toordinal() + 1)
    ok = applicant(birth=sixteen).open_request(AccountClass.CLASS_III, owner_reference="c3")
    assert client.open_account(ok).status is AccountStatus.ACTIVE
    young = applicant(birth=day_younger).open_request(AccountClass.CLASS_III, owner_reference="c4")
    assert refusal_code(lambda: client.open_account(young)) == "applicant_under_16"


def test_opening_is_idempotent_by_request_id(client: PartnerBankClient) -> None:
    """The same request id opens one account; reusing it for someone else is refused."""
    person = applicant()
    request = person.open_request(AccountClass.CLASS_II, owner_reference="c5")
    first, again = client.open_account(request), client.open_account(request)
    assert first.account_no == again.account_no
    other = dataclasses.replace(request, phone="13900000000")
    assert refusal_code(lambda: client.open_account(other)) == "request_id_reused"


def test_frozen_and_closed_status_are_reported(
    bank: BankSandbox, client: PartnerBankClient
) -> None:
    """Freezing, unfreezing and closing an account show in its status."""
    opened = client.open_account(
        applicant().open_request(AccountClass.CLASS_II, owner_reference="c6")
    )
    bank.freeze(opened.account_no)
    assert client.account(opened.account_no).status is AccountStatus.FROZEN
    bank.unfreeze(opened.account_no)
    assert client.account(opened.account_no).status is AccountStatus.ACTIVE
    bank.close_account(opened.account_no)
    assert client.account(opened.account_no).status is AccountStatus.CLOSED


def test_unknown_account_is_refused(client: PartnerBankClient) -> None:
    """Asking for an account the bank does not hold is a REJECTED `account_not_found`."""
    assert refusal_code(lambda: client.account("6230000000000000000")) == "account_not_found"
    assert refusal_code(lambda: client.balance("nope")) == "account_not_found"


def test_custody_account_opened_with_its_reserve(
    bank: BankSandbox, client: PartnerBankClient
) -> None:
    """The platform's 备付金 account exists from the start, with the configured balance."""
    info = client.account(client.custody_account_no)
    assert info.account_class is None
    assert info.status is AccountStatus.ACTIVE
    assert client.balance(bank.custody_account_no).balance_fen > 0


def test_bank_publishes_the_limits_the_platform_configured() -> None:
    """The caps a bank enforces are the ones its config gives the platform, PBoC by default."""
    custom = BankLimits(class_ii=LOW_CLASS_II)
    with (
        start_bank_sandbox(bank_code="QDB", limits=custom, time_scale=0.001) as bank,
        PartnerBankClient(bank.adapter_config()) as client,
    ):
        assert client.fetch_limits() == custom == client.limits
    assert BankLimits().class_ii.nonbound_inflow_daily_fen == 1_000_000  # 10,000.00 CNY
    assert BankLimits().class_iii.balance_cap_fen == 200_000  # 2,000.00 CNY
    assert BankLimits().class_iii.nonbound_outflow_yearly_fen == 10_000_000  # 100,000.00 CNY
