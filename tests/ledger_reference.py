"""A reference ledger and batch generators shared by the ledger's property tests.

The reference is written for obviousness, not speed: each kind of transfer has its checks as a
table in precedence order (so the order itself is tested against `TRANSFER_RESULT_CODES`), and a
linked chain is undone by restoring a copy of the state taken when it began (the implementation
keeps an undo log instead). The generators build batches of every kind of transfer, valid and
invalid, from what a `Pool` knows (accounts, earlier transfers, pending ids).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from cloudpay.ledger.model import (
    ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS,
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    BALANCING_CREDIT,
    BALANCING_DEBIT,
    EXISTS,
    LINKED,
    MAX_AMOUNT_FEN,
    MAX_BALANCE,
    MAX_CODE_LENGTH,
    MAX_TIMEOUT_S,
    MAX_USER_DATA_LENGTH,
    OK,
    PENDING,
    POST_PENDING,
    VOID_PENDING,
    Account,
    Transfer,
    TransferRecord,
)

NS_PER_S = 1_000_000_000
DP, DPO, CP, CPO = range(4)  # debits pending, debits posted, credits pending, credits posted
ALL_TRANSFER_FLAGS = (
    LINKED | PENDING | POST_PENDING | VOID_PENDING | BALANCING_DEBIT | BALANCING_CREDIT
)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-:.]{0,63}")
_LEDGER = re.compile(r"[A-Z]{3}")

Check = tuple[str, Callable[[], bool]]
Expected = tuple[str, int | None, int | None]  # result code, amount, timestamp_ns
Balances = dict[str, tuple[int, int, int, int]]


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_valid_ledger(value: str) -> bool:
    return _LEDGER.fullmatch(value) is not None


def first_failure(checks: Sequence[Check]) -> str | None:
    return next((code for code, failed in checks if failed()), None)


class ReferenceLedger:
    """The ledger's rules applied one transfer at a time to plain dicts and lists."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.balances: dict[str, list[int]] = {}
        self.transfers: dict[str, TransferRecord] = {}
        self.status: dict[str, str] = {}  # pending transfer id -> pending/posted/voided/expired

    # --- accounts and reads --------------------------------------------------------------
    def open_account(self, account: Account, balance: Sequence[int] = (0, 0, 0, 0)) -> None:
        self.accounts[account.id] = account
        self.balances[account.id] = list(balance)

    def set_closed(self, account_id: str, *, closed: bool) -> None:
        old = self.accounts[account_id]
        self.accounts[account_id] = Account(
            old.id, old.ledger, old.code, old.owner, old.flags, closed, old.balance_shards
        )

    def balance(self, account_id: str) -> tuple[int, int, int, int]:
        dp, dpo, cp, cpo = self.balances[account_id]
        return (dp, dpo, cp, cpo)

    def expires_at_ns(self, pending_id: str) -> int | None:
        p = self.transfers[pending_id]
        return p.timestamp_ns + p.timeout_s * NS_PER_S if p.timeout_s else None

    def holds_due(self, now_ns: int) -> list[str]:
        return [
            pending_id
            for pending_id, status in self.status.items()
            if status == "pending"
            and (expires_at := self.expires_at_ns(pending_id)) is not None
            and expires_at <= now_ns
        ]

    def snapshot_as_of(self, instant_ns: int) -> Balances:
        """Balances at `instant_ns` (not before the last batch): due holds count as released."""
        snapshot = self._copy_state()[0]
        for pending_id in self.holds_due(instant_ns):
            p = self.transfers[pending_id]
            snapshot[p.debit_account_id][DP] -= p.amount
            snapshot[p.credit_account_id][CP] -= p.amount
        return {account_id: (b[0], b[1], b[2], b[3]) for account_id, b in snapshot.items()}

    # --- jobs ----------------------------------------------------------------------------
    def expire(self, now_ns: int) -> list[str]:
        due = self.holds_due(now_ns)
        for pending_id in due:
            self._release(self.transfers[pending_id])
            self.status[pending_id] = "expired"
        return due

    # --- batches -------------------------------------------------------------------------
    def submit(self, batch: Sequence[Transfer], now_ns: int) -> list[Expected]:
        """The expected result of every transfer; chains are runs closed by an unlinked one."""
        results: list[Expected] = []
        start = 0
        while start < len(batch):
            end = start
            while end < len(batch) - 1 and batch[end].flags & LINKED:
                end += 1
            if start == end and not batch[start].flags & LINKED:
                results.append(self._apply(batch[start], now_ns, start))
            else:
                results.extend(self._apply_chain(batch, range(start, end + 1), now_ns))
            start = end + 1
        return results

    def _apply_chain(
        self, batch: Sequence[Transfer], members: range, now_ns: int
    ) -> list[Expected]:
        saved = self._copy_state()
        applied: list[Expected] = []
        for index in members:
            applied.append(self._apply(batch[index], now_ns, index))
            if applied[-1][0] not in (OK, EXISTS):
                break
        failed = applied[-1][0] not in (OK, EXISTS)
        left_open = bool(batch[members[-1]].flags & LINKED)
        if not failed and not left_open:
            return applied
        self.balances, self.transfers, self.status = saved
        results: list[Expected] = [("linked_event_failed", None, None) for _ in members]
        if failed:
            results[len(applied) - 1] = applied[-1]
        if left_open:
            results[-1] = ("linked_event_chain_open", None, None)
        return results

    def _copy_state(self) -> tuple[dict[str, list[int]], dict[str, TransferRecord], dict[str, str]]:
        balances = {account_id: list(row) for account_id, row in self.balances.items()}
        return balances, dict(self.transfers), dict(self.status)  # records are immutable

    def _apply(self, t: Transfer, now_ns: int, index: int) -> Expected:
        if not is_valid_id(t.id):
            return ("id_invalid", None, None)
        if t.id in self.transfers:
            first = self.transfers[t.id]
            return (first_failure(replay_checks(t, first)) or EXISTS, first.amount, None)
        timestamp_ns = now_ns + index
        if t.flags & (POST_PENDING | VOID_PENDING):
            refusal = first_failure(self.resolve_checks(t, now_ns))
            record = None if refusal else self._resolve(t, timestamp_ns)
        else:
            refusal = first_failure(self.single_phase_checks(t))
            record = None if refusal else self._create(t, timestamp_ns)
        if record is None:
            return (refusal or "unreachable", None, None)
        self.transfers[t.id] = record
        return (OK, record.amount, timestamp_ns)

    # --- checks, each table in order of precedence ----------------------------------------
    def single_phase_checks(self, t: Transfer) -> list[Check]:
        debit = self.accounts.get(t.debit_account_id)
        credit = self.accounts.get(t.credit_account_id)
        d = self.balances.get(t.debit_account_id, [0, 0, 0, 0])
        c = self.balances.get(t.credit_account_id, [0, 0, 0, 0])
        pending = bool(t.flags & PENDING)

        def amount() -> int:
            return self._amount_to_move(t)

        return [
            ("reserved_flag", lambda: t.flags & ~ALL_TRANSFER_FLAGS != 0),
            ("debit_account_id_invalid", lambda: not is_valid_id(t.debit_account_id)),
            ("credit_account_id_invalid", lambda: not is_valid_id(t.credit_account_id)),
            ("accounts_must_be_different", lambda: t.debit_account_id == t.credit_account_id),
            ("pending_id_must_be_empty", lambda: bool(t.pending_id)),
            ("timeout_reserved_for_pending_transfer", lambda: t.timeout_s != 0 and not pending),
            ("timeout_out_of_range", lambda: not 0 <= t.timeout_s <= MAX_TIMEOUT_S),
            ("ledger_invalid", lambda: not is_valid_ledger(t.ledger)),
            ("code_invalid", lambda: not 0 < len(t.code) <= MAX_CODE_LENGTH),
            ("user_data_too_long", lambda: len(t.user_data or "") > MAX_USER_DATA_LENGTH),
            ("amount_must_be_positive", lambda: _amount_not_positive(t)),
            ("amount_exceeds_maximum", lambda: (t.amount or 0) > MAX_AMOUNT_FEN),
            ("debit_account_not_found", lambda: debit is None),
            ("credit_account_not_found", lambda: credit is None),
            ("accounts_must_have_the_same_ledger", lambda: _ledger(debit) != _ledger(credit)),
            ("transfer_must_have_the_same_ledger_as_accounts", lambda: t.ledger != _ledger(debit)),
            ("debit_account_closed", lambda: _closed(debit)),
            ("credit_account_closed", lambda: _closed(credit)),
            ("overflows_debits_pending", lambda: pending and d[DP] + amount() > MAX_BALANCE),
            ("overflows_credits_pending", lambda: pending and c[CP] + amount() > MAX_BALANCE),
            ("overflows_debits_posted", lambda: not pending and d[DPO] + amount() > MAX_BALANCE),
            ("overflows_credits_posted", lambda: not pending and c[CPO] + amount() > MAX_BALANCE),
            (
                "exceeds_credits",
                lambda: (
                    _flag(debit, ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
                    and d[DP] + d[DPO] + amount() > d[CPO]
                ),
            ),
            (
                "exceeds_debits",
                lambda: (
                    _flag(credit, ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS)
                    and c[CP] + c[CPO] + amount() > c[DPO]
                ),
            ),
        ]

    def resolve_checks(self, t: Transfer, now_ns: int) -> list[Check]:
        p = self.transfers.get(t.pending_id or "")
        post = bool(t.flags & POST_PENDING)
        void = bool(t.flags & VOID_PENDING)

        def posted(side: str, column: int) -> int:
            assert p is not None
            return self.balances[getattr(p, side)][column]

        def amount() -> int:
            assert p is not None
            return t.amount if post and t.amount is not None else p.amount

        def expired() -> bool:
            assert p is not None
            expires_at = self.expires_at_ns(p.id)
            status = self.status[p.id]
            return status == "expired" or (expires_at is not None and expires_at <= now_ns)

        return [
            ("reserved_flag", lambda: t.flags & ~ALL_TRANSFER_FLAGS != 0),
            (
                "flags_are_mutually_exclusive",
                lambda: (
                    bool(t.flags & (PENDING | BALANCING_DEBIT | BALANCING_CREDIT))
                    or (post and void)
                ),
            ),
            (
                "debit_account_id_invalid",
                lambda: t.debit_account_id != "" and not is_valid_id(t.debit_account_id),
            ),
            (
                "credit_account_id_invalid",
                lambda: t.credit_account_id != "" and not is_valid_id(t.credit_account_id),
            ),
            ("pending_id_must_not_be_empty", lambda: not t.pending_id),
            ("pending_id_must_be_different", lambda: t.pending_id == t.id),
            ("timeout_reserved_for_pending_transfer", lambda: t.timeout_s != 0),
            ("ledger_invalid", lambda: t.ledger != "" and not is_valid_ledger(t.ledger)),
            ("code_invalid", lambda: len(t.code) > MAX_CODE_LENGTH),
            ("user_data_too_long", lambda: len(t.user_data or "") > MAX_USER_DATA_LENGTH),
            ("amount_must_be_positive", lambda: t.amount is not None and t.amount <= 0),
            ("pending_transfer_not_found", lambda: p is None),
            ("pending_transfer_not_pending", lambda: not _record(p).flags & PENDING),
            (
                "pending_transfer_has_different_debit_account_id",
                lambda: _differs(t.debit_account_id, _record(p).debit_account_id),
            ),
            (
                "pending_transfer_has_different_credit_account_id",
                lambda: _differs(t.credit_account_id, _record(p).credit_account_id),
            ),
            (
                "pending_transfer_has_different_ledger",
                lambda: _differs(t.ledger, _record(p).ledger),
            ),
            ("pending_transfer_has_different_code", lambda: _differs(t.code, _record(p).code)),
            (
                "exceeds_pending_transfer_amount",
                lambda: post and t.amount is not None and t.amount > _record(p).amount,
            ),
            (
                "pending_transfer_has_different_amount",
                lambda: void and t.amount is not None and t.amount != _record(p).amount,
            ),
            ("pending_transfer_already_posted", lambda: self.status[_record(p).id] == "posted"),
            ("pending_transfer_already_voided", lambda: self.status[_record(p).id] == "voided"),
            ("pending_transfer_expired", expired),
            (
                "debit_account_closed",
                lambda: post and _closed(self.accounts.get(_record(p).debit_account_id)),
            ),
            (
                "credit_account_closed",
                lambda: post and _closed(self.accounts.get(_record(p).credit_account_id)),
            ),
            (
                "overflows_debits_posted",
                lambda: post and posted("debit_account_id", DPO) + amount() > MAX_BALANCE,
            ),
            (
                "overflows_credits_posted",
                lambda: post and posted("credit_account_id", CPO) + amount() > MAX_BALANCE,
            ),
        ]

    # --- effects -------------------------------------------------------------------------
    def _amount_to_move(self, t: Transfer) -> int:
        """A balancing transfer moves at most what keeps its side's balance at zero or above."""
        amount = MAX_AMOUNT_FEN if t.amount is None else t.amount
        d = self.balances[t.debit_account_id]
        c = self.balances[t.credit_account_id]
        if t.flags & BALANCING_DEBIT:
            amount = max(0, min(amount, d[CPO] - d[DPO] - d[DP]))
        if t.flags & BALANCING_CREDIT:
            amount = max(0, min(amount, c[DPO] - c[CPO] - c[CP]))
        return amount

    def _create(self, t: Transfer, timestamp_ns: int) -> TransferRecord:
        amount = self._amount_to_move(t)
        debit_column, credit_column = (DP, CP) if t.flags & PENDING else (DPO, CPO)
        self.balances[t.debit_account_id][debit_column] += amount
        self.balances[t.credit_account_id][credit_column] += amount
        if t.flags & PENDING:
            self.status[t.id] = "pending"
        return TransferRecord(
            t.id, t.debit_account_id, t.credit_account_id, amount, t.ledger, t.code,
            t.flags, None, t.timeout_s, t.user_data, timestamp_ns,
        )  # fmt: skip

    def _release(self, p: TransferRecord) -> None:
        self.balances[p.debit_account_id][DP] -= p.amount
        self.balances[p.credit_account_id][CP] -= p.amount

    def _resolve(self, t: Transfer, timestamp_ns: int) -> TransferRecord:
        p = self.transfers[t.pending_id or ""]
        post = bool(t.flags & POST_PENDING)
        amount = t.amount if post and t.amount is not None else p.amount
        self._release(p)
        if post:
            self.balances[p.debit_account_id][DPO] += amount
            self.balances[p.credit_account_id][CPO] += amount
        self.status[p.id] = "posted" if post else "voided"
        return TransferRecord(
            t.id, p.debit_account_id, p.credit_account_id, amount, p.ledger, t.code or p.code,
            t.flags, p.id, 0, t.user_data, timestamp_ns,
        )  # fmt: skip


def replay_checks(t: Transfer, first: TransferRecord) -> list[Check]:
    """A transfer id seen before: which field, in precedence order, differs from the first."""
    balancing = bool(t.flags & (BALANCING_DEBIT | BALANCING_CREDIT))

    def amount_differs() -> bool:
        if t.amount is None:
            return False  # "the full pending amount" / "as much as possible"
        return t.amount < first.amount if balancing else t.amount != first.amount

    return [
        ("exists_with_different_flags", lambda: t.flags != first.flags),
        ("exists_with_different_pending_id", lambda: (t.pending_id or None) != first.pending_id),
        ("exists_with_different_timeout", lambda: t.timeout_s != first.timeout_s),
        (
            "exists_with_different_debit_account_id",
            lambda: _differs(t.debit_account_id, first.debit_account_id),
        ),
        (
            "exists_with_different_credit_account_id",
            lambda: _differs(t.credit_account_id, first.credit_account_id),
        ),
        ("exists_with_different_amount", amount_differs),
        ("exists_with_different_user_data", lambda: t.user_data != first.user_data),
        ("exists_with_different_ledger", lambda: _differs(t.ledger, first.ledger)),
        ("exists_with_different_code", lambda: _differs(t.code, first.code)),
    ]


def _amount_not_positive(t: Transfer) -> bool:
    if t.amount is None:
        return not t.flags & (BALANCING_DEBIT | BALANCING_CREDIT)
    return t.amount <= 0


def _differs(given: str, recorded: str) -> bool:
    """An empty field on a post/void or replay means "as recorded"."""
    return given != "" and given != recorded


def _record(p: TransferRecord | None) -> TransferRecord:
    assert p is not None
    return p


def _ledger(account: Account | None) -> str:
    assert account is not None
    return account.ledger


def _closed(account: Account | None) -> bool:
    assert account is not None
    return account.closed


def _flag(account: Account | None, flag: int) -> bool:
    assert account is not None
    return bool(account.flags & flag)


# --- generators ---------------------------------------------------------------------------
LEDGERS = st.sampled_from(["CNY", "CNY", "CNY", "USD"])
ACCOUNT_FLAGS = st.sampled_from(
    [0, ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS]
)
AMOUNTS = st.one_of(st.integers(1, 300), st.integers(1, 300), st.integers(1, MAX_AMOUNT_FEN))
CODES = st.sampled_from(["sale", "fee"])
USER_DATA = st.sampled_from([None, None, "order:1"])
TIMEOUTS = st.sampled_from([0, 0, 1, 5, 60])
BAD_IDS = ["", "-starts-with-dash", "has space", "x" * 65, "t1\n", "x" * 64 + "\n"]
Draw = Callable[[st.SearchStrategy[Any]], Any]


def copy_transfer(t: Transfer, **changes: object) -> Transfer:
    fields = {name: getattr(t, name) for name in Transfer.__slots__}
    fields.update(changes)
    return Transfer(**fields)


@dataclass
class Pool:
    """What generated transfers may name: accounts, transfers sent so far, pending ids."""

    prefix: str = ""
    ledger_of: dict[str, str] = field(default_factory=dict)
    submitted: list[Transfer] = field(default_factory=list)
    pending_ids: list[str] = field(default_factory=list)
    recorded: list[Transfer] = field(default_factory=list)  # sent and answered `ok`
    amount_of: dict[str, int] = field(default_factory=dict)  # what those really moved
    counter: int = 0

    def note(self, batch: Sequence[Transfer], results: Sequence[tuple[str, int | None]]) -> None:
        for t, (code, amount) in zip(batch, results, strict=True):
            if code == OK and amount is not None:
                self.recorded.append(t)
                self.amount_of[t.id] = amount

    def recorded_ids(self, *, pending: bool) -> list[str]:
        plain = PENDING | POST_PENDING | VOID_PENDING
        return [t.id for t in self.recorded if bool(t.flags & (PENDING if pending else plain))
                == pending]  # fmt: skip

    def earlier(self, draw: Draw, batch: list[Transfer]) -> list[Transfer]:
        """Transfers recorded (so replays meet them), sent in this batch, or sent at all."""
        source = draw(st.sampled_from(["recorded", "recorded", "this batch", "any"]))
        if source == "recorded" and self.recorded:
            return self.recorded
        if source == "this batch" and batch:
            return batch
        return self.submitted + batch

    def new_id(self, kind: str = "t") -> str:
        self.counter += 1
        return f"{self.prefix}{kind}{self.counter}"

    def accounts_in(self, ledger: str) -> list[str]:
        return [a for a, account_ledger in self.ledger_of.items() if account_ledger == ledger]

    def payable_ledgers(self) -> list[str]:
        return sorted({lg for lg in self.ledger_of.values() if len(self.accounts_in(lg)) >= 2})


def draw_accounts(draw: Draw, pool: Pool, count: int) -> list[Account]:
    accounts = []
    for _ in range(count):
        account_id = pool.new_id("acc")
        ledger = draw(LEDGERS)
        flags = draw(ACCOUNT_FLAGS)
        pool.ledger_of[account_id] = ledger
        accounts.append(Account(account_id, ledger, "test", account_id, flags))
    return accounts


def draw_batch(draw: Draw, pool: Pool) -> list[Transfer]:
    """1–6 items (a chain is one item); sometimes the batch ends with an open chain."""
    batch: list[Transfer] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from([*sorted(_BUILDERS), "invalid"]))
        batch.extend(_BUILDERS[str(kind)](draw, pool, batch))
    if draw(st.integers(0, 9)) == 0:
        batch[-1].flags |= LINKED
    pool.submitted.extend(batch)
    return batch


def _pair(draw: Draw, pool: Pool) -> tuple[str, str, str]:
    ledger = draw(st.sampled_from(pool.payable_ledgers()))
    debit, credit = draw(st.lists(st.sampled_from(pool.accounts_in(ledger)), min_size=2,
                                  max_size=2, unique=True))  # fmt: skip
    return debit, credit, ledger


def _single(draw: Draw, pool: Pool, flags: int = 0, timeout_s: int = 0) -> Transfer:
    debit, credit, ledger = _pair(draw, pool)
    return Transfer(
        pool.new_id(), debit, credit, draw(AMOUNTS), ledger, draw(CODES),
        flags=flags, timeout_s=timeout_s, user_data=draw(USER_DATA),
    )  # fmt: skip


def _pending(draw: Draw, pool: Pool) -> Transfer:
    t = _single(draw, pool, PENDING, draw(TIMEOUTS))
    pool.pending_ids.append(t.id)
    return t


def _resolving(draw: Draw, pool: Pool, flags: int) -> Transfer:
    recorded = pool.recorded_ids(pending=True)
    candidates = recorded if recorded and draw(st.integers(0, 2)) > 0 else pool.pending_ids
    pending_id = draw(st.sampled_from(candidates)) if candidates else "none"
    amount = draw(st.sampled_from(["full", "full", "random", "exact", "under", "over"]))
    held = pool.amount_of.get(pending_id, 1)
    amount = {"full": None, "random": draw(st.integers(1, 400)), "exact": held,
              "under": max(1, held - 1), "over": held + 1}[amount]  # fmt: skip
    return Transfer(pool.new_id(), amount=amount, flags=flags, pending_id=pending_id)


def _balancing(draw: Draw, pool: Pool) -> Transfer:
    side = draw(st.sampled_from([BALANCING_DEBIT, BALANCING_CREDIT, _BOTH_BALANCING]))
    t = _single(draw, pool, int(side) | draw(st.sampled_from([0, 0, PENDING])))
    t.amount = draw(st.one_of(st.none(), st.integers(1, 2_000)))
    return t


_BOTH_BALANCING = BALANCING_DEBIT | BALANCING_CREDIT


def _valid(draw: Draw, pool: Pool) -> Transfer:
    kind = draw(st.sampled_from(["single", "single", "pending", "post", "void", "balancing"]))
    if kind == "pending":
        return _pending(draw, pool)
    if kind in ("post", "void"):
        return _resolving(draw, pool, POST_PENDING if kind == "post" else VOID_PENDING)
    if kind == "balancing":
        return _balancing(draw, pool)
    return _single(draw, pool)


def _invalid(draw: Draw, pool: Pool) -> Transfer:
    """A transfer with one or two faults, so precedence between faults gets exercised too."""
    resolving = draw(st.booleans())
    if resolving:
        t = _resolving(draw, pool, draw(st.sampled_from([POST_PENDING, VOID_PENDING])))
        faults = _RESOLVING_FAULTS
    else:
        t = _pending(draw, pool) if draw(st.booleans()) else _single(draw, pool)
        faults = _SINGLE_PHASE_FAULTS
    chosen = draw(st.lists(st.sampled_from(sorted(faults)), min_size=1, max_size=2, unique=True))
    for fault in chosen:
        faults[fault](draw, pool, t)
    return t


def _other_account(draw: Draw, pool: Pool, *, not_ledger: str | None = None) -> str:
    others = [a for a, lg in pool.ledger_of.items() if lg != not_ledger]
    return draw(st.sampled_from(others)) if others else "nobody"


def _set(**changes: object) -> Callable[[Draw, Pool, Transfer], None]:
    def fault(draw: Draw, pool: Pool, t: Transfer) -> None:
        for name, value in changes.items():
            setattr(t, name, value)

    return fault


def _bad_id(draw: Draw, pool: Pool, t: Transfer) -> None:
    t.id = draw(st.sampled_from(BAD_IDS))


def _cross_ledger(draw: Draw, pool: Pool, t: Transfer) -> None:
    debit_ledger = pool.ledger_of.get(t.debit_account_id)
    t.credit_account_id = _other_account(draw, pool, not_ledger=debit_ledger)


def _wrong_ledger(draw: Draw, pool: Pool, t: Transfer) -> None:
    t.ledger = draw(st.sampled_from(["USD" if t.ledger != "USD" else "CNY", "cny", "CNY\n"]))


def _not_pending(draw: Draw, pool: Pool, t: Transfer) -> None:
    plain = pool.recorded_ids(pending=False)
    t.pending_id = draw(st.sampled_from(plain)) if plain else "none"


def _post_wrong_account(draw: Draw, pool: Pool, t: Transfer) -> None:
    t.debit_account_id = _other_account(draw, pool)


_SHARED_FAULTS = {
    "bad_id": _bad_id,
    "reserved_flag": lambda draw, pool, t: setattr(t, "flags", t.flags | 1 << 6),
    "user_data_too_long": _set(user_data="u" * (MAX_USER_DATA_LENGTH + 1)),
    "code_too_long": _set(code="c" * (MAX_CODE_LENGTH + 1)),
    "ledger_malformed": _set(ledger="CNY\n"),
    "debit_id_malformed": _set(debit_account_id="bad id!"),
}
_SINGLE_PHASE_FAULTS = {
    **_SHARED_FAULTS,
    "amount_zero": _set(amount=0),
    "amount_negative": _set(amount=-7),
    "amount_missing": _set(amount=None),
    "amount_huge": _set(amount=MAX_AMOUNT_FEN + 1),
    "amount_bigint": _set(amount=2**63),
    "unknown_debit": _set(debit_account_id="nobody-debit"),
    "unknown_credit": _set(credit_account_id="nobody-credit"),
    "same_account": lambda draw, pool, t: setattr(t, "credit_account_id", t.debit_account_id),
    "wrong_ledger": _wrong_ledger,
    "cross_ledger": _cross_ledger,
    "pending_id_given": _set(pending_id="some-pending"),
    "timeout_without_pending": lambda draw, pool, t: setattr(t, "timeout_s", t.timeout_s or 5),
    "timeout_negative": _set(timeout_s=-1),
    "timeout_too_long": _set(timeout_s=MAX_TIMEOUT_S + 1),
    "code_missing": _set(code=""),
}
_RESOLVING_FAULTS = {
    **_SHARED_FAULTS,
    "unknown_pending": _set(pending_id="no-such-pending"),
    "not_pending": _not_pending,
    "pending_id_missing": _set(pending_id=None),
    "pending_id_self": lambda draw, pool, t: setattr(t, "pending_id", t.id),
    "post_and_void": _set(flags=POST_PENDING | VOID_PENDING),
    "with_pending_flag": lambda draw, pool, t: setattr(t, "flags", t.flags | PENDING),
    "with_timeout": _set(timeout_s=5),
    "different_debit": _post_wrong_account,
    "different_code": _set(code="other"),
    "different_ledger": _set(ledger="EUR"),
    "amount_too_big": _set(amount=10**9),
    "amount_zero": _set(amount=0),
    "amount_other": _set(amount=1),
}


def _chain(draw: Draw, pool: Pool, batch: list[Transfer]) -> list[Transfer]:
    """2–4 linked transfers, maybe one faulty; maybe one member resent alone right after."""
    members = [_valid(draw, pool) for _ in range(draw(st.integers(2, 4)))]
    if draw(st.booleans()):
        members[draw(st.integers(0, len(members) - 1))] = _invalid(draw, pool)
    for member in members[:-1]:
        member.flags |= LINKED
    if draw(st.booleans()):
        resent = draw(st.sampled_from(members))
        return [*members, copy_transfer(resent, flags=resent.flags & ~LINKED)]
    return members


def _replay(draw: Draw, pool: Pool, batch: list[Transfer]) -> list[Transfer]:
    earlier = pool.earlier(draw, batch)
    if not earlier:
        return [_single(draw, pool)]
    return [copy_transfer(draw(st.sampled_from(earlier)))]


def _replay_changed(draw: Draw, pool: Pool, batch: list[Transfer]) -> list[Transfer]:
    earlier = pool.earlier(draw, batch)
    if not earlier:
        return [_single(draw, pool)]
    t: Transfer = draw(st.sampled_from(earlier))
    change = draw(st.sampled_from(sorted(_CHANGES)))
    return [copy_transfer(t, **_CHANGES[str(change)](draw, pool, t))]


_CHANGES: dict[str, Callable[[Draw, Pool, Transfer], dict[str, object]]] = {
    "amount": lambda draw, pool, t: {"amount": (t.amount or 0) + draw(st.integers(1, 50))},
    "amount_lower": lambda draw, pool, t: {"amount": max(1, (t.amount or 2) - 1)},
    "code": lambda draw, pool, t: {"code": "other"},
    "user_data": lambda draw, pool, t: {"user_data": None if t.user_data else "changed"},
    "debit": lambda draw, pool, t: {"debit_account_id": _other_account(draw, pool)},
    "credit": lambda draw, pool, t: {"credit_account_id": _other_account(draw, pool)},
    "timeout": lambda draw, pool, t: {"timeout_s": t.timeout_s + 1},
    "flags": lambda draw, pool, t: {"flags": t.flags ^ PENDING},
    "pending_id": lambda draw, pool, t: {"pending_id": "another-pending"},
    "ledger": lambda draw, pool, t: {"ledger": "USD" if t.ledger != "USD" else "CNY"},
}

_BUILDERS: dict[str, Callable[[Draw, Pool, list[Transfer]], list[Transfer]]] = {
    "single": lambda draw, pool, batch: [_single(draw, pool)],
    "pending": lambda draw, pool, batch: [_pending(draw, pool)],
    "post": lambda draw, pool, batch: [_resolving(draw, pool, POST_PENDING)],
    "void": lambda draw, pool, batch: [_resolving(draw, pool, VOID_PENDING)],
    "balancing": lambda draw, pool, batch: [_balancing(draw, pool)],
    "chain": _chain,
    "replay": _replay,
    "replay_changed": _replay_changed,
    "invalid": lambda draw, pool, batch: [_invalid(draw, pool)],
}


def ok_subset(batch: Sequence[Transfer], codes: Sequence[str]) -> list[Transfer]:
    """The transfers that succeeded, as fresh copies; whole chains stay whole and closed."""
    return [copy_transfer(t) for t, code in zip(batch, codes, strict=True) if code in (OK, EXISTS)]
