"""The partner bank's daily account statement file (对账单) and its strict parser.

UTF-8 CSV, one record per line, the record type first:

    H,BANKSTMT1,<bank code>,<account no>,<YYYY-MM-DD>,CNY,<opening balance fen>
    D,<seq from 1>,<YYYY-MM-DD HH:MM:SS Shanghai>,<C|D>,<amount fen>,<counterparty masked>,
      <reference: our transfer id>,<bank serial>,<balance after fen>
    T,<closing balance fen>,<lines>,<credit count>,<credit total fen>,<debit count>,
      <debit total fen>
    S,SHA256,<hex digest of every byte before this line>

A reconciliation that trusts a file it did not check proves nothing, so the parser refuses
anything short of whole and consistent: a missing footer or checksum (truncation), a digest
that does not match, lines out of sequence or off the statement date, running balances that
jump, totals or counts that disagree, and opening + credits − debits ≠ closing. Counterparty
card and account numbers are masked (PIPL), as `cloudpay.kernel.masking` does everywhere.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date

from cloudpay.channels.bank.protocol import Direction, Statement, StatementLine
from cloudpay.kernel.business_time import business_date, format_shanghai, parse_shanghai

FORMAT_VERSION = "BANKSTMT1"
MAX_STATEMENT_BYTES = 64 * 1024 * 1024
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_AMOUNT = re.compile(r"[1-9][0-9]{0,17}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class StatementError(ValueError):
    """The statement file is truncated, corrupt or inconsistent."""


def _row(fields: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def render_statement(
    *,
    bank_code: str,
    account_no: str,
    statement_date: date,
    opening_balance_fen: int,
    lines: Iterable[StatementLine],
    currency: str = "CNY",
) -> bytes:
    """The file a bank serves for one account and day; lines in booking order."""
    text = _row(
        ["H", FORMAT_VERSION, bank_code, account_no, statement_date.isoformat(), currency,
         opening_balance_fen]
    )  # fmt: skip
    balance, credits, debits = opening_balance_fen, [0, 0], [0, 0]
    entries = list(lines)
    for sequence, line in enumerate(entries, start=1):
        sign = 1 if line.direction is Direction.CREDIT else -1
        balance += sign * line.amount_fen
        tally = credits if line.direction is Direction.CREDIT else debits
        tally[0], tally[1] = tally[0] + 1, tally[1] + line.amount_fen
        text += _row(
            ["D", sequence, format_shanghai(line.booked_at), line.direction.value,
             line.amount_fen, line.counterparty_masked, line.reference, line.bank_serial,
             line.balance_after_fen]
        )  # fmt: skip
    text += _row(["T", balance, len(entries), credits[0], credits[1], debits[0], debits[1]])
    body = text.encode()
    return body + _row(["S", "SHA256", hashlib.sha256(body).hexdigest()]).encode()


def _int(text: str, what: str, pattern: re.Pattern[str] = _INTEGER) -> int:
    if not pattern.fullmatch(text):
        raise StatementError(f"{what} is not a valid integer of fen: {text!r}")
    return int(text)


def _split_checksum(data: bytes) -> tuple[bytes, str]:
    if len(data) > MAX_STATEMENT_BYTES:
        raise StatementError("statement file too large")
    if not data.endswith(b"\n"):
        raise StatementError("statement is truncated: it does not end with a full line")
    body, _, last = data[:-1].rpartition(b"\n")
    body += b"\n"
    fields = last.decode("ascii", errors="replace").split(",")
    if len(fields) != 3 or fields[:2] != ["S", "SHA256"] or not _HEX64.fullmatch(fields[2]):
        raise StatementError("statement is truncated: no SHA-256 checksum line at the end")
    if hashlib.sha256(body).hexdigest() != fields[2]:
        raise StatementError("statement SHA-256 does not match its content")
    return body, fields[2]


def _records(body: bytes) -> list[list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StatementError("statement is not UTF-8") from error
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if len(rows) < 2 or rows[0][:1] != ["H"] or rows[-1][:1] != ["T"]:
        raise StatementError("statement needs a header first and a footer last")
    return rows


def _header(row: list[str]) -> tuple[str, str, date, str, int]:
    if len(row) != 7 or row[1] != FORMAT_VERSION:
        raise StatementError(f"header must be H,{FORMAT_VERSION},bank,account,date,currency,fen")
    try:
        statement_date = date.fromisoformat(row[4])
    except ValueError as error:
        raise StatementError(f"bad statement date {row[4]!r}") from error
    return row[2], row[3], statement_date, row[5], _int(row[6], "opening balance")


def _line(row: list[str], sequence: int, statement_date: date, balance: int) -> StatementLine:
    if len(row) != 9 or row[0] != "D":
        raise StatementError(f"line {sequence} is not a D record of 9 fields")
    if _int(row[1], "sequence") != sequence:
        raise StatementError(f"line {sequence} is out of sequence (missing or repeated lines)")
    try:
        booked_at = parse_shanghai(row[2])
        direction = Direction(row[3])
    except ValueError as error:
        raise StatementError(f"line {sequence}: {error}") from error
    if business_date(booked_at) != statement_date:
        raise StatementError(f"line {sequence} is booked on another day")
    amount = _int(row[4], f"line {sequence} amount", _AMOUNT)
    expected = balance + (amount if direction is Direction.CREDIT else -amount)
    balance_after = _int(row[8], f"line {sequence} balance")
    if balance_after != expected:
        raise StatementError(f"line {sequence} balance {balance_after} should be {expected}")
    return StatementLine(booked_at, direction, amount, row[5], row[6], row[7], balance_after)


def _check_footer(row: list[str], opening: int, lines: Sequence[StatementLine]) -> int:
    if len(row) != 7:
        raise StatementError("footer must be T,closing,lines,credits,credit fen,debits,debit fen")
    closing, count, *totals = (_int(value, "footer field") for value in row[1:])
    credits = [line.amount_fen for line in lines if line.direction is Direction.CREDIT]
    debits = [line.amount_fen for line in lines if line.direction is Direction.DEBIT]
    if count != len(lines) or totals != [len(credits), sum(credits), len(debits), sum(debits)]:
        raise StatementError("footer counts or totals do not match the lines")
    if opening + sum(credits) - sum(debits) != closing:
        raise StatementError("opening balance + credits - debits does not equal closing")
    return closing


def parse_statement(data: bytes) -> Statement:
    """A checked `Statement`, or `StatementError` saying what is wrong with the file."""
    body, digest = _split_checksum(data)
    rows = _records(body)
    bank_code, account_no, statement_date, currency, opening = _header(rows[0])
    lines: list[StatementLine] = []
    balance = opening
    for sequence, row in enumerate(rows[1:-1], start=1):
        line = _line(row, sequence, statement_date, balance)
        balance = line.balance_after_fen
        lines.append(line)
    closing = _check_footer(rows[-1], opening, lines)
    return Statement(
        bank_code=bank_code,
        account_no=account_no,
        statement_date=statement_date,
        currency=currency,
        opening_balance_fen=opening,
        closing_balance_fen=closing,
        lines=tuple(lines),
        sha256=digest,
        raw=data,
    )
