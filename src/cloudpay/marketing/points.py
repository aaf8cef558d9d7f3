"""Points (积分) use cases: merchants' earn rules, earning on a payment, spending first in
first out, and the expiry job.

Every movement is a transfer on the `PTS` ledger (unit: one point), apart from money:
a merchant's `points_issued` account (no limit: it shows the points it has given out) →
the citizen's `points` account (cannot go negative); spending goes to the platform's
`points_redeemed` account and expiry to `points_expired`. Transfer ids come from the order,
the spend reference or the lot, so a retry replays instead of moving points twice.
"""

from __future__ import annotations

from datetime import timedelta

from cloudpay import citizen, ledger, merchants
from cloudpay.db.retry import RetryableConflict
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.ids import new_id
from cloudpay.ledger import NewAccount, Purpose, Transfer
from cloudpay.marketing import points_repository as repository
from cloudpay.marketing.errors import ClaimRefused, PointsRuleNotFound
from cloudpay.marketing.points_model import (
    POINTS_LEDGER,
    EarnRule,
    PointsLot,
    check_earn_rule,
    points_earned,
    points_value_fen,
    take_first_in_first_out,
)

MAX_EXPIRED_LOTS_PER_RUN = 500
CNY = "CNY"  # points are worth fen at the city's rate: their money side is in yuan


class ConcurrentSpend(RetryableConflict):
    """Another spend or expiry took from the same lot since we read it: run again."""


def citizen_points_account_id(citizen_id: str) -> str:
    """The citizen's points account has an id derived from theirs: readable without opening."""
    return f"pts:{citizen_id}"


def _open(
    uow: UnitOfWork, owner: str, code: str, *, limited: bool, account_id: str | None = None
) -> str:
    flags = ledger.ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS if limited else 0
    new = NewAccount(owner=owner, code=code, ledger=POINTS_LEDGER, flags=flags, id=account_id)
    return ledger.open_account(uow, new).id


def citizen_account(uow: UnitOfWork, citizen_id: str) -> str:
    """The citizen's points account (opened on first use; cannot go negative)."""
    return _open(
        uow, ledger.citizen_owner(citizen_id), "points", limited=True,
        account_id=citizen_points_account_id(citizen_id),
    )  # fmt: skip


def open_platform_account(uow: UnitOfWork, code: str) -> str:
    """A platform points account (`points_redeemed`, `points_expired`), no limit."""
    return _open(uow, ledger.PLATFORM, code, limited=False)


def open_merchant_issued_account(uow: UnitOfWork, merchant_id: str) -> str:
    """The merchant's `points_issued` account: the points it has given out, no limit."""
    return _open(uow, ledger.merchant_owner(merchant_id), "points_issued", limited=False)


def set_earn_rule(uow: UnitOfWork, rule: EarnRule) -> EarnRule:
    """Replace the merchant's earn rule (payments from now on earn by it)."""
    merchants.get_merchant(uow, rule.merchant_id)
    check_earn_rule(rule)
    repository.save_rule(uow.connection, rule, uow.clock.now())
    return rule


def find_earn_rule(uow: UnitOfWork, merchant_id: str) -> EarnRule | None:
    """The merchant's earn rule, None when it gives no points."""
    return repository.load_rule(uow.connection, merchant_id)


def get_earn_rule(uow: UnitOfWork, merchant_id: str) -> EarnRule:
    rule = repository.load_rule(uow.connection, merchant_id)
    if rule is None:
        raise PointsRuleNotFound(f"merchant {merchant_id} gives no points", param="merchant_id")
    return rule


def earn_points(
    uow: UnitOfWork, *, citizen_id: str, merchant_id: str, order_id: str, amount_fen: int,
    max_points: int | None = None,
) -> PointsLot | None:  # fmt: skip
    """Points for a paid order by the merchant's rule (at most `max_points`); the same order
    earns once (a replay answers the first lot). None when the payment earns no points."""
    rule = get_earn_rule(uow, merchant_id)
    citizen.get_citizen(uow, citizen_id)
    existing = repository.lot_for_order(uow.connection, order_id)
    if existing is not None:
        return existing
    now = uow.clock.now()
    points = points_earned(rule, amount_fen, now)
    if max_points is not None:
        points = min(points, max_points)
    if points <= 0:
        return None
    issued = open_merchant_issued_account(uow, merchant_id)
    transfer = Transfer(
        f"{order_id}:points", issued, citizen_account(uow, citizen_id), points, POINTS_LEDGER,
        "marketing.points.earn", user_data=citizen_id,
    )  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if not result.ok:
        raise RuntimeError(f"points for {order_id} refused by the ledger: {result.result}")
    lot = PointsLot(
        new_id("pts"), citizen_id, merchant_id, points, points, now,
        now + timedelta(days=rule.validity_days),
    )  # fmt: skip
    repository.insert_lot(uow.connection, lot, order_id)
    return lot


def points_balance(uow: UnitOfWork, citizen_id: str) -> int:
    """The citizen's spendable points, as the ledger holds them (0 before the first earning)."""
    citizen.get_citizen(uow, citizen_id)
    found = ledger.lookup_accounts(uow, [citizen_points_account_id(citizen_id)])
    if not found:
        return 0
    balance = found[0].balance
    return balance.net_credit - balance.debits_pending  # points open orders hold are not free


def live_lots(uow: UnitOfWork, citizen_id: str) -> list[PointsLot]:
    return repository.live_lots(uow.connection, citizen_id, now=uow.clock.now())


def spend_points(uow: UnitOfWork, *, citizen_id: str, points: int, reference: str) -> int:
    """Spend `points` (e.g. the `PointsTender` of a payment, `reference` its order id) from the
    oldest live lots first. A retry with the same reference replays; returns the points."""
    transfer_id = f"{reference}:points-spent"
    if ledger.lookup_transfers(uow, [transfer_id]):
        return points
    lots = repository.live_lots(uow.connection, citizen_id, now=uow.clock.now())
    if points < 1 or points > sum(lot.remaining for lot in lots):
        raise ClaimRefused("the citizen does not hold that many live points",
                           code="points_insufficient")  # fmt: skip
    for lot_id, taken in take_first_in_first_out(lots, points):
        if not repository.take_from_lot(uow.connection, lot_id, taken):
            raise ConcurrentSpend
    redeemed = open_platform_account(uow, "points_redeemed")
    _move(uow, Transfer(transfer_id, citizen_account(uow, citizen_id), redeemed, points,
                        POINTS_LEDGER, "marketing.points.spend", user_data=reference))  # fmt: skip
    return points


def expire_points(uow: UnitOfWork, *, limit: int = MAX_EXPIRED_LOTS_PER_RUN) -> int:
    """The scheduled job: what is left of every lot past its expiry leaves the citizen's
    balance, oldest lots first (a bounded batch); the number of points expired.

    Breakage (沉淀): the fen the issuers funded for those points (their value at the city's
    redemption rate) will never be spent, so the same job moves it from the points liability
    to the platform's income, one transfer per lot (`{lot}:expiry:breakage`)."""
    expired_account = open_platform_account(uow, "points_expired")
    total = 0
    for lot in repository.expired_lots(uow.connection, now=uow.clock.now(), limit=limit):
        if not repository.take_from_lot(uow.connection, lot.id, lot.remaining):
            raise ConcurrentSpend
        _move(uow, Transfer(f"{lot.id}:expiry", citizen_account(uow, lot.citizen_id),
                            expired_account, lot.remaining, POINTS_LEDGER,
                            "marketing.points.expire", user_data=lot.citizen_id))  # fmt: skip
        _book_breakage(uow, lot)
        total += lot.remaining
    return total


def _book_breakage(uow: UnitOfWork, lot: PointsLot) -> None:
    value_fen = points_value_fen(lot.remaining)
    if value_fen == 0:
        return
    liability = ledger.open_chart_account(uow, Purpose.POINTS_LIABILITY, ledger.PLATFORM, CNY)
    income = ledger.open_chart_account(uow, Purpose.POINTS_BREAKAGE, ledger.PLATFORM, CNY)
    _move(uow, Transfer(f"{lot.id}:expiry:breakage", liability.id, income.id, value_fen, CNY,
                        "marketing.points.breakage", user_data=lot.id))  # fmt: skip


def _move(uow: UnitOfWork, transfer: Transfer) -> None:
    result = ledger.create_transfer(uow, transfer)
    if not result.ok:  # the lots and the balance agree: a refusal means broken books
        raise RuntimeError(f"points transfer {transfer.id} refused: {result.result}")
