"""Vouchers (消费券) and coupons (优惠券) redeemed inside an order: payments' glue to the
citizen and marketing contexts.

The merchant's `amount` is the price. When the payer is known — `citizen_id`, or the wallet's
`payer_id` (WeChat openid, Alipay user id) linked to a citizen — the best usable instruments
(or the ones the payer chose, `claim_ids`) take a discount off it in the order's own
transaction, and the order's `amount` becomes what the payer pays through the channel. A
payment code (micropay) names no payer, so it gets no discount.

Money: the subsidy is held on the campaign's budget when the order opens (a pending ledger
transfer), posted to the merchant's pending account when the payer pays, voided when the order
closes, expires or fails unpaid. A refund is in the payer's fen; it gives back the refunded
share of the subsidy (cumulative, rounded down), and a full refund gives all of it back and
restores the voucher while its campaign runs (marketing/redemption.py).

Points (积分): `points` in the request spend the identified payer's points on what is left
after vouchers and coupons, at the city's rate and within its cap; the order shows them as a
`points` line of `discounts` and the channel is asked for the rest. They are held with their
value when the order opens, spent and paid to the merchant when it is paid, given back when
it ends unpaid, and in proportion to refunds. A paid order of an identified payer earns the
merchant's points, which the merchant funds; refunds claw back the refunded share
(marketing/points_orders.py says where every fen goes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from cloudpay import citizen, ledger, marketing, merchants
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import InvalidRequest, PaymentRefused
from cloudpay.ledger import Purpose
from cloudpay.payments import repository
from cloudpay.payments.model import OrderStatus

if TYPE_CHECKING:
    from cloudpay.payments.repository import OrderRow

AUTO: Final = "auto"  # the best instruments of the identified payer
NONE: Final = "none"  # the merchant takes no discount on this order
MODES: Final = frozenset({AUTO, NONE})
POINTS: Final = "points"  # the kind of the discount line that points paid
UNPAID_ENDS: Final = frozenset({OrderStatus.CLOSED, OrderStatus.EXPIRED, OrderStatus.FAILED})
# GB 32100-2015: characters 3-8 of the unified social credit code are the administrative
# division (district) of the registering authority — where the merchant is registered.
DISTRICT_SLICE: Final = slice(2, 8)


@dataclass(frozen=True)
class DiscountAsk:
    """What the order request says about discounts."""

    citizen_id: str | None
    payer_id: str | None
    claim_ids: tuple[str, ...] | None
    mode: str
    channel: str  # the wallet the payer pays with: whose payer ids `payer_id` is
    micropay: bool
    points: int | None = None  # 积分 the payer puts towards the order


@dataclass(frozen=True)
class Applied:
    """The order's price, the discount taken off it and its breakdown."""

    gross_fen: int
    lines: tuple[dict[str, Any], ...] = ()
    citizen_id: str | None = None  # the identified payer: the paid order earns their points
    points: marketing.PointsHold | None = None

    @property
    def discount_fen(self) -> int:
        return sum(int(line["amount"]) for line in self.lines)

    @property
    def payer_fen(self) -> int:
        return self.gross_fen - self.discount_fen

    def order_columns(self) -> dict[str, Any]:
        """The orders columns: `amount` is what the channel is asked for."""
        payer: dict[str, Any] = {} if self.citizen_id is None else {"citizen_id": self.citizen_id}
        if self.points is not None:
            payer["points_used"] = self.points.points
            payer["points_lots"] = json.dumps([list(take) for take in self.points.takes])
        if not self.lines:
            return {"amount": self.gross_fen, **payer}
        return {
            "amount": self.payer_fen,
            "gross_amount": self.gross_fen,
            "discount_amount": self.discount_fen,
            "discounts": list(self.lines),
            **payer,
        }


def _check(ask: DiscountAsk) -> None:
    if ask.mode not in MODES:
        raise InvalidRequest("discount is auto or none", code="parameter_invalid", param="discount")
    if ask.mode == NONE and ask.claim_ids:
        raise InvalidRequest("claim_ids cannot go with discount none",
                             code="parameter_invalid", param="claim_ids")  # fmt: skip
    if ask.mode == NONE and ask.points:
        raise InvalidRequest("points cannot go with discount none",
                             code="parameter_invalid", param="points")  # fmt: skip
    if ask.micropay and (ask.citizen_id or ask.claim_ids or ask.points):
        param = "citizen_id" if ask.citizen_id else "claim_ids" if ask.claim_ids else "points"
        raise InvalidRequest(
            "a payment code names no payer: micropay orders take no discount",
            code="discount_unavailable", param=param,
        )  # fmt: skip


def identify_payer(uow: UnitOfWork, ask: DiscountAsk) -> str | None:
    """The citizen whose instruments apply, or None when the payer is unknown."""
    if ask.citizen_id is not None:
        return citizen.get_citizen(uow, ask.citizen_id).id  # 404 citizen_not_found
    if not ask.payer_id or ask.channel not in set(citizen.PayerChannel):
        return None
    found = citizen.find_citizen_by_payer_id(
        uow, channel=citizen.PayerChannel(ask.channel), payer_id=ask.payer_id
    )
    return None if found is None else found.id


def merchant_facts(uow: UnitOfWork, merchant_id: str) -> marketing.MerchantFacts:
    """What a campaign's merchant scope looks at: the merchant, its MCC and its district."""
    merchant = merchants.get_merchant(uow, merchant_id)
    district = merchant.unified_social_credit_code[DISTRICT_SLICE]
    return marketing.MerchantFacts(
        merchant.id, merchant.mcc, district if district.isdigit() else None
    )


def apply_discount(
    uow: UnitOfWork, *, order_id: str, ask: DiscountAsk, merchant_id: str, amount_fen: int,
    currency: str,
) -> Applied:  # fmt: skip
    """Redeem the payer's instruments for a new order (in its transaction): the subsidy is
    held on the budgets. Nothing is written when the payer is unknown or nothing applies."""
    _check(ask)
    if ask.mode == NONE or ask.micropay:
        return Applied(amount_fen)
    citizen_id = identify_payer(uow, ask)
    if citizen_id is None:
        if ask.claim_ids or ask.points:
            raise InvalidRequest(
                "claim_ids and points need a known payer: citizen_id, or a payer_id linked to "
                "a citizen", code="payer_unknown", param="claim_ids" if ask.claim_ids else "points",
            )  # fmt: skip
        return Applied(amount_fen)
    redemption = marketing.redeem(
        uow, order_id=order_id, citizen_id=citizen_id,
        merchant=merchant_facts(uow, merchant_id), amount_fen=amount_fen, currency=currency,
        claim_ids=list(ask.claim_ids) if ask.claim_ids else None,
    )  # fmt: skip
    vouchers = Applied(amount_fen, tuple(_lines(uow, redemption.lines)), citizen_id)
    if not ask.points:
        return vouchers
    return _apply_points(uow, order_id, vouchers, merchant_id, ask.points)


def _apply_points(
    uow: UnitOfWork, order_id: str, vouchers: Applied, merchant_id: str, points_wanted: int
) -> Applied:
    """Points pay part of what is left after vouchers and coupons, at the city's rate."""
    assert vouchers.citizen_id is not None
    tender = marketing.tender_for(
        uow, citizen_id=vouchers.citizen_id, points_wanted=points_wanted,
        amount_fen=vouchers.payer_fen,
    )  # fmt: skip
    hold = marketing.hold_points(
        uow, order_id=order_id, citizen_id=vouchers.citizen_id, merchant_id=merchant_id,
        tender=tender,
    )  # fmt: skip
    line = {"kind": POINTS, "points": hold.points, "amount": hold.value_fen}
    return replace(vouchers, lines=(*vouchers.lines, line), points=hold)


def _lines(uow: UnitOfWork, lines: Sequence[marketing.RedemptionLine]) -> list[dict[str, Any]]:
    kinds: dict[str, str] = {}
    breakdown = []
    for line in lines:
        if line.campaign_id not in kinds:
            kinds[line.campaign_id] = marketing.get_campaign(uow, line.campaign_id).kind.value
        breakdown.append({
            "claim_id": line.claim_id, "campaign_id": line.campaign_id,
            "kind": kinds[line.campaign_id], "amount": line.discount_fen,
        })  # fmt: skip
    return breakdown


def on_paid(uow: UnitOfWork, order: OrderRow, *, payer_id: str | None = None) -> None:
    """The payer paid: the held subsidy and points value become the merchant's (待结算), and
    an identified payer earns the merchant's points (funded by the merchant)."""
    if order.discount_amount:
        marketing.confirm_redemption(uow, order_id=order.id)
    if order.points_used:
        marketing.confirm_points(uow, order_id=order.id)
    if order.citizen_id is None and not (payer_id or order.payer_id):
        return  # nobody to give points to: no look-up on the hot path
    if marketing.find_earn_rule(uow, order.merchant_id) is None:
        return
    citizen_id = order.citizen_id or _payer_at_capture(uow, order, payer_id)
    if citizen_id is None:
        return
    earned = marketing.earn_for_order(
        uow, order_id=order.id, citizen_id=citizen_id, merchant_id=order.merchant_id,
        paid_fen=order.amount,
    )  # fmt: skip
    repository.update_order(
        uow.connection, order.id, citizen_id=citizen_id,
        points_funded_amount=earned.funded_fen or None,
    )  # fmt: skip


def _payer_at_capture(uow: UnitOfWork, order: OrderRow, payer_id: str | None) -> str | None:
    """A payer unknown when the order opened (a QR code, a payment code) may be known by the
    wallet's payer id the channel reports with the payment."""
    wallet_payer = payer_id or order.payer_id
    if not wallet_payer or order.currency != "CNY":
        return None
    ask = DiscountAsk(None, wallet_payer, None, AUTO, order.channel, micropay=False)
    return identify_payer(uow, ask)


def on_status(uow: UnitOfWork, order: OrderRow, target: OrderStatus) -> None:
    """An order ending unpaid gives the hold back to the budget and the voucher to the payer,
    and the points back to the lots they came from."""
    if target not in UNPAID_ENDS:
        return
    if order.discount_amount:
        marketing.reverse_redemption(uow, order_id=order.id)
    if order.points_used:
        marketing.release_points(uow, order_id=order.id, takes=_takes(order))


def _takes(order: OrderRow) -> marketing.Takes:
    return marketing.takes_of(json.loads(order.points_lots or "[]"))


def _points_hold(order: OrderRow) -> marketing.PointsHold | None:
    if not order.points_used:
        return None
    value = next(int(line["amount"]) for line in order.discounts or [] if line["kind"] == POINTS)
    return marketing.PointsHold(order.points_used, value, _takes(order))


def _refund_share(
    order: OrderRow, refund_id: str, before_fen: int, after_fen: int
) -> marketing.RefundShare:
    assert order.citizen_id is not None
    return marketing.RefundShare(
        refund_id, order.id, order.citizen_id, order.merchant_id, order.amount, before_fen,
        after_fen,
    )  # fmt: skip


def check_refund_covered(uow: UnitOfWork, order: OrderRow, amount_fen: int) -> None:
    """Before asking the channel: the merchant's unsettled balance must also cover the
    subsidy this refund will give back (the refund itself is already held)."""
    if not order.discount_amount:
        return
    refunded_before = order.refunded_amount + order.refund_reserved_amount
    share = marketing.subsidy_due_back(
        uow, order_id=order.id, order_amount_fen=order.amount,
        refunded_total_fen=refunded_before + amount_fen,
    )  # fmt: skip
    hold = _points_hold(order)
    if hold is not None:
        refund = _refund_share(order, "check", refunded_before, refunded_before + amount_fen)
        share += marketing.points_value_due_back(hold, refund)
    pending = ledger.open_chart_account(
        uow, Purpose.MERCHANT_PENDING, ledger.merchant_owner(order.merchant_id), order.currency
    )
    balance = ledger.get_account(uow, pending.id).balance
    if balance.net_credit - balance.debits_pending < share:
        raise PaymentRefused(
            "the merchant's unsettled balance does not cover the subsidy this refund returns",
            code="insufficient_merchant_balance", param="amount",
        )  # fmt: skip


def on_refunded(uow: UnitOfWork, order: OrderRow, *, refund_id: str, refunded_fen: int) -> int:
    """A refund succeeded (`refunded_fen`: every succeeded refund of the order, in the
    payer's fen): give the subsidy's and the points' share back, claw back the share of the
    points the order earned. Returns the fen given back now (subsidy and points value)."""
    given_back = 0
    if order.discount_amount:
        before = marketing.get_redemption(uow, order.id).discount_fen
        given_back = before - marketing.reverse_for_refund(
            uow, order_id=order.id, refund_id=refund_id, order_amount_fen=order.amount,
            refunded_total_fen=refunded_fen,
        ).discount_fen  # fmt: skip
    if order.citizen_id is None:
        return given_back
    refund = _refund_share(order, refund_id, order.refunded_amount, refunded_fen)
    hold = _points_hold(order)
    if hold is not None:
        given_back += marketing.give_points_back(uow, refund, hold)
    if order.points_funded_amount:
        _claw_back(uow, order, refund)
    return given_back


def _claw_back(uow: UnitOfWork, order: OrderRow, refund: marketing.RefundShare) -> None:
    """No points on a refunded share: take back what the citizen still has of them."""
    clawed_before = order.points_clawed_back or 0
    clawed = marketing.claw_back(uow, refund, clawed_before=clawed_before)
    if clawed.points:
        repository.update_order(
            uow.connection, order.id, points_clawed_back=clawed_before + clawed.points
        )
        repository.update_refund(
            uow.connection, refund.refund_id, points_funding_returned_amount=clawed.funded_fen
        )


@dataclass(frozen=True)
class Offer:
    """A usable voucher or coupon as the store page shows it before the amount is typed."""

    name: str
    max_value_fen: int
    threshold_fen: int


MAX_OFFERS_SHOWN: Final = 3


def offers_at(uow: UnitOfWork, *, merchant_id: str, wallet: str, payer_id: str) -> list[Offer]:
    """The identified payer's instruments usable at this merchant now, best first. Shown
    only: the order recomputes the discount itself when it opens."""
    ask = DiscountAsk(None, payer_id, None, AUTO, wallet, micropay=False)
    citizen_id = identify_payer(uow, ask)
    if citizen_id is None:
        return []
    facts, now = merchant_facts(uow, merchant_id), uow.clock.now()
    usable = (marketing.ClaimStatus.CLAIMED, marketing.ClaimStatus.RESTORED)
    offers = [
        Offer(entry.campaign.name, entry.campaign.rule.max_value_fen,
              entry.campaign.rule.threshold_fen)
        for entry in marketing.wallet(uow, citizen_id)
        if entry.claim.status in usable
        and entry.campaign.status is marketing.CampaignStatus.ACTIVE
        and entry.campaign.windows.valid_from <= now < entry.campaign.windows.valid_until
        and entry.campaign.scope.admits(facts)
    ]  # fmt: skip
    offers.sort(key=lambda offer: (-offer.max_value_fen, offer.threshold_fen))
    return offers[:MAX_OFFERS_SHOWN]
