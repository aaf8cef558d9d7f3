"""The sandbox bank's HTTP surface itself: malformed requests get a clear 4xx (never a 500),
the `/sandbox/*` controls work over HTTP like the other sandboxes', and the limit rules hold
as a pure function at every boundary."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.channels.bank import BankError, BankErrorKind, PartnerBankClient, wire
from cloudpay.channels.bank.limits import Usage, inflow_breach, outflow_breach
from cloudpay.channels.bank.protocol import (
    PBOC_CLASS_II,
    PBOC_CLASS_III,
    AccountClass,
    LimitKind,
    TransferRequest,
    TransferStatus,
)
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant
from cloudpay.kernel.clock import SystemClock


@pytest.fixture(scope="module")
def bank() -> Iterator[BankSandbox]:
    with start_bank_sandbox(bank_code="WFCB", time_scale=0.001) as bank:
        yield bank


@pytest.fixture
def client(bank: BankSandbox) -> Iterator[PartnerBankClient]:
    with PartnerBankClient(bank.adapter_config()) as client:
        yield client


def signed_post(bank: BankSandbox, target: str, body: bytes) -> httpx.Response:
    config = bank.adapter_config()
    headers = wire.sign_request(
        wire.SigningKey(config.client_private_key_pem, config.client_serial_no),
        client_id=config.client_id,
        method="POST",
        target=target,
        body=body,
        timestamp=str(SystemClock().now_ns() // 1_000_000_000),
        nonce=wire.new_nonce(),
    )
    return httpx.post(bank.base_url + target, content=body, headers=headers)


GOOD_TRANSFER = {"req_id": "t1", "payer_acct": "x", "payee_acct": "y", "amount": 1, "ccy": "CNY"}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({**GOOD_TRANSFER, "amount": 1.5}).encode(),
        json.dumps({**GOOD_TRANSFER, "amount": "100"}).encode(),
        json.dumps({**GOOD_TRANSFER, "amount": -1}).encode(),
        json.dumps({**GOOD_TRANSFER, "amount": True}).encode(),
        json.dumps({**GOOD_TRANSFER, "req_id": ""}).encode(),
        json.dumps({**GOOD_TRANSFER, "memo": 7}).encode(),
        json.dumps({k: v for k, v in GOOD_TRANSFER.items() if k != "payee_acct"}).encode(),
        json.dumps({**GOOD_TRANSFER, "ccy": "USD"}).encode(),
    ],
)
def test_malformed_transfer_is_a_400(bank: BankSandbox, body: bytes) -> None:
    """Each malformed transfer body is answered 400 with a ret_code, nothing booked."""
    answer = signed_post(bank, "/api/v1/transfers", body)
    assert answer.status_code == 400
    assert answer.json()["ret_code"] in ("invalid_request", "currency_not_supported")


@pytest.mark.parametrize(
    "change", [{"acct_class": "1"}, {"owner_type": "ROBOT"}, {"cert_type": "02"}, {"mobile": 7}]
)
def test_malformed_opening_is_a_400(bank: BankSandbox, change: dict[str, object]) -> None:
    """A bad account class, owner type, certificate type or field type is a 400."""
    person = applicant()
    body = {
        "req_id": "o1",
        "acct_class": "2",
        "owner_type": "CITIZEN",
        "owner_ref": "c1",
        "cust_name": person.name,
        "cert_type": "01",
        "cert_no": person.id_number,
        "mobile": person.phone,
        "bind_card_no": person.bound_card_number,
        **change,
    }
    answer = signed_post(bank, "/api/v1/e-accounts", json.dumps(body).encode())
    assert (answer.status_code, answer.json()["ret_code"]) == (400, "invalid_request")


def test_availability_switch_over_http(bank: BankSandbox, client: PartnerBankClient) -> None:
    """`POST /sandbox/availability {"available": false}` makes every call UNAVAILABLE until
    switched back; a malformed switch is a 400."""
    url = f"{bank.base_url}/sandbox/availability"
    assert httpx.post(url, json={"available": False}).json() == {"available": False}
    try:
        with pytest.raises(BankError) as caught:
            client.account(client.custody_account_no)
        assert caught.value.kind == BankErrorKind.UNAVAILABLE
    finally:
        httpx.post(url, json={"available": True})
    assert client.account(client.custody_account_no).account_no == client.custody_account_no
    assert httpx.post(url, json={"available": "no"}).status_code == 400


def test_controls_over_http(bank: BankSandbox, client: PartnerBankClient) -> None:
    """Faults, freezing, late settlement and external credits can be driven over HTTP."""
    base = f"{bank.base_url}/sandbox"
    assert httpx.post(f"{base}/faults", json={"kind": "server_error"}).status_code == 200
    with pytest.raises(BankError) as caught:
        client.account(client.custody_account_no)
    assert caught.value.kind == BankErrorKind.UNAVAILABLE
    assert httpx.post(f"{base}/faults", json={"kind": "meteor"}).status_code == 400
    opened = client.open_account(
        applicant().open_request(AccountClass.CLASS_II, owner_reference="h")
    )
    frozen = httpx.post(f"{base}/accounts/{opened.account_no}/status", json={"status": "frozen"})
    assert frozen.status_code == 200
    assert httpx.post(f"{base}/accounts/nope/status", json={"status": "frozen"}).status_code == 404
    refused = httpx.post(
        f"{base}/credits",
        json={"acct_no": opened.account_no, "card_no": "6222020200112233", "amount": 5},
    )
    assert refused.json()["fail_code"] == "account_frozen"
    httpx.post(f"{base}/accounts/{opened.account_no}/status", json={"status": "active"})
    assert httpx.post(f"{base}/settle-later", json={"count": 1, "delay_s": 0}).status_code == 200
    request = TransferRequest("trf_http_later", client.custody_account_no, opened.account_no, 5)
    assert client.transfer(request).status is TransferStatus.PROCESSING


# ---------------------------------------------------------------- the pure limit rules


def test_bound_flows_skip_daily_and_yearly_caps() -> None:
    """With the bound card, only the Class III balance cap can refuse."""
    exhausted = Usage(10**9, 10**9, 10**9, 10**9)
    assert outflow_breach(PBOC_CLASS_II, exhausted, amount_fen=10**8, bound=True) is None
    assert (
        inflow_breach(PBOC_CLASS_II, exhausted, amount_fen=10**8, bound=True, balance_fen=0) is None
    )
    breach = inflow_breach(PBOC_CLASS_III, exhausted, amount_fen=1, bound=True, balance_fen=200_000)
    assert breach is not None
    assert breach.limit is LimitKind.BALANCE_CAP


@given(
    used_today=st.integers(0, 1_000_000),
    used_year=st.integers(0, 20_000_000),
    amount=st.integers(1, 2_000_000),
)
def test_class_ii_outflow_passes_exactly_up_to_both_caps(
    used_today: int, used_year: int, amount: int
) -> None:
    """A non-bound outflow passes iff it fits both the daily and yearly room, and a refusal's
    remaining room is what would still have fitted."""
    usage = Usage(outflow_today_fen=used_today, outflow_this_year_fen=used_year)
    breach = outflow_breach(PBOC_CLASS_II, usage, amount_fen=amount, bound=False)
    fits_day = used_today + amount <= 1_000_000
    fits_year = used_year + amount <= 20_000_000
    assert (breach is None) == (fits_day and fits_year)
    if breach is not None:
        assert breach.limit is (
            LimitKind.NONBOUND_OUTFLOW_DAILY if not fits_day else LimitKind.NONBOUND_OUTFLOW_YEARLY
        )
        assert amount > breach.remaining_fen >= 0
