"""Daily statement files: produced by the sandbox from what actually happened, downloaded and
parsed by `PartnerBankClient`, reconciled to balances day over day; corrupt files refused."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest

from cloudpay.channels.bank import BankError, BankErrorKind, PartnerBankClient
from cloudpay.channels.bank.protocol import (
    AccountClass,
    Direction,
    TransferRequest,
    TransferStatus,
)
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant, card_number
from cloudpay.channels.bank.statement import StatementError, parse_statement
from cloudpay.kernel.clock import FixedClock

DAY_ONE = date(2026, 5, 6)
OTHER_CARD = card_number()


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 5, 6, 1, 0, tzinfo=UTC))  # 09:00 on 6 May in Shanghai


@pytest.fixture(scope="module")
def bank(clock: FixedClock) -> Iterator[BankSandbox]:
    with start_bank_sandbox(
        bank_code="WFCB", time_scale=0.001, clock=clock, custody_balance_fen=5_000_000
    ) as bank:
        yield bank


@pytest.fixture(scope="module")
def client(bank: BankSandbox, clock: FixedClock) -> Iterator[PartnerBankClient]:
    with PartnerBankClient(bank.adapter_config(), clock=clock) as client:
        yield client


def send(client: PartnerBankClient, debit: str, credit: str, amount_fen: int) -> str:
    transfer_id = f"trf_{uuid.uuid4().hex}"
    result = client.transfer(TransferRequest(transfer_id, debit, credit, amount_fen))
    assert result.status is TransferStatus.SUCCEEDED, result
    return transfer_id


@pytest.fixture(scope="module")
def two_days(bank: BankSandbox, client: PartnerBankClient, clock: FixedClock) -> dict[str, str]:
    """Two days of activity: settlements in, a withdrawal, a payout and its return (退票)."""
    person = applicant()
    account = client.open_account(
        person.open_request(AccountClass.CLASS_II, owner_reference="mch_stmt")
    ).account_no
    custody = client.custody_account_no
    ids = {"account": account, "card": person.bound_card_number}
    ids["settle_1"] = send(client, custody, account, 800_000)
    clock.advance(hours=2)
    ids["withdraw"] = send(client, account, person.bound_card_number, 300_000)
    ids["refused"] = f"trf_{uuid.uuid4().hex}"
    refused = client.transfer(TransferRequest(ids["refused"], account, OTHER_CARD, 9_000_000))
    assert refused.status is TransferStatus.FAILED
    clock.set(datetime(2026, 5, 6, 16, 30, tzinfo=UTC))  # 00:30 on 7 May in Shanghai
    ids["settle_2"] = send(client, custody, account, 150_000)
    ids["payout"] = send(client, custody, OTHER_CARD, 42_000)
    bank.return_payout(ids["payout"])
    clock.advance(hours=1)
    return ids


def test_statements_reconcile_to_balances_day_over_day(
    client: PartnerBankClient, two_days: dict[str, str]
) -> None:
    """Each day's closing balance opens the next; the last closes at the live balance; the
    lines are exactly what moved, referenced by our transfer ids, refusals absent."""
    account = two_days["account"]
    first = client.download_statement(account, DAY_ONE)
    second = client.download_statement(account, date(2026, 5, 7))
    assert (first.opening_balance_fen, first.closing_balance_fen) == (0, 500_000)
    assert [line.reference for line in first.lines] == [two_days["settle_1"], two_days["withdraw"]]
    assert [line.direction for line in first.lines] == [Direction.CREDIT, Direction.DEBIT]
    assert two_days["card"] not in first.raw.decode()  # the bound card is masked
    assert first.lines[1].counterparty_masked.endswith(two_days["card"][-4:])
    assert second.opening_balance_fen == first.closing_balance_fen
    assert [line.reference for line in second.lines] == [two_days["settle_2"]]
    assert second.closing_balance_fen == client.balance(account).balance_fen == 650_000


def test_custody_statement_shows_the_returned_payout(
    client: PartnerBankClient, two_days: dict[str, str]
) -> None:
    """The custody account's day shows the payout and its return under the same reference,
    and its closing balance equals the bank's balance."""
    custody = client.custody_account_no
    first = client.download_statement(custody, DAY_ONE)
    assert first.lines[0].reference == "opening"
    assert first.closing_balance_fen == 5_000_000 - 800_000
    second = client.download_statement(custody, date(2026, 5, 7))
    payout_lines = [line for line in second.lines if line.reference == two_days["payout"]]
    assert [(line.direction, line.amount_fen) for line in payout_lines] == [
        (Direction.DEBIT, 42_000),
        (Direction.CREDIT, 42_000),
    ]
    assert second.closing_balance_fen == client.balance(custody).balance_fen
    assert second.closing_balance_fen == first.closing_balance_fen - 150_000
    assert (second.credits_fen, second.debits_fen) == (42_000, 192_000)


def test_quiet_day_and_future_day(client: PartnerBankClient, two_days: dict[str, str]) -> None:
    """A day without movements opens and closes at the same balance; tomorrow is refused."""
    quiet = client.download_statement(two_days["account"], date(2026, 5, 5))
    assert (quiet.opening_balance_fen, quiet.closing_balance_fen, quiet.lines) == (0, 0, ())
    with pytest.raises(BankError) as caught:
        client.download_statement(two_days["account"], date(2026, 5, 8))
    assert (caught.value.kind, caught.value.code) == (BankErrorKind.REJECTED, "statement_not_ready")


def test_statement_with_a_bad_signature_is_refused(
    bank: BankSandbox, client: PartnerBankClient, two_days: dict[str, str]
) -> None:
    """A statement whose answer signature fails is INVALID_RESPONSE, never parsed."""
    bank.inject_fault("bad_signature")
    with pytest.raises(BankError) as caught:
        client.download_statement(two_days["account"], DAY_ONE)
    assert caught.value.kind == BankErrorKind.INVALID_RESPONSE


def rehashed(body: bytes) -> bytes:
    """`body` (everything before the checksum line) with a fresh, correct SHA-256 line."""
    return body + f"S,SHA256,{hashlib.sha256(body).hexdigest()}\n".encode()


def edit_body(raw: bytes, edit: Callable[[list[str]], list[str]]) -> bytes:
    lines = raw.decode().splitlines()[:-1]
    return rehashed(("\n".join(edit(lines)) + "\n").encode())


def replace_field(lines: list[str], row: int, column: int, value: str) -> list[str]:
    row %= len(lines)
    fields = lines[row].split(",")
    fields[column] = value
    return [*lines[:row], ",".join(fields), *lines[row + 1 :]]


CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "cut mid-file": (lambda raw: raw[: len(raw) // 2], "truncated"),
    "no checksum line": (lambda raw: raw[: raw.rindex(b"S,SHA256")], "truncated"),
    "one byte changed": (lambda raw: raw.replace(b"C,800000", b"C,800001"), "SHA-256"),
    "line dropped": (lambda raw: edit_body(raw, lambda ls: [ls[0], *ls[2:]]), "sequence"),
    "footer totals": (
        lambda raw: edit_body(raw, lambda ls: replace_field(ls, -1, 4, "800001")),
        "totals",
    ),
    "closing != opening + movements": (
        lambda raw: edit_body(raw, lambda ls: replace_field(ls, -1, 1, "500001")),
        "closing",
    ),
    "running balance": (
        lambda raw: edit_body(raw, lambda ls: replace_field(ls, 0, 6, "1")),
        "balance",
    ),
    "line on another day": (
        lambda raw: edit_body(raw, lambda ls: replace_field(ls, 1, 2, "2026-05-07 09:00:00")),
        "another day",
    ),
    "amount not an integer": (
        lambda raw: edit_body(raw, lambda ls: replace_field(ls, 1, 4, "8000.00")),
        "integer",
    ),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_statement_is_rejected(
    client: PartnerBankClient, two_days: dict[str, str], corruption: str
) -> None:
    """Every kind of damage to a genuine statement file is caught with its reason."""
    raw = client.download_statement(two_days["account"], DAY_ONE).raw
    assert parse_statement(raw).closing_balance_fen == 500_000
    damage, reason = CORRUPTIONS[corruption]
    with pytest.raises(StatementError, match=reason):
        parse_statement(damage(raw))
