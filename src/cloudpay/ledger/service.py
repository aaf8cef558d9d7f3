"""Ledger use cases. Each takes the unit of work; none commits (the boundary does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from cloudpay.db.retry import RetryableConflict
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.ledger import opening, repository
from cloudpay.ledger.batch import BatchOutcome, BatchState, apply_batch
from cloudpay.ledger.chart import CHART, Purpose
from cloudpay.ledger.model import (
    _BALANCING,
    _RESOLVING,
    ACCOUNT_FLAG_NAMES,
    EXISTS,
    ID_PATTERN,
    LEDGER_PATTERN,
    MAX_BALANCE_SHARDS,
    MAX_BATCH_SIZE,
    MAX_CODE_LENGTH,
    MAX_USER_DATA_LENGTH,
    OK,
    STATUS_EXPIRED,
    Account,
    Balance,
    PendingState,
    Transfer,
    TransferRecord,
    TransferResult,
    account_flags_conflict,
)

MAX_EXPIRY_BATCH = 1_000
MAX_PAGE = 101  # 100 shown + 1 to know whether there is more


@dataclass(frozen=True)
class NewAccount:
    owner: str
    code: str
    ledger: str
    flags: int = 0
    balance_shards: int = 1
    user_data: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class AccountResult:
    index: int
    id: str
    result: str

    @property
    def ok(self) -> bool:
        return self.result in (OK, EXISTS)


@dataclass(frozen=True)
class AccountWithBalance:
    account: Account
    balance: Balance


# --- accounts ---------------------------------------------------------------------------
def create_accounts(uow: UnitOfWork, accounts: Sequence[NewAccount]) -> list[AccountResult]:
    """Open accounts; an id already used with the same fields is `exists`, not an error."""
    _check_batch_size(len(accounts))
    ids = [a.id or new_id("acc") for a in accounts]
    existing = repository.load_accounts(uow.connection, ids)
    # (owner, code, ledger) is unique: an insert that broke it would fail, be retried as a
    # race, and fail again, so a second id for the same account is refused here instead.
    by_key = repository.find_accounts_by_owner(uow.connection, {a.owner for a in accounts})
    now_ns = uow.clock.now_ns()
    results: list[AccountResult] = []
    to_insert: list[Account] = []
    for index, (new, account_id) in enumerate(zip(accounts, ids, strict=True)):
        code = _account_refusal(new, account_id)
        candidate = Account(
            account_id, new.ledger, new.code, new.owner, new.flags, False,
            new.balance_shards, new.user_data, now_ns + index,
        )  # fmt: skip
        if code is None:
            code = _compare_account(candidate, existing.get(account_id))
        key = (new.owner, new.code, new.ledger)
        if code == OK and key in by_key and by_key[key].id != account_id:
            code = "exists_with_different_id"
        if code == OK:
            to_insert.append(candidate)
            existing[account_id] = candidate
            by_key[key] = candidate
        results.append(AccountResult(index, account_id, code))
    try:
        repository.insert_accounts(uow.connection, to_insert)
    except IntegrityError as error:
        raise ConcurrentInsertError from error  # same race, same cure: run again
    return results


def _account_refusal(new: NewAccount, account_id: str) -> str | None:
    if not ID_PATTERN.fullmatch(account_id):
        return "id_invalid"
    if account_flags_conflict(new.flags) or new.flags & ~sum(ACCOUNT_FLAG_NAMES.values()):
        return "flags_are_mutually_exclusive"
    if not LEDGER_PATTERN.fullmatch(new.ledger):
        return "ledger_invalid"
    if not new.code or len(new.code) > MAX_CODE_LENGTH:
        return "code_invalid"
    if not new.owner or len(new.owner) > 96:
        return "owner_invalid"
    if new.user_data is not None and len(new.user_data) > MAX_USER_DATA_LENGTH:
        return "user_data_too_long"
    if not 1 <= new.balance_shards <= MAX_BALANCE_SHARDS:
        return "balance_shards_out_of_range"
    if new.balance_shards > 1 and new.flags:
        # A limit is checked against one locked total; shards would let writers overdraw.
        return "sharded_account_must_not_have_limits"
    return None


def _compare_account(candidate: Account, existing: Account | None) -> str:
    if existing is None:
        return OK
    for field in ("flags", "ledger", "code", "owner", "user_data"):
        if getattr(candidate, field) != getattr(existing, field):
            return f"exists_with_different_{field}"
    return EXISTS


def open_account(uow: UnitOfWork, new: NewAccount) -> Account:
    """The account of `owner` for `code` in `ledger`, opened on first use (chart helpers)."""
    found = repository.find_account(
        uow.connection, owner=new.owner, code=new.code, ledger=new.ledger
    )
    if found is not None:
        return found
    [result] = create_accounts(uow, [new])
    if result.result == "exists_with_different_id":
        raise ConcurrentInsertError  # opened by another transaction since we looked: run again
    if not result.ok:
        raise InvalidRequest(f"cannot open account: {result.result}", code=result.result)
    return repository.load_accounts(uow.connection, [result.id])[result.id]


def open_chart_account(
    uow: UnitOfWork, purpose: Purpose, owner: str, ledger: str = "CNY"
) -> Account:
    """The owner's account for `purpose`, opened with the chart's flags on first use."""
    rule = CHART[purpose]
    new = NewAccount(
        owner=owner, code=purpose.value, ledger=ledger, flags=rule.flags, balance_shards=rule.shards
    )
    return open_account(uow, new)


def open_accounts_by_key(
    uow: UnitOfWork, accounts: Sequence[NewAccount]
) -> dict[tuple[str, str, str], Account]:
    """Each account's (owner, code, ledger) → the account, opened on first use: one query
    for those that exist, one multi-row insert for the missing (race-safe: an account another
    transaction opened meanwhile is read back, not refused), whatever the count."""
    wanted = {(a.owner, a.code, a.ledger): a for a in accounts}
    found = opening.find_accounts_by_keys(uow.connection, list(wanted))
    now_ns = uow.clock.now_ns()
    missing: list[Account] = []
    for index, (key, new) in enumerate(sorted(wanted.items())):
        if key in found:
            continue
        account_id = new.id or new_id("acc")
        refusal = _account_refusal(new, account_id)
        if refusal is not None:
            raise InvalidRequest(f"cannot open account {key}: {refusal}", code=refusal)
        missing.append(Account(
            account_id, new.ledger, new.code, new.owner, new.flags, False,
            new.balance_shards, new.user_data, now_ns + index,
        ))  # fmt: skip
    inserted = opening.insert_missing_accounts(uow.connection, missing)
    found.update({(a.owner, a.code, a.ledger): a for a in missing if a.id in inserted})
    lost = [(a.owner, a.code, a.ledger) for a in missing if a.id not in inserted]
    if lost:
        found.update(opening.find_accounts_by_keys(uow.connection, lost))
    unseen = [a.id for a in missing if (a.owner, a.code, a.ledger) not in found]
    if unseen and repository.load_accounts(uow.connection, unseen):
        # The id is taken by an account with another key: a caller's stable ids collide.
        refusal = "exists_with_different_id"
        raise InvalidRequest(f"cannot open account: {refusal}", code=refusal)
    if unseen:
        raise ConcurrentInsertError  # committed after our snapshot began: run again
    return found


def open_chart_accounts(
    uow: UnitOfWork, wanted: Sequence[tuple[Purpose, str, str]]
) -> dict[tuple[Purpose, str, str], Account]:
    """(purpose, owner, currency) → the owner's account for the purpose, each opened with the
    chart's flags on first use; a fixed number of statements however many are asked."""
    news = {
        (purpose, owner, currency): NewAccount(
            owner, purpose.value, currency, CHART[purpose].flags, CHART[purpose].shards
        )
        for purpose, owner, currency in wanted
    }
    by_key = open_accounts_by_key(uow, list(news.values()))
    return {asked: by_key[(n.owner, n.code, n.ledger)] for asked, n in news.items()}


def get_account(uow: UnitOfWork, account_id: str) -> AccountWithBalance:
    accounts = repository.load_accounts(uow.connection, [account_id])
    if account_id not in accounts:
        raise NotFound(f"no ledger account {account_id}", param="account_id")
    balance = repository.load_balances(uow.connection, [account_id])[account_id]
    return AccountWithBalance(accounts[account_id], balance)


def lookup_accounts(uow: UnitOfWork, account_ids: Sequence[str]) -> list[AccountWithBalance]:
    accounts = repository.load_accounts(uow.connection, account_ids)
    balances = repository.load_balances(uow.connection, accounts)
    return [AccountWithBalance(accounts[i], balances[i]) for i in account_ids if i in accounts]


def list_accounts(
    uow: UnitOfWork, *, owner: str | None = None, limit: int = 20, starting_after: str | None = None
) -> list[AccountWithBalance]:
    accounts = repository.list_accounts(
        uow.connection, owner=owner, limit=min(limit, MAX_PAGE), starting_after=starting_after
    )
    balances = repository.load_balances(uow.connection, [a.id for a in accounts])
    return [AccountWithBalance(a, balances[a.id]) for a in accounts]


def set_account_closed(uow: UnitOfWork, account_id: str, *, closed: bool) -> AccountWithBalance:
    get_account(uow, account_id)
    repository.set_account_closed(uow.connection, account_id, closed)
    return get_account(uow, account_id)


# --- transfers --------------------------------------------------------------------------
def create_transfers(uow: UnitOfWork, transfers: Sequence[Transfer]) -> list[TransferResult]:
    """Apply a batch: each transfer gets a result; linked chains are all-or-nothing."""
    _check_batch_size(len(transfers))
    if not transfers:
        return []
    batch = list(transfers)
    state, locked = _load_batch_state(uow, batch)
    outcome = apply_batch(batch, state, uow.clock.now_ns())
    _persist(uow, outcome, state, locked)
    return outcome.results


def create_transfer(uow: UnitOfWork, transfer: Transfer) -> TransferResult:
    return create_transfers(uow, [transfer])[0]


def _check_batch_size(size: int) -> None:
    if size > MAX_BATCH_SIZE:
        raise InvalidRequest(
            f"a batch holds at most {MAX_BATCH_SIZE} items, got {size}",
            code="batch_too_large",
        )


def _load_batch_state(uow: UnitOfWork, batch: list[Transfer]) -> tuple[BatchState, set[str]]:
    """What the batch reads, and the accounts whose balances this transaction has locked."""
    connection = uow.connection
    pending_ids = {t.pending_id for t in batch if t.pending_id and t.flags & _RESOLVING}
    pendings = repository.load_pendings(connection, pending_ids, lock=True) if pending_ids else {}
    account_ids = {t.debit_account_id for t in batch} | {t.credit_account_id for t in batch}
    for state in pendings.values():
        account_ids.add(state.transfer.debit_account_id)
        account_ids.add(state.transfer.credit_account_id)
    account_ids.discard("")
    # Locked with the accounts that have a limit: the balances a balancing transfer reads.
    balancing = {i for t in batch if t.flags & _BALANCING for i in _sides(t)}
    accounts, balances, locked = repository.load_batch_accounts(
        connection, account_ids, also_lock=balancing
    )
    existing = repository.load_transfers(connection, [t.id for t in batch if isinstance(t.id, str)])
    referenced = repository.load_transfers(connection, pending_ids - set(pendings))
    return BatchState(accounts, balances, existing, referenced, pendings), locked


def _sides(t: Transfer) -> tuple[str, str]:
    return t.debit_account_id, t.credit_account_id


def _persist(uow: UnitOfWork, outcome: BatchOutcome, state: BatchState, locked: set[str]) -> None:
    connection = uow.connection
    try:
        repository.insert_transfers(connection, outcome.rows)
    except IntegrityError as error:
        raise ConcurrentInsertError from error
    repository.insert_pendings(connection, outcome.new_pendings)
    repository.update_pendings(connection, outcome.resolved_pendings)
    repository.apply_deltas(connection, outcome.deltas, state.accounts, locked=locked)


class ConcurrentInsertError(RetryableConflict):
    """Another transaction committed an account or transfer with one of our ids after we looked.

    The boundary retries the whole batch; the retry sees the committed transfer as `exists`.
    """


def lookup_transfers(uow: UnitOfWork, transfer_ids: Sequence[str]) -> list[TransferRecord]:
    found = repository.load_transfers(uow.connection, transfer_ids)
    return [found[i] for i in transfer_ids if i in found]


def get_transfer(uow: UnitOfWork, transfer_id: str) -> TransferRecord:
    found = lookup_transfers(uow, [transfer_id])
    if not found:
        raise NotFound(f"no transfer {transfer_id}", param="transfer_id")
    return found[0]


def get_pending_state(uow: UnitOfWork, transfer_id: str) -> PendingState | None:
    return repository.load_pendings(uow.connection, [transfer_id], lock=False).get(transfer_id)


def account_statement(
    uow: UnitOfWork, account_id: str, *, limit: int = 20, starting_after: str | None = None
) -> list[TransferRecord]:
    get_account(uow, account_id)
    cursor = None
    if starting_after is not None:
        cursor = repository.load_transfers(uow.connection, [starting_after]).get(starting_after)
        if cursor is None:
            raise InvalidRequest("unknown cursor", code="cursor_invalid", param="starting_after")
    return repository.account_transfers(
        uow.connection, account_id, limit=min(limit, MAX_PAGE), before=cursor
    )


def balance_as_of(uow: UnitOfWork, account_id: str, as_of_ns: int) -> Balance:
    get_account(uow, account_id)
    return repository.balance_as_of(uow.connection, account_id, as_of_ns)


# --- jobs -------------------------------------------------------------------------------
def expire_pending_transfers(uow: UnitOfWork, *, limit: int = MAX_EXPIRY_BATCH) -> int:
    """Release the reservations of pending transfers whose timeout has passed."""
    now_ns = uow.clock.now_ns()
    due = repository.due_pending_ids(uow.connection, now_ns=now_ns, limit=limit)
    pendings = repository.load_pendings(uow.connection, due, lock=True)
    deltas: dict[str, tuple[int, int, int, int]] = {}
    expired: list[PendingState] = []
    for state in pendings.values():
        if state.status != "pending":
            continue  # resolved by a concurrent post/void since we listed it
        t = state.transfer
        _add(deltas, t.debit_account_id, (-t.amount, 0, 0, 0))
        _add(deltas, t.credit_account_id, (0, 0, -t.amount, 0))
        expired.append(PendingState(t, STATUS_EXPIRED, state.expires_at_ns, None))
    accounts = repository.load_accounts(uow.connection, deltas)
    repository.update_pendings(uow.connection, expired)
    repository.apply_deltas(uow.connection, deltas, accounts)
    return len(expired)


def _add(deltas: dict[str, tuple[int, int, int, int]], key: str, delta: tuple[int, ...]) -> None:
    current = deltas.get(key, (0, 0, 0, 0))
    deltas[key] = (
        current[0] + delta[0],
        current[1] + delta[1],
        current[2] + delta[2],
        current[3] + delta[3],
    )
