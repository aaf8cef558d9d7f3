"""Splits (分账 / 二次清分): delayed splits and unfreezing, and what a settlement run moves to
receivers and takes back from them on refunds.

Three ways an order is split, each settled with the merchant's day the order settles in:
- standing rules on the merchant (percent or fixed, multi-level HQ → store → supplier),
  applied to every order without its own instruction;
- `{"mode": "now", "parts": [...]}` on the order;
- `{"mode": "delayed"}` on the order (WeChat's profit_sharing=true): its funds stay pending
  until `POST /v1/splits` with `finish`, an unfreeze, or the merchant's auto-unfreeze days;
  the order then settles on the day it was released, with every split made on it.
WeChat Pay's model: https://pay.weixin.qq.com/wiki/doc/api/allocation.php?chapter=26_1

A refund of a split order takes back from the receivers in proportion (分账回退,
`model.split_return`), in the run of the refund's day.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

import structlog

from cloudpay import merchants, payments
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import day_bounds_utc
from cloudpay.kernel.errors import Conflict, InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.money import MAX_AMOUNT_FEN
from cloudpay.ledger import Transfer
from cloudpay.settlement import repository, splits_ledger
from cloudpay.settlement import split_repository as parts_sql
from cloudpay.settlement.daybook import MerchantDay
from cloudpay.settlement.errors import SplitRefused
from cloudpay.settlement.model import (
    SplitConfig,
    SplitPart,
    SplitRule,
    plan_split,
    split_return,
)
from cloudpay.settlement.run import (
    PaymentLine,
    RefundLine,
    ReservePolicy,
    SplitLine,
    SplitReturnLine,
    settle_merchant,
)

MAX_HELD_PER_PASS: Final = 10_000  # held orders looked at by one auto-unfreeze pass
RECORDED_CHUNK: Final = 5_000  # ids per read of recorded parts or receivers
PAID: Final = frozenset({"succeeded", "partially_refunded"})
ORDER_SOURCE: Final = "order"  # source_id of parts from the order's rules or instruction
log = structlog.get_logger(__name__)


# --- standing rules ---------------------------------------------------------------------
def rules_of(settings: merchants.SplitSettings) -> list[SplitRule]:
    return [
        SplitRule(
            str(rule["receiver_id"]),
            None if rule.get("rate_bp") is None else Decimal(str(rule["rate_bp"])),
            rule.get("fixed_fen"),
            rule.get("split_from"),
        )
        for rule in settings.rules
    ]


def check_standing_rules(rules: Sequence[Mapping[str, Any]], cap_bp: Decimal) -> None:
    """Refuse rules no order could follow: a broken chain, rates over 100 % or over the cap.
    Probed on the largest order, where fixed amounts weigh nothing against the rates."""
    probe = merchants.SplitSettings("", cap_bp, 0, tuple(rules))
    split_rules = rules_of(probe)
    bound = frozenset(rule.receiver_id for rule in split_rules)
    plan_split(MAX_AMOUNT_FEN // 10**4, 0, split_rules, SplitConfig(bound, cap_bp))


# --- delayed splits (POST /v1/splits) ---------------------------------------------------
@dataclass(frozen=True)
class SplitRequest:
    merchant_id: str
    order_id: str
    out_split_no: str
    parts: tuple[tuple[str, int], ...]  # (receiver_id, amount_fen)
    finish: bool

    def fingerprint(self) -> str:
        body = [self.order_id, [list(p) for p in self.parts], self.finish]
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def _held_order(uow: UnitOfWork, merchant_id: str, order_id: str) -> payments.OrderRow:
    """The merchant's paid order that still waits for its delayed split."""
    try:
        order = payments.get_order(uow, order_id=order_id)
    except NotFound:
        order = None
    if order is None or order.merchant_id != merchant_id:
        raise NotFound(f"no order {order_id}", code="order_not_found", param="order_id")
    if order.status.value not in PAID:
        raise Conflict("the order is not paid", code="order_not_paid", param="order_id")
    if order.split_mode != merchants.SplitMode.DELAYED:
        raise Conflict(
            "the order was not held for a delayed split", code="order_not_held", param="order_id"
        )
    if order.split_released_at is not None:
        raise Conflict(
            "the order's split is finished or unfrozen", code="split_finished", param="order_id"
        )
    return order


def _checked_parts(
    uow: UnitOfWork, request: SplitRequest, order: payments.OrderRow
) -> list[dict[str, Any]]:
    """The request's parts within the merchant's rules, the cap (with the order's earlier
    splits) and what refunds left of the order."""
    before_fen = parts_sql.split_total_of_order(uow.connection, order.id)
    parts = merchants.check_split_parts(
        uow,
        merchant_id=request.merchant_id,
        amount_fen=order.amount,
        param="parts",
        parts=[{"receiver_id": r, "amount_fen": a} for r, a in request.parts],
        already_split_fen=before_fen,
    )
    if before_fen + sum(part["amount_fen"] for part in parts) > (
        order.amount - order.refunded_amount
    ):
        raise InvalidRequest(
            "the parts exceed what the order has left after refunds",
            code="split_exceeds_available",
            param="parts",
        )
    return parts


def create_split(uow: UnitOfWork, request: SplitRequest) -> dict[str, Any]:
    """Record a split of a held order (请求分账); idempotent by `out_split_no`. `finish`
    releases the rest to the merchant; several splits may come before that."""
    found = parts_sql.find_split(uow.connection, request.merchant_id, request.out_split_no)
    if found is not None:
        if found.request_hash != request.fingerprint():
            raise Conflict(
                "out_split_no was already used with different parameters",
                code="out_split_no_used",
                param="out_split_no",
            )
        return get_split(uow, found.id, merchant_id=request.merchant_id)
    order = _held_order(uow, request.merchant_id, request.order_id)
    parts = _checked_parts(uow, request, order)
    total_fen = sum(part["amount_fen"] for part in parts)
    now = uow.clock.now()
    split_id = new_id("spl")
    parts_sql.insert_split(
        uow.connection,
        {
            "id": split_id,
            "merchant_id": request.merchant_id,
            "order_id": order.id,
            "out_split_no": request.out_split_no,
            "request_hash": request.fingerprint(),
            "amount_fen": total_fen,
            "finish": int(request.finish),
            "created_at": now,
        },
    )
    parts_sql.insert_parts(
        uow.connection,
        [
            _part_row(
                order.id,
                order.merchant_id,
                part["receiver_id"],
                "split",
                split_id,
                part["amount_fen"],
                now,
            )
            for part in parts
        ],
    )
    if request.finish:
        payments.release_split_hold(uow.connection, order.id, at=now)
    return get_split(uow, split_id, merchant_id=request.merchant_id)


def _part_row(
    order_id: str,
    merchant_id: str,
    receiver_id: str,
    kind: str,
    source_id: str,
    amount_fen: int,
    now: Any,
    level: int = 1,
    split_from: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("spp"),
        "order_id": order_id,
        "merchant_id": merchant_id,
        "receiver_id": receiver_id,
        "kind": kind,
        "source_id": source_id,
        "amount_fen": amount_fen,
        "level": level,
        "split_from": split_from,
        "line_id": None,
        "created_at": now,
    }


def unfreeze_order(uow: UnitOfWork, *, merchant_id: str, order_id: str) -> dict[str, Any]:
    """解冻: end the hold; what was not split goes to the merchant with the order."""
    order = _held_order(uow, merchant_id, order_id)
    payments.release_split_hold(uow.connection, order.id, at=uow.clock.now())
    return order_split_view(uow, order.id)


def unfreeze_split(uow: UnitOfWork, *, merchant_id: str, split_id: str) -> dict[str, Any]:
    split = get_split(uow, split_id, merchant_id=merchant_id)
    unfreeze_order(uow, merchant_id=merchant_id, order_id=split["order_id"])
    return get_split(uow, split_id, merchant_id=merchant_id)


def get_split(uow: UnitOfWork, split_id: str, *, merchant_id: str) -> dict[str, Any]:
    row = parts_sql.get_split(uow.connection, split_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound(f"no split {split_id}", code="split_not_found", param="split_id")
    order = payments.get_order(uow, order_id=row.order_id)
    return {
        "object": "split",
        "id": row.id,
        "order_id": row.order_id,
        "out_split_no": row.out_split_no,
        "amount_fen": row.amount_fen,
        "finish": bool(row.finish),
        "status": _status(order),
        "parts": [_part_view(p) for p in parts_sql.parts_of_source(uow.connection, row.id)],
        "created": row.created_at.isoformat(),
    }


def order_split_view(uow: UnitOfWork, order_id: str) -> dict[str, Any]:
    order = payments.get_order(uow, order_id=order_id)
    parts = parts_sql.parts_of_orders(uow.connection, [order_id])
    return {
        "object": "order_split",
        "order_id": order_id,
        "mode": order.split_mode,
        "status": _status(order),
        "parts": [_part_view(p) for p in parts],
    }


def _status(order: payments.OrderRow) -> str:
    if order.split_mode != merchants.SplitMode.DELAYED:
        return "not_held"
    return "held" if order.split_released_at is None else "released"


def _part_view(row: Any) -> dict[str, Any]:
    return {
        "receiver_id": row.receiver_id,
        "kind": row.kind,
        "amount_fen": row.amount_fen,
        "level": row.level,
        "split_from": row.split_from,
        "settlement_id": row.line_id,
    }


def auto_unfreeze(uow: UnitOfWork) -> int:
    """Release held orders whose merchant's auto-unfreeze days have passed (the job the
    settlement run calls first); they settle in the run of the day they were released."""
    now = uow.clock.now()
    days: dict[str, int] = {}
    released = 0
    for order_id, merchant_id, paid_at in payments.held_for_split(
        uow.connection, limit=MAX_HELD_PER_PASS
    ):
        if merchant_id not in days:
            days[merchant_id] = merchants.split_settings(uow, merchant_id).auto_unfreeze_days
        if paid_at is not None and paid_at + timedelta(days=days[merchant_id]) <= now:
            released += payments.release_split_hold(uow.connection, order_id, at=now)
    return released


# --- what a settlement run moves ---------------------------------------------------------
@dataclass
class SplitDay:
    """A merchant's split parts for one trade date: credited to receivers, returned by them."""

    credits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    returns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    new_parts: list[dict[str, Any]] = field(default_factory=list)
    settled_part_ids: list[str] = field(default_factory=list)

    def add(self, row: Mapping[str, Any], *, new: bool) -> None:
        target = self.credits if row["kind"] == parts_sql.SPLIT else self.returns
        target[row["receiver_id"]] += row["amount_fen"]
        if new:
            self.new_parts.append(dict(row))
        else:
            self.settled_part_ids.append(row["id"])

    @property
    def splits_fen(self) -> int:
        return sum(self.credits.values())

    @property
    def returns_fen(self) -> int:
        return sum(self.returns.values())


def _planned_parts(
    order: payments.SplitOrder, settings: merchants.SplitSettings, bound: frozenset[str]
) -> tuple[SplitPart, ...]:
    """The order's parts from its `now` instruction, else its merchant's standing rules."""
    if order.split_mode == merchants.SplitMode.NOW and order.split:
        rules = [SplitRule.fixed(p["receiver_id"], p["amount_fen"]) for p in order.split["parts"]]
        bound = frozenset(rule.receiver_id for rule in rules)  # checked when it was created
    elif order.split_mode is None and settings.rules:
        rules = rules_of(settings)
    else:
        return ()
    config = SplitConfig(bound, settings.cap_bp)
    try:
        plan = plan_split(order.amount_fen, order.fee_fen, rules, config)
    except SplitRefused as refused:
        # The order stands; only its split could not be followed (rules changed since, a
        # fixed part above a small order): the merchant keeps it, and the log says why.
        log.warning("settlement.split.skipped", order_id=order.order_id, code=refused.code)
        return ()
    return plan.parts


def read_split_days(uow: UnitOfWork, trade_date: date) -> dict[str, SplitDay]:
    """Each merchant's split parts for `trade_date`: computed for the orders settling that
    day (rules and `now` instructions), recorded ones of delayed orders released that day,
    and returns for the day's refunds of split orders."""
    start, end = day_bounds_utc(trade_date)
    pricing = repository.pricing()
    with_rules = merchants.standing_rules_by_merchant(uow)
    orders = payments.split_orders(
        uow.connection, start=start, end=end, pricing=pricing, merchants_with_rules=with_rules
    )
    refunds = payments.priced_refunds(uow.connection, start=start, end=end, pricing=pricing)
    # Recorded parts matter for delayed orders and refunded ones only: the other orders'
    # parts are planned here, so a rule merchant's day does not read back every order.
    delayed = {o.order_id for o in orders if o.split_mode == merchants.SplitMode.DELAYED}
    recorded = _recorded_parts(uow, delayed | {r.order_id for r in refunds})
    recorded_by_order: dict[str, list[Any]] = defaultdict(list)
    for row in recorded:
        recorded_by_order[row.order_id].append(row)
    days: dict[str, SplitDay] = defaultdict(SplitDay)
    settings: dict[str, merchants.SplitSettings] = dict(with_rules)
    bound = _bound_rule_receivers(uow, with_rules)
    originals: dict[str, dict[str, SplitPart]] = defaultdict(dict)
    now = uow.clock.now()
    for order in orders:
        day = days[order.merchant_id]
        if order.split_mode == merchants.SplitMode.DELAYED:
            for row in recorded_by_order[order.order_id]:
                if row.kind != parts_sql.SPLIT:
                    continue
                if row.line_id is None:
                    day.add(dict(row._mapping), new=False)
                _merge(originals[row.order_id], SplitPart(row.receiver_id, row.amount_fen, 1))
            continue
        if order.merchant_id not in settings:
            settings[order.merchant_id] = merchants.split_settings(uow, order.merchant_id)
            bound[order.merchant_id] = merchants.bound_receiver_ids(uow, order.merchant_id)
        planned = _planned_parts(order, settings[order.merchant_id], bound[order.merchant_id])
        for part in planned:
            if part.amount_fen:
                day.add(
                    _part_row(
                        order.order_id,
                        order.merchant_id,
                        part.receiver_id,
                        parts_sql.SPLIT,
                        ORDER_SOURCE,
                        part.amount_fen,
                        now,
                        part.level,
                        part.split_from,
                    ),
                    new=True,
                )
                _merge(originals[order.order_id], part)
    for row in recorded:
        if row.kind == parts_sql.SPLIT and row.line_id is not None and row.order_id not in delayed:
            _merge(originals[row.order_id], SplitPart(row.receiver_id, row.amount_fen, 1))
    _add_returns(days, refunds, originals, recorded, now)
    return {merchant_id: day for merchant_id, day in days.items() if day.credits or day.returns}


def _bound_rule_receivers(
    uow: UnitOfWork, with_rules: Mapping[str, merchants.SplitSettings]
) -> dict[str, frozenset[str]]:
    """Per rule merchant, which receivers its rules name are bound to it: all the split
    plans check (read at once, not one query a merchant)."""
    named = sorted({str(rule["receiver_id"]) for s in with_rules.values() for rule in s.rules})
    bound: dict[str, set[str]] = {merchant_id: set() for merchant_id in with_rules}
    for first in range(0, len(named), RECORDED_CHUNK):
        receivers = merchants.get_receivers(uow, named[first : first + RECORDED_CHUNK])
        for receiver in receivers.values():
            if receiver.bound and receiver.merchant_id in bound:
                bound[receiver.merchant_id].add(receiver.id)
    return {merchant_id: frozenset(ids) for merchant_id, ids in bound.items()}


def _recorded_parts(uow: UnitOfWork, order_ids: set[str]) -> list[Any]:
    """The recorded parts of these orders, read in chunks (SQLite caps bound parameters)."""
    ordered = sorted(order_ids)
    return [
        row
        for first in range(0, len(ordered), RECORDED_CHUNK)
        for row in parts_sql.parts_of_orders(
            uow.connection, ordered[first : first + RECORDED_CHUNK]
        )
    ]


def _merge(parts: dict[str, SplitPart], part: SplitPart) -> None:
    """One part per receiver (several delayed splits may pay the same receiver)."""
    held = parts.get(part.receiver_id)
    amount = part.amount_fen + (held.amount_fen if held else 0)
    parts[part.receiver_id] = replace(part, amount_fen=amount)


def _add_returns(
    days: dict[str, SplitDay],
    refunds: Sequence[payments.PricedRefund],
    originals: Mapping[str, Mapping[str, SplitPart]],
    recorded: Sequence[Any],
    now: Any,
) -> None:
    returned: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    returned_by: set[str] = set()  # refunds whose returns were recorded already
    for row in recorded:
        if row.kind == parts_sql.RETURN:
            returned[row.order_id][row.receiver_id] += row.amount_fen
            returned_by.add(row.source_id)
    for refund in sorted(refunds, key=lambda r: (r.order_id, r.refunded_before_fen)):
        parts = list(originals.get(refund.order_id, {}).values())
        if not parts or refund.refund_id in returned_by:
            continue
        given_back = split_return(
            parts,
            refund.amount_fen,
            refund.order_amount_fen,
            refunded_before_fen=refund.refunded_before_fen,
            returned_before=returned[refund.order_id],
        )
        for part in given_back:
            if part.amount_fen:
                returned[refund.order_id][part.receiver_id] += part.amount_fen
                days[refund.merchant_id].add(
                    _part_row(
                        refund.order_id,
                        refund.merchant_id,
                        part.receiver_id,
                        parts_sql.RETURN,
                        refund.refund_id,
                        part.amount_fen,
                        now,
                    ),
                    new=True,
                )


def with_splits(
    day: MerchantDay, split_day: SplitDay | None, reserve: ReservePolicy
) -> MerchantDay:
    """The merchant's day with its split lines: the same totals, less what receivers get,
    plus what they give back; the reserve is recomputed on what is then left."""
    if split_day is None:
        return day
    r = day.result
    result = settle_merchant(
        [
            PaymentLine(r.gross_fen, r.fees_fen),
            RefundLine(r.refunds_fen, r.fee_returns_fen),
            SplitLine(split_day.splits_fen),
            SplitReturnLine(split_day.returns_fen),
        ],
        business_date=r.business_date,
        reserve=reserve,
        reserve_released_fen=r.reserve_released_fen,
    )
    return replace(day, result=result)


def record_settled(uow: UnitOfWork, split_day: SplitDay, line_id: str) -> None:
    """The parts moved by settlement line `line_id`: new ones stored, recorded ones marked."""
    parts_sql.insert_parts(uow.connection, [{**p, "line_id": line_id} for p in split_day.new_parts])
    parts_sql.mark_settled(uow.connection, split_day.settled_part_ids, line_id)


def chain_with_splits(
    uow: UnitOfWork,
    *,
    pending_account: str,
    line_id: str,
    currency: str,
    split_day: SplitDay,
    merchant_transfers: list[Transfer],
) -> list[Transfer]:
    """The merchant's settlement chain with its split parts moved first, all or nothing."""
    receivers = merchants.get_receivers(uow, [*split_day.credits, *split_day.returns])
    accounts = splits_ledger.open_receiver_accounts(uow, receivers.values(), currency)
    moves = splits_ledger.split_transfers(
        line_id=line_id,
        pending_account=pending_account,
        accounts=accounts,
        credits=split_day.credits,
        returns=split_day.returns,
        currency=currency,
    )
    # Money into pending first (split returns, a negative net), then out of it: the chain
    # never takes pending below zero on the way to its end balance.
    chain = [*moves, *merchant_transfers]
    into_pending = [t for t in chain if t.credit_account_id == pending_account]
    out_of_pending = [t for t in chain if t.credit_account_id != pending_account]
    return splits_ledger.link([*into_pending, *out_of_pending])


def line_receivers(uow: UnitOfWork, line_id: str) -> list[dict[str, Any]]:
    """A settlement line's split lines per receiver: what each got and gave back."""
    per: dict[str, dict[str, Any]] = {}
    for row in parts_sql.parts_of_line(uow.connection, line_id):
        item = per.setdefault(
            row.receiver_id,
            {"receiver_id": row.receiver_id, "split_fen": 0, "returned_fen": 0, "orders": 0},
        )
        if row.kind == parts_sql.SPLIT:
            item["split_fen"] += row.amount_fen
            item["orders"] += 1
        else:
            item["returned_fen"] += row.amount_fen
    return [per[receiver_id] for receiver_id in sorted(per)]
