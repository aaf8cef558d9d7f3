"""Property tests of `apply_batch`, the ledger's pure state machine (TigerBeetle semantics).

A `Store` plays the database: it loads a `BatchState` the way the service does and persists a
`BatchOutcome` the way the repository does. A `ReferenceLedger` predicts every result; after
every step the two must agree and the books must balance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cloudpay.ledger.batch import BatchOutcome, BatchState, apply_batch
from cloudpay.ledger.model import (
    _RESOLVING,
    ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS,
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    EXISTS,
    LINKED,
    MAX_BALANCE,
    OK,
    PENDING,
    POST_PENDING,
    STATUS_EXPIRED,
    STATUS_PENDING,
    TRANSFER_RESULT_CODES,
    VOID_PENDING,
    Account,
    Balance,
    PendingState,
    Transfer,
    TransferRecord,
)
from tests.ledger_reference import (
    NS_PER_S,
    Pool,
    ReferenceLedger,
    copy_transfer,
    draw_accounts,
    draw_batch,
    ok_subset,
    replay_checks,
)

START_NS = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z
Row = tuple[int, int, int, int]


class Store:
    """The database's part, in memory: loads like `service._load_batch_state`, writes like
    `service._persist`, expires like `service.expire_pending_transfers`."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.balances: dict[str, Row] = {}
        self.records: dict[str, TransferRecord] = {}
        self.pendings: dict[str, PendingState] = {}

    def open_account(self, account: Account, balance: Row = (0, 0, 0, 0)) -> None:
        assert account.id not in self.accounts
        self.accounts[account.id] = account
        self.balances[account.id] = balance

    def load(self, batch: Sequence[Transfer]) -> BatchState:
        pending_ids = {t.pending_id for t in batch if t.pending_id and t.flags & _RESOLVING}
        pendings = {
            i: dataclasses.replace(self.pendings[i]) for i in pending_ids if i in self.pendings
        }
        account_ids = {t.debit_account_id for t in batch} | {t.credit_account_id for t in batch}
        for state in pendings.values():
            account_ids |= {state.transfer.debit_account_id, state.transfer.credit_account_id}
        accounts = {i: self.accounts[i] for i in account_ids if i in self.accounts}
        return BatchState(
            accounts=accounts,
            balances={i: Balance(*self.balances[i]) for i in accounts},
            existing={t.id: self.records[t.id] for t in batch if t.id in self.records},
            referenced={
                i: self.records[i] for i in pending_ids - set(pendings) if i in self.records
            },
            pendings=pendings,
        )

    def persist(self, outcome: BatchOutcome) -> None:
        for record in outcome.records:
            assert record.id not in self.records, f"primary key violated: {record.id}"
            self.records[record.id] = record
        for state in outcome.new_pendings:
            assert state.transfer.id not in self.pendings, f"duplicate pending {state}"
            self.pendings[state.transfer.id] = state
        for state in outcome.resolved_pendings:
            assert self.pendings[state.transfer.id].status == STATUS_PENDING, state
            self.pendings[state.transfer.id] = state
        for account_id, delta in outcome.deltas.items():
            self.balances[account_id] = _add(self.balances[account_id], delta)

    def expire(self, now_ns: int) -> list[str]:
        expired = []
        for pending_id, state in self.pendings.items():
            expires_at = state.expires_at_ns
            if state.status == STATUS_PENDING and expires_at is not None and expires_at <= now_ns:
                t = state.transfer
                self.balances[t.debit_account_id] = _add(
                    self.balances[t.debit_account_id], (-t.amount, 0, 0, 0)
                )
                self.balances[t.credit_account_id] = _add(
                    self.balances[t.credit_account_id], (0, 0, -t.amount, 0)
                )
                self.pendings[pending_id] = PendingState(t, STATUS_EXPIRED, expires_at, None)
                expired.append(pending_id)
        return expired

    def balances_from_records(self) -> dict[str, Row]:
        """What `check_books` recomputes: posted from transfers, pending from live holds."""
        out = dict.fromkeys(self.accounts, (0, 0, 0, 0))
        for r in self.records.values():
            if not r.flags & (PENDING | VOID_PENDING):
                out[r.debit_account_id] = _add(out[r.debit_account_id], (0, r.amount, 0, 0))
                out[r.credit_account_id] = _add(out[r.credit_account_id], (0, 0, 0, r.amount))
        for state in self.pendings.values():
            if state.status == STATUS_PENDING:
                t = state.transfer
                out[t.debit_account_id] = _add(out[t.debit_account_id], (t.amount, 0, 0, 0))
                out[t.credit_account_id] = _add(out[t.credit_account_id], (0, 0, t.amount, 0))
        return out


def _add(row: Sequence[int], delta: Sequence[int]) -> Row:
    return (row[0] + delta[0], row[1] + delta[1], row[2] + delta[2], row[3] + delta[3])


def chains_of(batch: Sequence[Transfer]) -> list[range]:
    """Index ranges of linked chains: runs of `linked` closed by the next transfer (or the end)."""
    chains, start = [], None
    for index, t in enumerate(batch):
        if start is None and t.flags & LINKED:
            start = index
        if start is not None and (not t.flags & LINKED or index == len(batch) - 1):
            chains.append(range(start, index + 1))
            start = None
    return chains


def check_outcome(batch: Sequence[Transfer], state: BatchState, before: dict[str, Row],
                  outcome: BatchOutcome) -> None:  # fmt: skip
    """What must hold of any outcome, whatever the reference says."""
    codes = [r.result for r in outcome.results]
    assert [r.index for r in outcome.results] == list(range(len(batch)))
    assert [r.id for r in outcome.results] == [t.id for t in batch]
    assert set(codes) <= {OK, *TRANSFER_RESULT_CODES}, codes
    for chain in chains_of(batch):
        succeeded = [codes[i] in (OK, EXISTS) for i in chain]
        assert all(succeeded) or not any(succeeded), (chain, codes)
    # Refused transfers changed nothing: exactly the `ok` ones were recorded, in order.
    assert [r.id for r in outcome.records] == [r.id for r in outcome.results if r.result == OK]
    moved = {a for r in outcome.records for a in (r.debit_account_id, r.credit_account_id)}
    assert set(outcome.deltas) <= moved
    # The deltas are exactly the change the batch made to the balances it was given.
    for account_id, balance in state.balances.items():
        delta = outcome.deltas.get(account_id, (0, 0, 0, 0))
        assert balance.as_tuple() == _add(before[account_id], delta), account_id


class LedgerMachine(RuleBasedStateMachine):
    """Random accounts, batches, replays, clock moves and expiry runs against the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.store = Store()
        self.reference = ReferenceLedger()
        self.pool = Pool()
        self.now_ns = START_NS
        self.succeeded_batches: list[list[Transfer]] = []
        self.nearly_full_opened = False

    def _open(self, accounts: Sequence[Account], balance: Row = (0, 0, 0, 0)) -> None:
        for account in accounts:
            self.store.open_account(account, balance)
            self.reference.open_account(account, balance)

    def _submit(self, batch: list[Transfer]) -> BatchOutcome:
        state = self.store.load(batch)
        before = {i: b.as_tuple() for i, b in state.balances.items()}
        expected = self.reference.submit(batch, self.now_ns)
        outcome = apply_batch(batch, state, self.now_ns)
        got = [(r.result, r.amount, r.timestamp_ns) for r in outcome.results]
        assert got == expected, f"batch {batch}"
        check_outcome(batch, state, before, outcome)
        self.store.persist(outcome)
        self.pool.note(batch, [(r.result, r.amount) for r in outcome.results])
        return outcome

    @initialize(data=st.data(), count=st.integers(0, 3))
    def open_first_accounts(self, data: st.DataObject, count: int) -> None:
        accounts = draw_accounts(data.draw, self.pool, count)
        for _ in range(2):  # two CNY accounts, so there is always something to pay between
            account_id = self.pool.new_id("acc")
            self.pool.ledger_of[account_id] = "CNY"
            flags = data.draw(st.sampled_from([0, ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS]))
            accounts.append(Account(account_id, "CNY", "test", account_id, flags))
        self._open(accounts)

    @rule(data=st.data(), count=st.integers(1, 2))
    def open_accounts(self, data: st.DataObject, count: int) -> None:
        self._open(draw_accounts(data.draw, self.pool, count))

    @precondition(lambda self: not self.nearly_full_opened)
    @rule(headroom=st.integers(0, 10**15))
    def open_nearly_full_accounts(self, headroom: int) -> None:
        """Two accounts that have moved and hold almost 2^63 fen, so overflows can be reached."""
        self.nearly_full_opened = True
        debit, credit = (Account(self.pool.new_id("acc"), "CNY", "test", "o") for _ in "dc")
        self.pool.ledger_of.update({debit.id: "CNY", credit.id: "CNY"})
        amount = MAX_BALANCE - headroom
        self._open([debit], (amount, amount, 0, 0))
        self._open([credit], (0, 0, amount, amount))
        for genesis_id, flags in (("genesis", 0), ("genesis-hold", PENDING)):
            genesis = TransferRecord(genesis_id, debit.id, credit.id, amount, "CNY", "genesis",
                                     flags, None, 0, None, START_NS)  # fmt: skip
            self.store.records[genesis_id] = genesis
            self.reference.transfers[genesis_id] = genesis
        self.store.pendings["genesis-hold"] = PendingState(genesis, STATUS_PENDING)
        self.reference.status["genesis-hold"] = "pending"
        self.pool.pending_ids.append("genesis-hold")

    @rule(data=st.data())
    def submit_batch(self, data: st.DataObject) -> None:
        batch = draw_batch(data.draw, self.pool)
        outcome = self._submit(batch)
        codes = [r.result for r in outcome.results]
        if any(code in (OK, EXISTS) for code in codes):
            self.succeeded_batches.append(ok_subset(batch, codes))

    @precondition(lambda self: self.succeeded_batches)
    @rule(data=st.data())
    def replay_succeeded_batch(self, data: st.DataObject) -> None:
        """Resending what succeeded, field for field, is `exists` throughout and moves nothing."""
        batch = [copy_transfer(t) for t in data.draw(st.sampled_from(self.succeeded_batches))]
        outcome = self._submit(batch)
        assert [r.result for r in outcome.results] == [EXISTS] * len(batch)
        assert outcome.records == []
        assert outcome.deltas == {}
        assert outcome.new_pendings == outcome.resolved_pendings == []

    @rule(data=st.data(), closed=st.booleans())
    def close_or_reopen_account(self, data: st.DataObject, closed: bool) -> None:
        account_id = data.draw(st.sampled_from(sorted(self.store.accounts)))
        account = dataclasses.replace(self.store.accounts[account_id], closed=closed)
        self.store.accounts[account_id] = account
        self.reference.set_closed(account_id, closed=closed)

    @rule(seconds=st.sampled_from([0, 1, 2, 5, 61]), nanoseconds=st.integers(0, 3))
    def advance_time(self, seconds: int, nanoseconds: int) -> None:
        self.now_ns += seconds * NS_PER_S + nanoseconds

    def _holds_with_deadline_ahead(self) -> list[str]:
        return sorted(
            i
            for i, status in self.reference.status.items()
            if status == "pending" and (self.reference.expires_at_ns(i) or 0) > self.now_ns + 1
        )

    @precondition(lambda self: self._holds_with_deadline_ahead())
    @rule(data=st.data(), offset_ns=st.sampled_from([-1, 0]), flags=st.sampled_from(
        [POST_PENDING, VOID_PENDING]))  # fmt: skip
    def resolve_a_hold_at_its_deadline(self, data: st.DataObject, offset_ns: int,
                                       flags: int) -> None:  # fmt: skip
        """A hold can be resolved up to, but not at, its deadline: the boundary matters."""
        pending_id = data.draw(st.sampled_from(self._holds_with_deadline_ahead()))
        self.now_ns = (self.reference.expires_at_ns(pending_id) or 0) + offset_ns
        self._submit([Transfer(self.pool.new_id(), pending_id=pending_id, flags=flags)])

    @rule()
    def expire_due_holds(self) -> None:
        assert sorted(self.store.expire(self.now_ns)) == sorted(self.reference.expire(self.now_ns))

    @invariant()
    def books_balance(self) -> None:
        for ledger in {a.ledger for a in self.store.accounts.values()}:
            rows = [self.store.balances[a.id] for a in self.store.accounts.values()
                    if a.ledger == ledger]  # fmt: skip
            dp, dpo, cp, cpo = (sum(column) for column in zip(*rows, strict=True))
            assert dpo == cpo, f"{ledger}: posted debits {dpo} != credits {cpo}"
            assert dp == cp, f"{ledger}: pending debits {dp} != credits {cp}"

    @invariant()
    def no_limit_is_broken(self) -> None:
        for account in self.store.accounts.values():
            dp, dpo, cp, cpo = row = self.store.balances[account.id]
            if account.flags & ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS:
                assert dp + dpo <= cpo, (account, row)
            if account.flags & ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS:
                assert cp + cpo <= dpo, (account, row)
            assert all(0 <= column <= MAX_BALANCE for column in row), (account, row)

    @invariant()
    def store_matches_reference(self) -> None:
        for account_id, balance in self.store.balances.items():
            assert balance == self.reference.balance(account_id), account_id
        assert self.store.records == self.reference.transfers
        statuses = {i: s.status for i, s in self.store.pendings.items()}
        assert statuses == self.reference.status

    @invariant()
    def balances_follow_from_transfers(self) -> None:
        assert self.store.balances_from_records() == self.store.balances


LedgerMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerBatchStateMachine = LedgerMachine.TestCase


# --- result-code precedence, by example --------------------------------------------------
def _state(*accounts: Account, balances: dict[str, Row] | None = None) -> BatchState:
    rows = balances or {}
    return BatchState(
        accounts={a.id: a for a in accounts},
        balances={a.id: Balance(*rows.get(a.id, (0, 0, 0, 0))) for a in accounts},
    )


LIMITED = Account("limited", "CNY", "test", "o1", ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
PLAIN = Account("plain", "CNY", "test", "o2")
DOLLARS = Account("dollars", "USD", "test", "o3")
CLOSED = Account("closed", "CNY", "test", "o4", closed=True)


def _code(transfer: Transfer, state: BatchState | None = None) -> str:
    the_state = state or _state(LIMITED, PLAIN, DOLLARS, CLOSED)
    return apply_batch([transfer], the_state, START_NS).results[0].result


def _earliest(*codes: str) -> str:
    return min(codes, key=TRANSFER_RESULT_CODES.index)


@pytest.mark.parametrize(
    ("transfer", "faults"),
    [
        (Transfer("t1", "nobody", "plain", 0, "CNY", "x"),
         ("debit_account_not_found", "amount_must_be_positive")),
        (Transfer("t1", "plain", "plain", -5, "CNY", "x"),
         ("accounts_must_be_different", "amount_must_be_positive")),
        (Transfer("t 1", "plain", "plain", 0, "", ""), ("id_invalid", "ledger_invalid")),
        (Transfer("t1", "plain", "nobody", 10**16, "CNY", "x", flags=1 << 9),
         ("reserved_flag", "amount_exceeds_maximum", "credit_account_not_found")),
        (Transfer("t1", "plain", "dollars", 5, "EUR", "x"),
         ("accounts_must_have_the_same_ledger", "transfer_must_have_the_same_ledger_as_accounts")),
        (Transfer("t1", "plain", "limited", 5, "CNY", "", timeout_s=3),
         ("timeout_reserved_for_pending_transfer", "code_invalid")),
        (Transfer("t1", "limited", "closed", 5, "CNY", "x"),
         ("credit_account_closed", "exceeds_credits")),
        (Transfer("t1", "limited", "plain", 5, "CNY", "x", pending_id="p"),
         ("pending_id_must_be_empty", "exceeds_credits")),
        (Transfer("t1", pending_id="t1", flags=POST_PENDING, timeout_s=1),
         ("pending_id_must_be_different", "timeout_reserved_for_pending_transfer")),
        (Transfer("t1", pending_id="nowhere", flags=POST_PENDING | PENDING, amount=0),
         ("flags_are_mutually_exclusive", "amount_must_be_positive", "pending_transfer_not_found")),
    ],
)  # fmt: skip
def test_the_earliest_code_in_precedence_is_reported(
    transfer: Transfer, faults: tuple[str, ...]
) -> None:
    """When a transfer has several faults, the one listed first in TRANSFER_RESULT_CODES wins."""
    assert _code(transfer) == _earliest(*faults)


def test_replay_conflict_reports_the_earliest_differing_field() -> None:
    """A replay differing in amount and code is `exists_with_different_amount`, not `…_code`."""
    state = _state(PLAIN, LIMITED)
    first = Transfer("t1", "plain", "limited", 10, "CNY", "sale")
    changed = copy_transfer(first, amount=11, code="fee", ledger="USD")
    results = apply_batch([first, changed, copy_transfer(first)], state, START_NS).results
    assert [r.result for r in results] == ["ok", "exists_with_different_amount", "exists"]


def test_post_of_a_resolved_hold_checks_its_amount_before_its_state() -> None:
    """Posting more than a posted hold reports the amount first, as the precedence lists."""
    state = _state(PLAIN, LIMITED)
    batch = [
        Transfer("hold", "plain", "limited", 10, "CNY", "hold", flags=PENDING),
        Transfer("post", pending_id="hold", flags=POST_PENDING),
        Transfer("again", pending_id="hold", amount=11, flags=POST_PENDING),
        Transfer("void", pending_id="hold", flags=VOID_PENDING),
    ]
    codes = [r.result for r in apply_batch(batch, state, START_NS).results]
    assert codes == ["ok", "ok", "exceeds_pending_transfer_amount",
                     "pending_transfer_already_posted"]  # fmt: skip


def test_overflow_is_reported_before_the_limit() -> None:
    """A transfer that would overflow a column and break a limit reports the overflow."""
    state = _state(LIMITED, PLAIN, balances={"plain": (0, 0, 0, MAX_BALANCE - 1)})
    assert _code(Transfer("t1", "limited", "plain", 2, "CNY", "x"), state) == (
        "overflows_credits_posted"
    )


def test_ids_and_ledgers_with_a_trailing_newline_are_invalid() -> None:
    """`$` in a pattern also matches before a final newline; ids and ledgers must not."""
    assert _code(Transfer("t1\n", "plain", "limited", 1, "CNY", "x")) == "id_invalid"
    assert _code(Transfer("t1", "plain\n", "limited", 1, "CNY", "x")) == "debit_account_id_invalid"
    assert _code(Transfer("t1", "plain", "limited", 1, "CNY\n", "x")) == "ledger_invalid"


def test_the_reference_check_tables_follow_the_documented_precedence() -> None:
    """The reference's own check order agrees with TRANSFER_RESULT_CODES, so it tests it."""
    reference = ReferenceLedger()
    blank = Transfer("t1")
    record = TransferRecord("t1", "a", "b", 1, "CNY", "c", 0, None, 0, None, 0)
    tables = [
        reference.single_phase_checks(blank),
        reference.resolve_checks(blank, 0),
        replay_checks(blank, record),
    ]
    for table in tables:
        positions = [TRANSFER_RESULT_CODES.index(code) for code, _ in table]
        assert positions == sorted(positions), [code for code, _ in table]


def test_a_hold_can_be_resolved_until_but_not_at_its_deadline() -> None:
    """A hold with a timeout is live one nanosecond before its deadline and expired at it."""
    state = _state(PLAIN, LIMITED)
    holds = [Transfer(f"h{i}", "plain", "limited", 5, "CNY", "hold", flags=PENDING, timeout_s=1)
             for i in range(2)]  # fmt: skip
    apply_batch(holds, state, START_NS)
    deadline_ns = START_NS + NS_PER_S  # h0 is due then; h1 (stamped 1 ns later) at + 1
    early = apply_batch(
        [Transfer("p0", pending_id="h0", flags=POST_PENDING)], state, deadline_ns - 1
    )
    late = apply_batch(
        [Transfer("p1", pending_id="h1", flags=POST_PENDING)], state, deadline_ns + 1
    )
    assert early.results[0].result == "ok"
    assert late.results[0].result == "pending_transfer_expired"


def test_a_member_of_a_refused_chain_can_be_sent_again_in_the_same_batch() -> None:
    """A chain's rollback forgets its transfers, so resending one alone is new, not `exists`."""
    state = _state(PLAIN, LIMITED)
    batch = [
        Transfer("t1", "plain", "limited", 5, "CNY", "x", flags=LINKED),
        Transfer("t2", "limited", "plain", 50, "CNY", "x"),  # exceeds_credits: fails the chain
        Transfer("t1", "plain", "limited", 5, "CNY", "x"),
    ]
    outcome = apply_batch(batch, state, START_NS)
    assert [r.result for r in outcome.results] == ["linked_event_failed", "exceeds_credits", "ok"]
    assert [r.id for r in outcome.records] == ["t1"]
    assert outcome.deltas == {"plain": (0, 5, 0, 0), "limited": (0, 0, 0, 5)}
