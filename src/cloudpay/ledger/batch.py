"""Apply a batch of transfers to in-memory balances: the ledger's state machine, pure.

The service loads what a batch needs (accounts, balances, transfers with the same ids, the
pending transfers it resolves), calls `apply_batch`, then writes the outcome in one
transaction. Keeping this free of I/O lets property tests run it thousands of times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from cloudpay.ledger.model import (
    _ALL_TRANSFER_FLAGS,
    _BALANCING,
    _RESOLVING,
    ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS,
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    BALANCING_CREDIT,
    BALANCING_DEBIT,
    EXISTS,
    ID_PATTERN,
    LEDGER_PATTERN,
    LINKED,
    MAX_AMOUNT_FEN,
    MAX_BALANCE,
    MAX_CODE_LENGTH,
    MAX_TIMEOUT_S,
    MAX_USER_DATA_LENGTH,
    OK,
    PENDING,
    POST_PENDING,
    STATUS_EXPIRED,
    STATUS_PENDING,
    STATUS_POSTED,
    STATUS_VOIDED,
    Account,
    Balance,
    PendingState,
    Transfer,
    TransferRecord,
    TransferResult,
)

Deltas = dict[str, tuple[int, int, int, int]]
# A new transfer as the row it is stored as (the column order of `ledger_transfers`): the batch
# makes thousands of them, and a tuple costs a tenth of a frozen dataclass to build.
TransferRow = tuple[str, str, str, int, str, str, int, str | None, int, str | None, int]


@dataclass
class BatchState:
    """What the batch may read: loaded by the service, mutated only by `apply_batch`."""

    accounts: dict[str, Account]
    balances: dict[str, Balance]
    existing: dict[str, TransferRecord] = field(default_factory=dict)
    referenced: dict[str, TransferRecord] = field(default_factory=dict)
    pendings: dict[str, PendingState] = field(default_factory=dict)


@dataclass
class BatchOutcome:
    results: list[TransferResult]
    rows: list[TransferRow]
    new_pendings: list[PendingState]
    resolved_pendings: list[PendingState]
    deltas: Deltas

    @property
    def records(self) -> list[TransferRecord]:
        return [TransferRecord(*row) for row in self.rows]

    @property
    def failed(self) -> list[TransferResult]:
        return [r for r in self.results if not r.ok]


class _Refused(Exception):  # control flow inside the batch, never escapes
    def __init__(self, code: str) -> None:
        self.code = code


class _Batch:
    def __init__(self, state: BatchState, now_ns: int) -> None:
        self.state = state
        self.now_ns = now_ns
        self.initial: dict[str, Balance] = {}
        self.rows: list[TransferRow] = []
        self.created: dict[str, TransferRow] = {}
        self.pending_changes: dict[str, PendingState | None] = {}  # id -> state before batch
        # Undo log of the open linked chain: balances and pending states before the chain.
        self.chain_balances: dict[str, Balance] | None = None
        self.chain_pendings: dict[str, PendingState | None] = {}
        self.chain_records_mark = 0

    # --- chain bookkeeping -------------------------------------------------------------
    def open_chain(self) -> None:
        self.chain_balances = {}
        self.chain_pendings = {}
        self.chain_records_mark = len(self.rows)

    def close_chain(self) -> None:
        self.chain_balances = None
        self.chain_pendings = {}

    def roll_back_chain(self) -> None:
        assert self.chain_balances is not None
        balances = self.state.balances
        for account_id, saved in self.chain_balances.items():
            balances[account_id] = saved
        pendings = self.state.pendings
        for pending_id, before in self.chain_pendings.items():
            if before is None:
                pendings.pop(pending_id, None)
            else:
                pendings[pending_id] = before
        for row in self.rows[self.chain_records_mark :]:
            del self.created[row[0]]
        del self.rows[self.chain_records_mark :]
        self.close_chain()

    def touch(self, account_id: str, balance: Balance | None = None) -> Balance:
        """The balance to mutate, saving undo copies the first time in batch and chain."""
        if balance is None:
            balance = self.state.balances[account_id]
        if account_id not in self.initial:
            self.initial[account_id] = balance.copy()
        chain = self.chain_balances
        if chain is not None and account_id not in chain:
            chain[account_id] = balance.copy()
        return balance

    def set_pending(self, pending_id: str, new_state: PendingState) -> None:
        before = self.state.pendings.get(pending_id)
        if pending_id not in self.pending_changes:
            self.pending_changes[pending_id] = before
        if self.chain_balances is not None and pending_id not in self.chain_pendings:
            self.chain_pendings[pending_id] = before
        self.state.pendings[pending_id] = new_state

    # --- one transfer ----------------------------------------------------------------
    def apply(self, transfer: Transfer, timestamp_ns: int) -> tuple[str, int | None]:
        if not isinstance(transfer.id, str) or not ID_PATTERN.fullmatch(transfer.id):
            return "id_invalid", None
        created = self.created.get(transfer.id)
        existing = (
            self.state.existing.get(transfer.id) if created is None else TransferRecord(*created)
        )
        if existing is not None:
            return _compare_existing(transfer, existing), existing.amount
        try:
            row = (
                self.resolve_pending(transfer, timestamp_ns)
                if transfer.flags & _RESOLVING
                else self.move(transfer, timestamp_ns)
            )
        except _Refused as refused:
            return refused.code, None
        self.rows.append(row)
        self.created[row[0]] = row
        return OK, row[3]

    def move(self, t: Transfer, timestamp_ns: int) -> TransferRow:
        _validate_shape(t)
        debit_account, credit_account = self.accounts_of(t)
        debit = self.state.balances[debit_account.id]
        credit = self.state.balances[credit_account.id]
        amount = (
            _balancing_amount(t, debit, credit) if t.flags & _BALANCING or t.amount is None
            else t.amount
        )  # fmt: skip
        is_pending = t.flags & PENDING
        # Overflow checks inline: this runs for every transfer of every batch.
        if is_pending:
            if debit.debits_pending + amount > MAX_BALANCE:
                raise _Refused("overflows_debits_pending")
            if credit.credits_pending + amount > MAX_BALANCE:
                raise _Refused("overflows_credits_pending")
        elif debit.debits_posted + amount > MAX_BALANCE:
            raise _Refused("overflows_debits_posted")
        elif credit.credits_posted + amount > MAX_BALANCE:
            raise _Refused("overflows_credits_posted")
        if debit_account.flags & ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS and (
            debit.debits_pending + debit.debits_posted + amount > debit.credits_posted
        ):
            raise _Refused("exceeds_credits")
        if credit_account.flags & ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS and (
            credit.credits_pending + credit.credits_posted + amount > credit.debits_posted
        ):
            raise _Refused("exceeds_debits")
        debit = self.touch(debit_account.id, debit)
        credit = self.touch(credit_account.id, credit)
        row = (
            t.id, debit_account.id, credit_account.id, amount, t.ledger, t.code,
            t.flags, None, t.timeout_s, t.user_data, timestamp_ns,
        )  # fmt: skip
        if is_pending:
            debit.debits_pending += amount
            credit.credits_pending += amount
            self.set_pending(t.id, PendingState(TransferRecord(*row), STATUS_PENDING))
        else:
            debit.debits_posted += amount
            credit.credits_posted += amount
        return row

    def accounts_of(self, t: Transfer) -> tuple[Account, Account]:
        accounts = self.state.accounts
        debit_account = accounts.get(t.debit_account_id)
        if debit_account is None:
            raise _Refused("debit_account_not_found")
        credit_account = accounts.get(t.credit_account_id)
        if credit_account is None:
            raise _Refused("credit_account_not_found")
        if debit_account.ledger != credit_account.ledger:
            raise _Refused("accounts_must_have_the_same_ledger")
        if t.ledger != debit_account.ledger:
            raise _Refused("transfer_must_have_the_same_ledger_as_accounts")
        if debit_account.closed:
            raise _Refused("debit_account_closed")
        if credit_account.closed:
            raise _Refused("credit_account_closed")
        return debit_account, credit_account

    def resolve_pending(self, t: Transfer, timestamp_ns: int) -> TransferRow:
        pending = self.pending_to_resolve(t)
        p = pending.transfer
        is_post = t.flags & POST_PENDING
        amount = _resolved_amount(t, p, bool(is_post))
        _check_pending_state(pending, self.now_ns)
        if is_post:  # a void only releases a hold, so it stays possible on a closed account
            _check_open(self.state.accounts, p.debit_account_id, p.credit_account_id)
        debit = self.state.balances[p.debit_account_id]
        credit = self.state.balances[p.credit_account_id]
        if is_post:
            _check_overflow(debit.debits_posted, amount, "overflows_debits_posted")
            _check_overflow(credit.credits_posted, amount, "overflows_credits_posted")
        debit = self.touch(p.debit_account_id)
        credit = self.touch(p.credit_account_id)
        debit.debits_pending -= p.amount
        credit.credits_pending -= p.amount
        if is_post:
            debit.debits_posted += amount
            credit.credits_posted += amount
        row = (
            t.id, p.debit_account_id, p.credit_account_id, amount, p.ledger, t.code or p.code,
            t.flags, p.id, 0, t.user_data, timestamp_ns,
        )  # fmt: skip
        status = STATUS_POSTED if is_post else STATUS_VOIDED
        self.set_pending(p.id, PendingState(p, status, timestamp_ns, t.id))
        return row

    def pending_to_resolve(self, t: Transfer) -> PendingState:
        _validate_resolving_shape(t)
        assert t.pending_id is not None
        pending = self.state.pendings.get(t.pending_id)
        if pending is None:
            known = self.created.get(t.pending_id) or self.state.referenced.get(t.pending_id)
            code = "pending_transfer_not_pending" if known else "pending_transfer_not_found"
            raise _Refused(code)
        p = pending.transfer
        if t.debit_account_id and t.debit_account_id != p.debit_account_id:
            raise _Refused("pending_transfer_has_different_debit_account_id")
        if t.credit_account_id and t.credit_account_id != p.credit_account_id:
            raise _Refused("pending_transfer_has_different_credit_account_id")
        if t.ledger and t.ledger != p.ledger:
            raise _Refused("pending_transfer_has_different_ledger")
        if t.code and t.code != p.code:
            raise _Refused("pending_transfer_has_different_code")
        return pending

    # --- outcome ---------------------------------------------------------------------
    def deltas(self) -> Deltas:
        out: Deltas = {}
        balances = self.state.balances
        for account_id, before in self.initial.items():
            after = balances[account_id]
            delta = (
                after.debits_pending - before.debits_pending,
                after.debits_posted - before.debits_posted,
                after.credits_pending - before.credits_pending,
                after.credits_posted - before.credits_posted,
            )
            if delta != (0, 0, 0, 0):
                out[account_id] = delta
        return out

    def pending_outcome(self) -> tuple[list[PendingState], list[PendingState]]:
        new, resolved = [], []
        for pending_id, before in self.pending_changes.items():
            after = self.state.pendings.get(pending_id)
            if after is None:
                continue
            if before is None:
                new.append(after)  # created in this batch (maybe resolved in it too)
            elif after.status != before.status:
                resolved.append(after)
        return new, resolved


# The same few thousand account ids and currencies come back in batch after batch: a cached
# answer costs a quarter of the regex, which otherwise is a third of the per-transfer work.
@lru_cache(maxsize=65_536)
def _is_account_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


@lru_cache(maxsize=64)
def _is_ledger(value: str) -> bool:
    return LEDGER_PATTERN.fullmatch(value) is not None


def _validate_shape(t: Transfer) -> None:
    flags = t.flags
    if flags & ~_ALL_TRANSFER_FLAGS:
        raise _Refused("reserved_flag")
    if not t.debit_account_id or not _is_account_id(t.debit_account_id):
        raise _Refused("debit_account_id_invalid")
    if not t.credit_account_id or not _is_account_id(t.credit_account_id):
        raise _Refused("credit_account_id_invalid")
    if t.debit_account_id == t.credit_account_id:
        raise _Refused("accounts_must_be_different")
    if t.pending_id:
        raise _Refused("pending_id_must_be_empty")
    if t.timeout_s and not flags & PENDING:
        raise _Refused("timeout_reserved_for_pending_transfer")
    if not 0 <= t.timeout_s <= MAX_TIMEOUT_S:
        raise _Refused("timeout_out_of_range")
    _validate_common(t)
    amount = t.amount
    if amount is None:
        if not flags & _BALANCING:
            raise _Refused("amount_must_be_positive")
    elif amount <= 0:
        raise _Refused("amount_must_be_positive")
    elif amount > MAX_AMOUNT_FEN:
        raise _Refused("amount_exceeds_maximum")


def _validate_resolving_shape(t: Transfer) -> None:
    flags = t.flags
    if flags & ~_ALL_TRANSFER_FLAGS:
        raise _Refused("reserved_flag")
    if flags & PENDING or flags & _BALANCING or flags & _RESOLVING == _RESOLVING:
        raise _Refused("flags_are_mutually_exclusive")
    if t.debit_account_id and not _is_account_id(t.debit_account_id):
        raise _Refused("debit_account_id_invalid")
    if t.credit_account_id and not _is_account_id(t.credit_account_id):
        raise _Refused("credit_account_id_invalid")
    if not t.pending_id:
        raise _Refused("pending_id_must_not_be_empty")
    if t.pending_id == t.id:
        raise _Refused("pending_id_must_be_different")
    if t.timeout_s:
        raise _Refused("timeout_reserved_for_pending_transfer")
    if t.ledger and not _is_ledger(t.ledger):
        raise _Refused("ledger_invalid")
    if t.code and len(t.code) > MAX_CODE_LENGTH:
        raise _Refused("code_invalid")
    if t.user_data is not None and len(t.user_data) > MAX_USER_DATA_LENGTH:
        raise _Refused("user_data_too_long")
    if t.amount is not None and t.amount <= 0:
        raise _Refused("amount_must_be_positive")


def _validate_common(t: Transfer) -> None:
    if not t.ledger or not _is_ledger(t.ledger):
        raise _Refused("ledger_invalid")
    if not t.code or len(t.code) > MAX_CODE_LENGTH:
        raise _Refused("code_invalid")
    if t.user_data is not None and len(t.user_data) > MAX_USER_DATA_LENGTH:
        raise _Refused("user_data_too_long")


def _balancing_amount(t: Transfer, debit: Balance, credit: Balance) -> int:
    amount = MAX_AMOUNT_FEN if t.amount is None else t.amount
    if t.flags & BALANCING_DEBIT:
        available = debit.credits_posted - debit.debits_posted - debit.debits_pending
        amount = max(0, min(amount, available))
    if t.flags & BALANCING_CREDIT:
        available = credit.debits_posted - credit.credits_posted - credit.credits_pending
        amount = max(0, min(amount, available))
    return amount


def _resolved_amount(t: Transfer, pending: TransferRecord, is_post: bool) -> int:
    if t.amount is None:
        return pending.amount
    if is_post:
        if t.amount > pending.amount:
            raise _Refused("exceeds_pending_transfer_amount")
        return t.amount
    if t.amount != pending.amount:
        raise _Refused("pending_transfer_has_different_amount")
    return t.amount


def _check_open(accounts: dict[str, Account], debit_id: str, credit_id: str) -> None:
    """Posting moves money, which a closed account no longer takes (as in TigerBeetle)."""
    if accounts[debit_id].closed:
        raise _Refused("debit_account_closed")
    if accounts[credit_id].closed:
        raise _Refused("credit_account_closed")


def _check_pending_state(pending: PendingState, now_ns: int) -> None:
    if pending.status == STATUS_POSTED:
        raise _Refused("pending_transfer_already_posted")
    if pending.status == STATUS_VOIDED:
        raise _Refused("pending_transfer_already_voided")
    expires_at = pending.expires_at_ns
    if pending.status == STATUS_EXPIRED or (expires_at is not None and expires_at <= now_ns):
        raise _Refused("pending_transfer_expired")


def _check_overflow(current: int, amount: int, code: str) -> None:
    if current + amount > MAX_BALANCE:
        raise _Refused(code)


def _compare_existing(t: Transfer, e: TransferRecord) -> str:
    if t.flags != e.flags:
        return "exists_with_different_flags"
    if (t.pending_id or None) != e.pending_id:
        return "exists_with_different_pending_id"
    if t.timeout_s != e.timeout_s:
        return "exists_with_different_timeout"
    if t.debit_account_id and t.debit_account_id != e.debit_account_id:
        return "exists_with_different_debit_account_id"
    if t.credit_account_id and t.credit_account_id != e.credit_account_id:
        return "exists_with_different_credit_account_id"
    if t.amount is not None and (
        t.amount < e.amount if t.flags & _BALANCING else t.amount != e.amount
    ):
        return "exists_with_different_amount"
    if t.user_data != e.user_data:
        return "exists_with_different_user_data"
    if t.ledger and t.ledger != e.ledger:
        return "exists_with_different_ledger"
    if t.code and t.code != e.code:
        return "exists_with_different_code"
    return EXISTS


def apply_batch(transfers: list[Transfer], state: BatchState, now_ns: int) -> BatchOutcome:
    """Apply `transfers` in order; linked chains are all-or-nothing; never raises for input.

    A chain is a run of transfers flagged `linked` closed by the first one without the flag.
    A replayed transfer (`exists`) counts as success with no effect, so a whole journal can be
    resent safely.
    """
    batch = _Batch(state, now_ns)
    results: list[TransferResult] = []
    chain_start: int | None = None
    chain_failed = False
    for index, transfer in enumerate(transfers):
        linked = bool(transfer.flags & LINKED)
        if chain_start is None and linked:
            chain_start, chain_failed = index, False
            batch.open_chain()
        if chain_failed:
            results.append(TransferResult(index, transfer.id, "linked_event_failed"))
        else:
            timestamp_ns = now_ns + index
            code, amount = batch.apply(transfer, timestamp_ns)
            applied_at = timestamp_ns if code == OK else None
            results.append(TransferResult(index, transfer.id, code, amount, applied_at))
            if chain_start is not None and code not in (OK, EXISTS):
                batch.roll_back_chain()
                _mark_chain(results, chain_start, keep_index=index)
                chain_failed = True
        if chain_start is not None and not linked:
            if not chain_failed:
                batch.close_chain()
            chain_start = None
            chain_failed = False
    if chain_start is not None:
        if not chain_failed:
            batch.roll_back_chain()
            _mark_chain(results, chain_start, keep_index=None)
        last = results[-1]
        results[-1] = TransferResult(last.index, last.id, "linked_event_chain_open")
    new_pendings, resolved_pendings = batch.pending_outcome()
    return BatchOutcome(results, batch.rows, new_pendings, resolved_pendings, batch.deltas())


def _mark_chain(results: list[TransferResult], chain_start: int, keep_index: int | None) -> None:
    """Every member of a failed chain fails; the one that caused it keeps its own code."""
    for i in range(chain_start, len(results)):
        if i != keep_index:
            r = results[i]
            results[i] = TransferResult(r.index, r.id, "linked_event_failed")
