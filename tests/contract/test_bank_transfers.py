"""Transfers through `PartnerBankClient` against the sandbox bank: PBoC limits at their exact
boundaries (Shanghai days and years, bound vs non-bound), idempotency, refusals, late
settlement by webhook, returned payouts, external credits and transport faults."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cloudpay.channels.bank import BankError, BankErrorKind, PartnerBankClient
from cloudpay.channels.bank.protocol import (
    AccountClass,
    AccountOpened,
    BankLimits,
    BankNotification,
    ClassLimits,
    LimitKind,
    NotificationKind,
    TransferFailure,
    TransferRequest,
    TransferResult,
    TransferStatus,
)
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import Applicant, applicant, card_number
from cloudpay.kernel.clock import FixedClock
from tests.contract.receiver import NotificationReceiver

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
OTHER_CARD = card_number()  # someone else's card at another bank


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def bank(clock: FixedClock) -> Iterator[BankSandbox]:
    with start_bank_sandbox(bank_code="WFCB", time_scale=0.001, clock=clock, fault_hold_s=2) as b:
        yield b


@pytest.fixture
def client(bank: BankSandbox, clock: FixedClock) -> Iterator[PartnerBankClient]:
    with PartnerBankClient(bank.adapter_config(timeout_s=0.5), clock=clock) as client:
        yield client


@pytest.fixture(scope="module")
def receiver(bank: BankSandbox) -> Iterator[NotificationReceiver]:
    receiver = NotificationReceiver()
    bank.set_notify_url(f"{receiver.url}/bank")
    yield receiver
    receiver.close()


def open_account(
    client: PartnerBankClient, account_class: AccountClass
) -> tuple[AccountOpened, Applicant]:
    person = applicant()
    request = person.open_request(account_class, owner_reference=f"c_{uuid.uuid4().hex[:8]}")
    return client.open_account(request), person


def send(client: PartnerBankClient, debit: str, credit: str, amount_fen: int) -> TransferResult:
    return client.transfer(TransferRequest(f"trf_{uuid.uuid4().hex}", debit, credit, amount_fen))


def assert_limit(result: TransferResult, limit: LimitKind, remaining_fen: int) -> None:
    assert result.status is TransferStatus.FAILED
    assert result.failure_reason is TransferFailure.LIMIT_EXCEEDED
    assert (result.limit, result.limit_remaining_fen) == (limit, remaining_fen)


def test_class_ii_daily_inflow_boundary_in_shanghai_days(
    client: PartnerBankClient, clock: FixedClock
) -> None:
    """Exactly 10,000.00 CNY of non-bound inflow passes, one more fen is refused until the
    Shanghai day turns (16:00 UTC), not the UTC day."""
    account, _ = open_account(client, AccountClass.CLASS_II)
    custody = client.custody_account_no
    too_much = send(client, custody, account.account_no, 1_000_001)  # 10,000.01 CNY at once
    assert_limit(too_much, LimitKind.NONBOUND_INFLOW_DAILY, 1_000_000)
    assert send(client, custody, account.account_no, 1_000_000).status is TransferStatus.SUCCEEDED
    assert_limit(send(client, custody, account.account_no, 1), LimitKind.NONBOUND_INFLOW_DAILY, 0)
    assert client.balance(account.account_no).balance_fen == 1_000_000
    clock.set(datetime(2026, 3, 2, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    assert_limit(send(client, custody, account.account_no, 1), LimitKind.NONBOUND_INFLOW_DAILY, 0)
    clock.set(datetime(2026, 3, 2, 16, 0, tzinfo=UTC))  # 00:00 on 3 March in Shanghai
    assert send(client, custody, account.account_no, 1).status is TransferStatus.SUCCEEDED


def test_class_ii_bound_card_flows_are_not_limited(client: PartnerBankClient) -> None:
    """Money to and from the bound Class I card passes any amount; non-bound outflow stops at
    exactly 10,000.00 CNY a day."""
    account, person = open_account(client, AccountClass.CLASS_II)
    number, card = account.account_no, person.bound_card_number
    assert send(client, card, number, 5_000_000).status is TransferStatus.SUCCEEDED
    assert send(client, number, card, 2_000_000).status is TransferStatus.SUCCEEDED
    assert send(client, number, OTHER_CARD, 999_999).status is TransferStatus.SUCCEEDED
    assert send(client, number, OTHER_CARD, 1).status is TransferStatus.SUCCEEDED
    assert_limit(send(client, number, OTHER_CARD, 1), LimitKind.NONBOUND_OUTFLOW_DAILY, 0)
    assert send(client, number, card, 1_000_000).status is TransferStatus.SUCCEEDED
    assert client.balance(number).balance_fen == 5_000_000 - 2_000_000 - 1_000_000 - 1_000_000


def test_class_iii_balance_cap_holds_even_from_the_bound_card(client: PartnerBankClient) -> None:
    """A Class III account holds at most 2,000.00 CNY whoever pays in; the refusal says how
    much room is left."""
    account, person = open_account(client, AccountClass.CLASS_III)
    custody, number = client.custody_account_no, account.account_no
    assert send(client, custody, number, 150_000).status is TransferStatus.SUCCEEDED
    assert_limit(send(client, custody, number, 50_001), LimitKind.BALANCE_CAP, 50_000)
    assert_limit(
        send(client, person.bound_card_number, number, 50_001), LimitKind.BALANCE_CAP, 50_000
    )
    assert send(client, person.bound_card_number, number, 50_000).status is (
        TransferStatus.SUCCEEDED
    )
    assert client.balance(number).balance_fen == 200_000


def test_class_iii_daily_flows_stop_at_5000(client: PartnerBankClient) -> None:
    """Class III non-bound inflow and outflow each pass exactly 5,000.00 CNY a day, not more."""
    account, person = open_account(client, AccountClass.CLASS_III)
    custody, number = client.custody_account_no, account.account_no
    for amount in (200_000, 200_000, 100_000):
        assert send(client, custody, number, amount).status is TransferStatus.SUCCEEDED
        assert send(client, number, OTHER_CARD, amount).status is TransferStatus.SUCCEEDED
    assert_limit(send(client, custody, number, 1), LimitKind.NONBOUND_INFLOW_DAILY, 0)
    assert send(client, person.bound_card_number, number, 1).status is TransferStatus.SUCCEEDED
    assert_limit(send(client, number, OTHER_CARD, 1), LimitKind.NONBOUND_OUTFLOW_DAILY, 0)


def test_yearly_cap_resets_on_the_shanghai_new_year() -> None:
    """A bank's configured yearly cap refuses the fen that crosses it until 1 January in
    Shanghai (16:00 UTC on 31 December)."""
    clock = FixedClock(datetime(2026, 12, 30, 2, 0, tzinfo=UTC))
    limits = BankLimits(class_ii=ClassLimits(300_000, 500_000, 300_000, 500_000, None))
    with (
        start_bank_sandbox(bank_code="QDB", limits=limits, time_scale=0.001, clock=clock) as bank,
        PartnerBankClient(bank.adapter_config(), clock=clock) as client,
    ):
        account, _ = open_account(client, AccountClass.CLASS_II)
        custody, number = client.custody_account_no, account.account_no
        assert send(client, custody, number, 300_000).status is TransferStatus.SUCCEEDED
        clock.advance(days=1)  # 31 December, 10:00 in Shanghai
        assert_limit(
            send(client, custody, number, 200_001), LimitKind.NONBOUND_INFLOW_YEARLY, 200_000
        )
        assert send(client, custody, number, 200_000).status is TransferStatus.SUCCEEDED
        clock.set(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))
        assert_limit(send(client, custody, number, 1), LimitKind.NONBOUND_INFLOW_YEARLY, 0)
        clock.set(datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
        assert send(client, custody, number, 1).status is TransferStatus.SUCCEEDED


def test_same_transfer_id_moves_money_once(client: PartnerBankClient) -> None:
    """Sending one transfer id twice returns the first result and books it once; the same id
    with other fields is refused."""
    account, _ = open_account(client, AccountClass.CLASS_II)
    request = TransferRequest("trf_idem_1", client.custody_account_no, account.account_no, 12_345)
    first, again = client.transfer(request), client.transfer(request)
    assert first.status is again.status is TransferStatus.SUCCEEDED
    assert first.bank_serial == again.bank_serial
    assert client.balance(account.account_no).balance_fen == 12_345
    changed = TransferRequest("trf_idem_1", client.custody_account_no, account.account_no, 12_346)
    with pytest.raises(BankError) as caught:
        client.transfer(changed)
    assert (caught.value.kind, caught.value.code) == (BankErrorKind.REJECTED, "request_id_reused")
    assert client.query_transfer("trf_idem_1").amount_fen == 12_345


def test_refusals_name_their_reason(bank: BankSandbox, client: PartnerBankClient) -> None:
    """Frozen, closed and unknown accounts, short funds and an unbound card pull each fail
    with their own reason, and move nothing."""
    account, person = open_account(client, AccountClass.CLASS_II)
    custody, number = client.custody_account_no, account.account_no
    assert send(client, custody, number, 100).status is TransferStatus.SUCCEEDED
    cases = [
        (number, OTHER_CARD, 101, TransferFailure.INSUFFICIENT_FUNDS),
        (OTHER_CARD, number, 1, TransferFailure.COUNTERPARTY_NOT_ALLOWED),
        (custody, "NOSUCHACCOUNT", 1, TransferFailure.ACCOUNT_NOT_FOUND),
    ]
    for debit, credit, amount, reason in cases:
        assert send(client, debit, credit, amount).failure_reason is reason
    bank.freeze(number)
    assert send(client, custody, number, 1).failure_reason is TransferFailure.ACCOUNT_FROZEN
    assert send(client, number, person.bound_card_number, 1).failure_reason is (
        TransferFailure.ACCOUNT_FROZEN
    )
    bank.unfreeze(number)
    assert send(client, number, person.bound_card_number, 100).status is TransferStatus.SUCCEEDED
    bank.close_account(number)
    assert send(client, custody, number, 1).failure_reason is TransferFailure.ACCOUNT_CLOSED
    assert client.balance(number).balance_fen == 0


class Webhooks:
    """Verifies each captured webhook once (a second look would be a replay) and keeps it."""

    def __init__(self, receiver: NotificationReceiver, client: PartnerBankClient) -> None:
        self.receiver, self.client = receiver, client
        self.seen: list[BankNotification] = []

    def wait(self, transfer_id: str, kind: NotificationKind) -> BankNotification:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for captured in self.receiver.captured("/bank")[len(self.seen) :]:
                self.seen.append(self.client.parse_notification(captured.headers, captured.body))
            for notice in self.seen:
                if notice.transfer.transfer_id == transfer_id and notice.kind is kind:
                    return notice
            time.sleep(0.01)
        raise AssertionError(f"no {kind} webhook for {transfer_id}")


@pytest.fixture
def webhooks(receiver: NotificationReceiver, client: PartnerBankClient) -> Webhooks:
    return Webhooks(receiver, client)


def test_processing_transfer_settles_later_by_webhook(
    bank: BankSandbox, client: PartnerBankClient, webhooks: Webhooks
) -> None:
    """A PROCESSING transfer holds the payer's money, then books when it settles and says so
    in a signed webhook; the query agrees."""
    account, _ = open_account(client, AccountClass.CLASS_II)
    custody = client.custody_account_no
    before = client.balance(custody)
    bank.settle_later(1, delay_s=300, outcome="succeeded")  # 0.3 s at this time scale
    request = TransferRequest(f"trf_{uuid.uuid4().hex}", custody, account.account_no, 50_000)
    assert client.transfer(request).status is TransferStatus.PROCESSING
    held = client.balance(custody)
    assert (held.balance_fen, held.available_fen) == (
        before.balance_fen,
        before.available_fen - 50_000,
    )
    notice = webhooks.wait(request.transfer_id, NotificationKind.TRANSFER_SUCCEEDED)
    assert notice.transfer.status is TransferStatus.SUCCEEDED
    assert notice.bank_code == "WFCB"
    assert client.query_transfer(request.transfer_id).status is TransferStatus.SUCCEEDED
    assert client.balance(account.account_no).balance_fen == 50_000
    assert client.balance(custody).available_fen == before.available_fen - 50_000


def test_processing_transfer_that_fails_releases_hold_and_limit(
    bank: BankSandbox, client: PartnerBankClient, webhooks: Webhooks
) -> None:
    """A processing transfer that ends failed moves nothing and gives its limit usage back."""
    account, _ = open_account(client, AccountClass.CLASS_II)
    custody, number = client.custody_account_no, account.account_no
    before = client.balance(custody)
    bank.settle_later(1, delay_s=10, outcome="failed")
    request = TransferRequest(f"trf_{uuid.uuid4().hex}", custody, number, 1_000_000)
    assert client.transfer(request).status is TransferStatus.PROCESSING
    notice = webhooks.wait(request.transfer_id, NotificationKind.TRANSFER_FAILED)
    assert notice.transfer.failure_reason is TransferFailure.RETURNED_BY_RECEIVER
    assert client.balance(custody).available_fen == before.available_fen
    assert client.balance(number).balance_fen == 0
    assert send(client, custody, number, 1_000_000).status is TransferStatus.SUCCEEDED


def test_returned_payout_comes_back(
    bank: BankSandbox, client: PartnerBankClient, webhooks: Webhooks
) -> None:
    """退票: a payout that succeeded comes back to the custody account, announced by webhook
    and visible in the transfer's status."""
    custody = client.custody_account_no
    before = client.balance(custody).balance_fen
    payout = send(client, custody, OTHER_CARD, 88_800)
    assert payout.status is TransferStatus.SUCCEEDED
    assert client.balance(custody).balance_fen == before - 88_800
    bank.return_payout(payout.transfer_id, reason="收款账户已销户")
    notice = webhooks.wait(payout.transfer_id, NotificationKind.TRANSFER_RETURNED)
    assert notice.transfer.status is TransferStatus.RETURNED
    assert notice.transfer.returned_at is not None
    assert client.query_transfer(payout.transfer_id).status is TransferStatus.RETURNED
    assert client.balance(custody).balance_fen == before


def test_external_credit_is_announced(
    bank: BankSandbox, client: PartnerBankClient, webhooks: Webhooks
) -> None:
    """Money paid in from another bank's card is booked and announced as credit.received."""
    account, _ = open_account(client, AccountClass.CLASS_III)
    credit = bank.external_credit(account.account_no, OTHER_CARD, 30_000, reference="ext_topup_1")
    assert credit.status is TransferStatus.SUCCEEDED
    notice = webhooks.wait("ext_topup_1", NotificationKind.CREDIT_RECEIVED)
    assert (notice.transfer.amount_fen, notice.transfer.credit_account) == (
        30_000,
        account.account_no,
    )
    assert client.balance(account.account_no).balance_fen == 30_000


def test_timeout_then_resend_moves_money_once(bank: BankSandbox, client: PartnerBankClient) -> None:
    """A lost answer is a TIMEOUT (outcome unknown); resending the same id finds the transfer
    done and books nothing twice."""
    account, _ = open_account(client, AccountClass.CLASS_II)
    request = TransferRequest("trf_lost_answer", client.custody_account_no, account.account_no, 700)
    bank.inject_fault("timeout")
    with pytest.raises(BankError) as caught:
        client.transfer(request)
    assert caught.value.kind == BankErrorKind.TIMEOUT
    assert caught.value.outcome_unknown
    assert client.transfer(request).status is TransferStatus.SUCCEEDED
    assert client.balance(account.account_no).balance_fen == 700


def test_server_error_and_downtime_do_nothing(bank: BankSandbox, client: PartnerBankClient) -> None:
    """A 500 or the bank being down is UNAVAILABLE and nothing is done; back up, it works."""
    account, _ = open_account(client, AccountClass.CLASS_II)
    request = TransferRequest("trf_retry_safe", client.custody_account_no, account.account_no, 900)
    bank.inject_fault("server_error")
    with pytest.raises(BankError) as caught:
        client.transfer(request)
    assert caught.value.kind == BankErrorKind.UNAVAILABLE
    with pytest.raises(BankError) as unknown:
        client.query_transfer(request.transfer_id)
    assert unknown.value.code == "transfer_not_found"
    bank.set_available(False)
    try:
        with pytest.raises(BankError) as down:
            client.transfer(request)
        assert (down.value.kind, down.value.code) == (
            BankErrorKind.UNAVAILABLE,
            "service_unavailable",
        )
    finally:
        bank.set_available(True)
    assert client.balance(account.account_no).balance_fen == 0
    assert client.transfer(request).status is TransferStatus.SUCCEEDED
    assert client.balance(account.account_no).balance_fen == 900


def test_unanswered_webhook_is_retried(
    bank: BankSandbox, client: PartnerBankClient, receiver: NotificationReceiver
) -> None:
    """A webhook the platform answers 500 is sent again, re-signed, until it gets a 2xx."""
    flaky = NotificationReceiver(answer=lambda index: 500 if index == 0 else 204)
    bank.set_notify_url(f"{flaky.url}/bank")
    try:
        account, _ = open_account(client, AccountClass.CLASS_III)
        bank.external_credit(account.account_no, OTHER_CARD, 10, reference="ext_retry_1")
        first, second = flaky.wait_for("/bank", 2)
        assert first.body == second.body
        assert first.headers["Bank-Nonce"] != second.headers["Bank-Nonce"]
        assert client.parse_notification(second.headers, second.body).transfer.amount_fen == 10
        deadline = time.monotonic() + 5
        while len(attempts := bank.notification_attempts("ext_retry_1")) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert [a.status_code for a in attempts] == [500, 204]
    finally:
        bank.set_notify_url(f"{receiver.url}/bank")
        flaky.close()
