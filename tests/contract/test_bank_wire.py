"""Signatures both ways between `PartnerBankClient` and the sandbox bank: tampered or
foreign answers are refused, replayed or stale requests are refused by the bank, and
webhooks that are altered, stale or replayed are rejected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from cloudpay.channels.bank import BankError, BankErrorKind, PartnerBankClient, wire
from cloudpay.channels.bank.protocol import AccountClass, NotificationKind, NotificationRejected
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant, card_number
from cloudpay.kernel.clock import FixedClock, SystemClock
from tests.contract.receiver import Captured, NotificationReceiver


@pytest.fixture(scope="module")
def bank() -> Iterator[BankSandbox]:
    with start_bank_sandbox(bank_code="WFCB", time_scale=0.001) as bank:
        yield bank


@pytest.fixture
def client(bank: BankSandbox) -> Iterator[PartnerBankClient]:
    with PartnerBankClient(bank.adapter_config()) as client:
        yield client


def signed_get(bank: BankSandbox, target: str, *, timestamp: int, nonce: str) -> httpx.Response:
    """A request signed with the platform's key exactly as the adapter would sign it."""
    config = bank.adapter_config()
    headers = wire.sign_request(
        wire.SigningKey(config.client_private_key_pem, config.client_serial_no),
        client_id=config.client_id,
        method="GET",
        target=target,
        body=b"",
        timestamp=str(timestamp),
        nonce=nonce,
    )
    return httpx.get(bank.base_url + target, headers=headers)


def now_s() -> int:
    return SystemClock().now_ns() // 1_000_000_000


def test_tampered_answer_is_refused(bank: BankSandbox, client: PartnerBankClient) -> None:
    """An answer whose signature does not verify is INVALID_RESPONSE, outcome unknown."""
    bank.inject_fault("bad_signature")
    with pytest.raises(BankError) as caught:
        client.balance(client.custody_account_no)
    assert caught.value.kind == BankErrorKind.INVALID_RESPONSE
    assert caught.value.outcome_unknown
    assert client.balance(client.custody_account_no).balance_fen > 0  # next call is clean


def test_answer_is_bound_to_status_and_request_nonce(bank: BankSandbox) -> None:
    """A genuine answer does not verify for another request or with another HTTP status."""
    target = f"/api/v1/e-accounts/{bank.custody_account_no}/balance"
    answer = signed_get(bank, target, timestamp=now_s(), nonce="n" * 32)
    config = bank.adapter_config()

    def verify(first_line: str, request_nonce: str) -> str | None:
        return wire.verify_answer(
            answer.headers,
            answer.content,
            first_line=first_line,
            request_nonce=request_nonce,
            public_key_pem=config.bank_public_key_pem,
            serial_no=config.bank_serial_no,
            now_s=now_s(),
        )

    assert answer.status_code == 200
    assert verify("200", "n" * 32) is None
    assert verify("200", "m" * 32) == "answer is for another request"
    assert verify("404", "n" * 32) == "signature does not verify"


def test_replayed_request_is_refused(bank: BankSandbox) -> None:
    """The bank refuses a request whose nonce it has already seen, even with a valid signature."""
    target = f"/api/v1/e-accounts/{bank.custody_account_no}"
    timestamp, nonce = now_s(), wire.new_nonce()
    assert signed_get(bank, target, timestamp=timestamp, nonce=nonce).status_code == 200
    replay = signed_get(bank, target, timestamp=timestamp, nonce=nonce)
    assert replay.status_code == 401
    assert replay.json()["ret_code"] == "nonce_replayed"


def test_stale_or_altered_requests_are_refused(bank: BankSandbox) -> None:
    """A timestamp 6 minutes off, an altered path or an unknown client are each a 401."""
    target = f"/api/v1/e-accounts/{bank.custody_account_no}"
    stale = signed_get(bank, target, timestamp=now_s() - 360, nonce=wire.new_nonce())
    assert (stale.status_code, stale.json()["ret_code"]) == (401, "timestamp_expired")
    config = bank.adapter_config()
    headers = wire.sign_request(
        wire.SigningKey(config.client_private_key_pem, config.client_serial_no),
        client_id=config.client_id,
        method="GET",
        target=target,
        body=b"",
        timestamp=str(now_s()),
        nonce=wire.new_nonce(),
    )
    altered = httpx.get(f"{bank.base_url}{target}/balance", headers=headers)
    assert (altered.status_code, altered.json()["ret_code"]) == (401, "signature_invalid")
    stranger = httpx.get(bank.base_url + target, headers={**headers, "Bank-Client-Id": "evil"})
    assert (stranger.status_code, stranger.json()["ret_code"]) == (401, "client_unknown")


def test_client_with_a_skewed_clock_is_refused(bank: BankSandbox) -> None:
    """An adapter whose clock is 6 minutes behind gets AUTHENTICATION, not a silent success."""
    behind = FixedClock(SystemClock().now() - timedelta(minutes=6))
    with (
        PartnerBankClient(bank.adapter_config(), clock=behind) as client,
        pytest.raises(BankError) as caught,
    ):
        client.balance(client.custody_account_no)
    assert (caught.value.kind, caught.value.code) == (
        BankErrorKind.AUTHENTICATION,
        "timestamp_expired",
    )


@pytest.fixture
def webhook(bank: BankSandbox, client: PartnerBankClient) -> Iterator[Captured]:
    """One genuine webhook (credit.received), as the platform's endpoint received it."""
    receiver = NotificationReceiver()
    bank.set_notify_url(f"{receiver.url}/bank")
    try:
        person = applicant()
        opened = client.open_account(
            person.open_request(AccountClass.CLASS_III, owner_reference="c_wire")
        )
        bank.external_credit(opened.account_no, card_number(), 100)
        yield receiver.wait_for("/bank", 1)[0]
    finally:
        bank.set_notify_url(None)
        receiver.close()


def test_webhook_verifies_once(client: PartnerBankClient, webhook: Captured) -> None:
    """A genuine webhook verifies; the same bytes delivered again are a replay."""
    notice = client.parse_notification(webhook.headers, webhook.body)
    assert notice.kind is NotificationKind.CREDIT_RECEIVED
    assert notice.transfer.amount_fen == 100
    with pytest.raises(NotificationRejected, match="replayed"):
        client.parse_notification(webhook.headers, webhook.body)


def test_altered_webhook_is_rejected(bank: BankSandbox, webhook: Captured) -> None:
    """Changing one amount in a signed webhook breaks its signature."""
    event = json.loads(webhook.body)
    event["txn"]["amount"] = 100_000
    with (
        PartnerBankClient(bank.adapter_config()) as client,
        pytest.raises(NotificationRejected, match="signature"),
    ):
        client.parse_notification(webhook.headers, json.dumps(event).encode())


def test_stale_webhook_is_rejected(bank: BankSandbox, webhook: Captured) -> None:
    """A webhook read more than 5 minutes after it was signed is refused."""
    later = FixedClock(SystemClock().now() + timedelta(minutes=6))
    with (
        PartnerBankClient(bank.adapter_config(), clock=later) as client,
        pytest.raises(NotificationRejected, match="5 minutes"),
    ):
        client.parse_notification(webhook.headers, webhook.body)


def test_webhook_from_another_bank_is_rejected(webhook: Captured) -> None:
    """A client configured for another bank does not accept this bank's signature."""
    with (
        start_bank_sandbox(bank_code="QDB", time_scale=0.001) as other,
        PartnerBankClient(other.adapter_config()) as other_client,
        pytest.raises(NotificationRejected, match="unknown key"),
    ):
        other_client.parse_notification(webhook.headers, webhook.body)
