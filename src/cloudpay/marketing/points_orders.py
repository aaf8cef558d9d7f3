"""Points (积分) inside orders: paying part of an order with points, earning them when it is
paid, and what refunds undo — the money behind the points.

Coalition loyalty (联盟积分): points are a promise of money, and every merchant's points buy
at every merchant of the city at one rate (`CITY_POINTS_PER_YUAN_REDEEMED`). So the issuer
pays per point issued: when a paid order earns points, the merchant funds their fen value at
the redemption rate from its unsettled balance (`merchant_pending`, 待结算) into the
platform's `points_liability` account (`{order}:points-funding`), and settlement takes that
off what it pays the merchant. A merchant's rule can never make it fund more than the payer
paid: the points earned are capped at the value of the payment.

Spending: when an order opens, the points it uses are taken from the citizen's oldest lots and
held (a pending `PTS` transfer, `{order}:points-spent`), and the liability holds their fen
value for the merchant (a pending fen transfer, `{order}:points-value`) — both posted when the
payer pays, voided (the points back in their lots) when the order ends unpaid, like the
vouchers' subsidy. The value reaches the merchant's pending balance with the payment, so
settlement pays it like the subsidy (it is part of the order's `discount_amount`).

Refunds: a refund gives the refunded share of the points back (cumulative, rounded down; the
last refund gives back the rest) and their value goes from the merchant back to the
liability. A refunded share earns no points: the share of the points the order earned is
clawed back from its lot if the citizen still has them, and the fen the merchant funded for
the clawed-back points comes back to it. Points the citizen has already spent or lost to
expiry cannot be clawed back; their funding stays with the liability (it paid, or will pay as
breakage, for those points). Expiry (`points.expire_points`) moves the value of expired points
from the liability to the platform's income.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloudpay import ledger
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import InvalidRequest, PaymentRefused
from cloudpay.ledger import Purpose, Transfer
from cloudpay.marketing import points, points_repository
from cloudpay.marketing.errors import ClaimRefused
from cloudpay.marketing.points_model import (
    CITY_MAX_POINTS_SHARE_BP,
    CITY_POINTS_PER_YUAN_REDEEMED,
    POINTS_LEDGER,
    PointsTender,
    points_for_value,
    points_tender,
    points_value_fen,
    refunded_share,
    take_first_in_first_out,
)

Takes = tuple[tuple[str, int], ...]  # (lot id, points taken from it), oldest lot first
MAX_POINTS_PER_ORDER = 10**9


@dataclass(frozen=True)
class PointsHold:
    """Points an open order uses: how many, their fen value and the lots they came from."""

    points: int
    value_fen: int
    takes: Takes


def points_limit(amount_fen: int) -> PointsTender:
    """The most points a payment of `amount_fen` can take, whatever the citizen holds."""
    return points_tender(
        amount_fen, MAX_POINTS_PER_ORDER, points_per_yuan_redeemed=CITY_POINTS_PER_YUAN_REDEEMED,
        max_share_bp=CITY_MAX_POINTS_SHARE_BP,
    )  # fmt: skip


def tender_for(
    uow: UnitOfWork, *, citizen_id: str, points_wanted: int, amount_fen: int
) -> PointsTender:
    """Check an order's `points`: at most the citizen's live points (409
    `points_insufficient`) and at most what this payment can take (409
    `points_exceed_limit`). Writes nothing."""
    held = sum(lot.remaining for lot in points.live_lots(uow, citizen_id))
    if points_wanted > held:
        raise ClaimRefused(f"the citizen holds {held} live points", code="points_insufficient",
                           param="points")  # fmt: skip
    limit = points_limit(amount_fen)
    if points_wanted > limit.points:
        raise ClaimRefused(
            f"this payment can take at most {limit.points} points",
            code="points_exceed_limit", param="points", details={"max_points": limit.points},
        )  # fmt: skip
    tender = points_tender(
        amount_fen, points_wanted, points_per_yuan_redeemed=CITY_POINTS_PER_YUAN_REDEEMED,
        max_share_bp=CITY_MAX_POINTS_SHARE_BP,
    )  # fmt: skip
    if tender.points == 0:
        raise InvalidRequest("these points are worth less than one fen",
                             code="parameter_invalid", param="points")  # fmt: skip
    return tender


def _accounts(uow: UnitOfWork, merchant_id: str) -> tuple[str, str]:
    liability = ledger.open_chart_account(uow, Purpose.POINTS_LIABILITY, ledger.PLATFORM, "CNY")
    pending = ledger.open_chart_account(
        uow, Purpose.MERCHANT_PENDING, ledger.merchant_owner(merchant_id), "CNY"
    )
    return liability.id, pending.id


def _redeemed_account(uow: UnitOfWork) -> str:
    return points.open_platform_account(uow, "points_redeemed")


def _book(uow: UnitOfWork, transfer: Transfer, *, merchant_pays: bool = False) -> None:
    result = ledger.create_transfer(uow, transfer)
    if merchant_pays and result.result == "exceeds_credits":
        raise PaymentRefused(
            "the merchant's unsettled balance does not cover the points' value",
            code="insufficient_merchant_balance",
        )
    if not result.ok:  # lots and balances agree: a refusal means broken books
        raise RuntimeError(f"points transfer {transfer.id} refused: {result.result}")


def hold_points(
    uow: UnitOfWork, *, order_id: str, citizen_id: str, merchant_id: str, tender: PointsTender
) -> PointsHold:
    """Take the tender's points from the oldest lots and hold them and their value for the
    order (in the order's transaction)."""
    lots = points.live_lots(uow, citizen_id)
    takes = tuple(take_first_in_first_out(lots, tender.points))
    for lot_id, taken in takes:
        if not points_repository.take_from_lot(uow.connection, lot_id, taken):
            raise points.ConcurrentSpend
    citizen_account = points.citizen_account(uow, citizen_id)
    _book(uow, Transfer(f"{order_id}:points-spent", citizen_account, _redeemed_account(uow),
                        tender.points, POINTS_LEDGER, "marketing.points.spend",
                        flags=ledger.PENDING, user_data=order_id))  # fmt: skip
    liability, pending = _accounts(uow, merchant_id)
    _book(uow, Transfer(f"{order_id}:points-value", liability, pending, tender.covered_fen,
                        "CNY", "marketing.points.value", flags=ledger.PENDING,
                        user_data=order_id))  # fmt: skip
    return PointsHold(tender.points, tender.covered_fen, takes)


def _resolve(uow: UnitOfWork, order_id: str, *, post: bool) -> None:
    suffix, flags = ("post", ledger.POST_PENDING) if post else ("void", ledger.VOID_PENDING)
    for held in (f"{order_id}:points-spent", f"{order_id}:points-value"):
        _book(uow, Transfer(f"{held}:{suffix}", pending_id=held, flags=flags, user_data=held))


def confirm_points(uow: UnitOfWork, *, order_id: str) -> None:
    """The payer paid: the points are spent and their value is the merchant's (待结算)."""
    _resolve(uow, order_id, post=True)


def release_points(uow: UnitOfWork, *, order_id: str, takes: Takes) -> None:
    """The order ended unpaid: the holds are voided and the points go back to their lots."""
    _resolve(uow, order_id, post=False)
    for lot_id, taken in takes:
        if not points_repository.give_back_to_lot(uow.connection, lot_id, taken):
            raise RuntimeError(f"lot {lot_id} cannot take {taken} points back")


def _allocated(takes: Takes, total: int) -> dict[str, int]:
    """`total` points given back spread over the lots, the newest taken first."""
    allocation: dict[str, int] = {}
    for lot_id, taken in reversed(takes):
        allocation[lot_id] = min(taken, total)
        total -= allocation[lot_id]
    return allocation


@dataclass(frozen=True)
class RefundShare:
    """A refund of an order: its figures in the payer's fen, this refund included."""

    refund_id: str
    order_id: str
    citizen_id: str
    merchant_id: str
    amount_fen: int
    refunded_before_fen: int
    refunded_after_fen: int

    def share(self, total: int) -> int:
        """What this refund adds to the refunded share of `total`."""
        after = refunded_share(
            total, refunded_fen=self.refunded_after_fen, amount_fen=self.amount_fen
        )
        before = refunded_share(
            total, refunded_fen=self.refunded_before_fen, amount_fen=self.amount_fen
        )
        return after - before


def give_points_back(uow: UnitOfWork, refund: RefundShare, hold: PointsHold) -> int:
    """The refunded share of the points goes back to the citizen (their lots) and of their
    value from the merchant back to the liability. The fen given back."""
    points_back, value_back = refund.share(hold.points), refund.share(hold.value_fen)
    if points_back:
        citizen_account = points.citizen_account(uow, refund.citizen_id)
        _book(uow, Transfer(f"{refund.refund_id}:points-back", _redeemed_account(uow),
                            citizen_account, points_back, POINTS_LEDGER,
                            "marketing.points.refund", user_data=refund.order_id))  # fmt: skip
        _return_to_lots(uow, hold.takes, refund)
    if value_back:
        liability, pending = _accounts(uow, refund.merchant_id)
        _book(uow, Transfer(f"{refund.refund_id}:points-value-back", pending, liability,
                            value_back, "CNY", "marketing.points.value_back",
                            user_data=refund.order_id), merchant_pays=True)  # fmt: skip
    return value_back


def _return_to_lots(uow: UnitOfWork, takes: Takes, refund: RefundShare) -> None:
    """The points a refund gives back return to the lots they came from, newest first."""
    total = sum(taken for _, taken in takes)
    back_after = refunded_share(
        total, refunded_fen=refund.refunded_after_fen, amount_fen=refund.amount_fen
    )
    after, before = (
        _allocated(takes, back_after),
        _allocated(takes, back_after - refund.share(total)),
    )
    for lot_id, given in after.items():
        back = given - before[lot_id]
        if back and not points_repository.give_back_to_lot(uow.connection, lot_id, back):
            raise RuntimeError(f"lot {lot_id} cannot take {back} points back")


def points_value_due_back(hold: PointsHold, refund: RefundShare) -> int:
    """The fen `give_points_back` would take from the merchant; writes nothing."""
    return refund.share(hold.value_fen)


@dataclass(frozen=True)
class Earned:
    points: int
    funded_fen: int


def earn_for_order(
    uow: UnitOfWork, *, order_id: str, citizen_id: str, merchant_id: str, paid_fen: int
) -> Earned:
    """A paid order earns points by the merchant's rule on what the payer paid, and the
    merchant funds their value into the liability (`{order}:points-funding`)."""
    if points.find_earn_rule(uow, merchant_id) is None:
        return Earned(0, 0)
    lot = points.earn_points(
        uow, citizen_id=citizen_id, merchant_id=merchant_id, order_id=order_id,
        amount_fen=paid_fen, max_points=points_for_value(paid_fen),
    )  # fmt: skip
    if lot is None:
        return Earned(0, 0)
    funded = points_value_fen(lot.points)
    if funded:
        liability, pending = _accounts(uow, merchant_id)
        _book(uow, Transfer(f"{order_id}:points-funding", pending, liability, funded, "CNY",
                            "marketing.points.funding", user_data=order_id),
              merchant_pays=True)  # fmt: skip
    return Earned(lot.points, funded)


def claw_back(uow: UnitOfWork, refund: RefundShare, *, clawed_before: int) -> Earned:
    """The refunded share of the points the order earned leaves the citizen's lot if still
    there (live); the merchant gets the funding of what was clawed back."""
    lot = points_repository.lot_for_order(uow.connection, refund.order_id)
    if lot is None or lot.expires_at <= uow.clock.now():
        return Earned(0, 0)
    due = refunded_share(lot.points, refunded_fen=refund.refunded_after_fen,
                         amount_fen=refund.amount_fen) - clawed_before  # fmt: skip
    taken = min(max(due, 0), lot.remaining)
    if taken == 0 or not points_repository.take_from_lot(uow.connection, lot.id, taken):
        return Earned(0, 0)
    issued = points.open_merchant_issued_account(uow, lot.merchant_id)
    _book(uow, Transfer(f"{refund.refund_id}:points-clawback",
                        points.citizen_account(uow, refund.citizen_id), issued, taken,
                        POINTS_LEDGER, "marketing.points.clawback",
                        user_data=refund.order_id))  # fmt: skip
    funding_back = points_value_fen(clawed_before + taken) - points_value_fen(clawed_before)
    if funding_back:
        liability, pending = _accounts(uow, refund.merchant_id)
        _book(uow, Transfer(f"{refund.refund_id}:points-funding-back", liability, pending,
                            funding_back, "CNY", "marketing.points.funding_back",
                            user_data=refund.order_id))  # fmt: skip
    return Earned(taken, funding_back)


def takes_of(raw: Sequence[Sequence[object]]) -> Takes:
    """Takes read back from their JSON form ([[lot id, points], …])."""
    return tuple((str(lot_id), int(str(taken))) for lot_id, taken in raw)
