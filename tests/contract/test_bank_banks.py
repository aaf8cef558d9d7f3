"""Several partner banks at once (a city has more than one local bank): each sandbox keeps
its own keys, custody account, limits and books, and each adapter trusts only its own bank."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from cloudpay.channels.bank import BankError, BankErrorKind, PartnerBankClient
from cloudpay.channels.bank.protocol import (
    PBOC_CLASS_II,
    AccountClass,
    BankLimits,
    ClassLimits,
    LimitKind,
    TransferRequest,
    TransferStatus,
)
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant
from cloudpay.kernel.business_time import business_date

# A cautious bank: Class II non-bound flows capped at 5,000.00 CNY a day.
CAUTIOUS = BankLimits(class_ii=ClassLimits(500_000, 10_000_000, 500_000, 10_000_000, None))


@pytest.fixture(scope="module")
def banks() -> Iterator[dict[str, BankSandbox]]:
    with (
        start_bank_sandbox(bank_code="WFCB", time_scale=0.001) as city_bank,
        start_bank_sandbox(bank_code="WFRCB", limits=CAUTIOUS, time_scale=0.001) as rural_bank,
    ):
        yield {"WFCB": city_bank, "WFRCB": rural_bank}


@pytest.fixture(scope="module")
def clients(banks: dict[str, BankSandbox]) -> Iterator[dict[str, PartnerBankClient]]:
    clients = {code: PartnerBankClient(bank.adapter_config()) for code, bank in banks.items()}
    yield clients
    for client in clients.values():
        client.close()


def test_each_bank_enforces_its_own_limits(clients: dict[str, PartnerBankClient]) -> None:
    """The same 6,000.00 CNY settlement passes at the bank on PBoC caps and is refused, with
    its remaining room, at the bank configured lower; the platform knew both caps up front."""
    assert clients["WFCB"].limits.class_ii == PBOC_CLASS_II
    assert clients["WFRCB"].limits == CAUTIOUS == clients["WFRCB"].fetch_limits()
    outcomes = {}
    for code, client in clients.items():
        opened = client.open_account(
            applicant().open_request(AccountClass.CLASS_II, owner_reference="mch_two_banks")
        )
        request = TransferRequest(
            f"trf_{uuid.uuid4().hex}", client.custody_account_no, opened.account_no, 600_000
        )
        outcomes[code] = client.transfer(request)
    assert outcomes["WFCB"].status is TransferStatus.SUCCEEDED
    refused = outcomes["WFRCB"]
    assert (refused.status, refused.limit) == (
        TransferStatus.FAILED,
        LimitKind.NONBOUND_INFLOW_DAILY,
    )
    assert refused.limit_remaining_fen == 500_000


def test_books_and_statements_are_per_bank(
    banks: dict[str, BankSandbox], clients: dict[str, PartnerBankClient]
) -> None:
    """Each bank's custody statement carries its own bank code and reconciles to its own
    balance; one bank does not know the other's accounts."""
    for code, client in clients.items():
        balance = client.balance(client.custody_account_no)
        statement = client.download_statement(
            client.custody_account_no, business_date(balance.as_of)
        )
        assert statement.bank_code == code
        assert statement.closing_balance_fen == balance.balance_fen
    with pytest.raises(BankError) as caught:
        clients["WFCB"].balance(banks["WFRCB"].custody_account_no)
    assert caught.value.code == "account_not_found"


def test_adapter_trusts_only_its_own_bank(banks: dict[str, BankSandbox]) -> None:
    """Pointed at the wrong bank an adapter cannot authenticate; configured with the wrong
    bank key it refuses that bank's genuine answers: keys never cross."""
    city, rural = banks["WFCB"].adapter_config(), banks["WFRCB"].adapter_config()
    wrong_host = dataclasses.replace(city, base_url=rural.base_url)
    with PartnerBankClient(wrong_host) as client, pytest.raises(BankError) as caught:
        client.balance(rural.custody_account_no)
    assert caught.value.kind == BankErrorKind.AUTHENTICATION
    wrong_key = dataclasses.replace(
        rural, bank_public_key_pem=city.bank_public_key_pem, bank_serial_no=city.bank_serial_no
    )
    with PartnerBankClient(wrong_key) as client, pytest.raises(BankError) as refused:
        client.balance(rural.custody_account_no)
    assert refused.value.kind == BankErrorKind.INVALID_RESPONSE
