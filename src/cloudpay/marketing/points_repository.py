"""The SQL of points: earn rules and the lots that remember when points were earned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from cloudpay.marketing.points_model import EarnRule, MultiplierWindow, PointsLot
from cloudpay.marketing.tables import marketing_points_lots, marketing_points_rules

_rules = marketing_points_rules.c
_lots = marketing_points_lots.c


def save_rule(connection: Connection, rule: EarnRule, now: datetime) -> None:
    windows = [
        {"starts_at": w.starts_at.isoformat(), "ends_at": w.ends_at.isoformat(),
         "multiplier_bp": w.multiplier_bp}
        for w in rule.windows
    ]  # fmt: skip
    connection.execute(delete(marketing_points_rules).where(_rules.merchant_id == rule.merchant_id))
    connection.execute(
        insert(marketing_points_rules).values(
            merchant_id=rule.merchant_id, points_per_yuan=rule.points_per_yuan,
            validity_days=rule.validity_days, multipliers=windows, updated_at=now,
        )
    )  # fmt: skip


def load_rule(connection: Connection, merchant_id: str) -> EarnRule | None:
    row = connection.execute(
        select(marketing_points_rules).where(_rules.merchant_id == merchant_id)
    ).first()
    if row is None:
        return None
    windows = tuple(
        MultiplierWindow(
            datetime.fromisoformat(w["starts_at"]),
            datetime.fromisoformat(w["ends_at"]),
            int(w["multiplier_bp"]),
        )
        for w in row.multipliers
    )
    return EarnRule(row.merchant_id, row.points_per_yuan, row.validity_days, windows)


def _lot(row: Any) -> PointsLot:
    return PointsLot(
        row.id, row.citizen_id, row.merchant_id, row.points, row.remaining, row.earned_at,
        row.expires_at,
    )  # fmt: skip


def insert_lot(connection: Connection, lot: PointsLot, order_id: str) -> None:
    connection.execute(
        insert(marketing_points_lots).values(
            id=lot.id, citizen_id=lot.citizen_id, merchant_id=lot.merchant_id,
            order_id=order_id, points=lot.points, remaining=lot.remaining,
            earned_at=lot.earned_at, expires_at=lot.expires_at,
        )
    )  # fmt: skip


def lot_for_order(connection: Connection, order_id: str) -> PointsLot | None:
    row = connection.execute(
        select(marketing_points_lots).where(_lots.order_id == order_id)
    ).first()
    return None if row is None else _lot(row)


def live_lots(connection: Connection, citizen_id: str, *, now: datetime) -> list[PointsLot]:
    """The citizen's lots with points left and not yet expired, oldest first."""
    query = (
        select(marketing_points_lots)
        .where(_lots.citizen_id == citizen_id, _lots.remaining > 0, _lots.expires_at > now)
        .order_by(_lots.earned_at, _lots.id)
    )
    return [_lot(row) for row in connection.execute(query)]


def expired_lots(connection: Connection, *, now: datetime, limit: int) -> list[PointsLot]:
    query = (
        select(marketing_points_lots)
        .where(_lots.remaining > 0, _lots.expires_at <= now)
        .order_by(_lots.expires_at, _lots.earned_at, _lots.id)
        .limit(limit)
    )
    return [_lot(row) for row in connection.execute(query)]


def take_from_lot(connection: Connection, lot_id: str, points: int) -> bool:
    """Take `points` from the lot if it still holds them (conditional: never below zero)."""
    result = connection.execute(
        update(marketing_points_lots)
        .where(_lots.id == lot_id, _lots.remaining >= points)
        .values(remaining=_lots.remaining - points)
    )
    return result.rowcount == 1


def give_back_to_lot(connection: Connection, lot_id: str, points: int) -> bool:
    """Put `points` back into the lot they were taken from (never above what it was earned
    with); its expiry stays, so points given back after it are expired by the next run."""
    result = connection.execute(
        update(marketing_points_lots)
        .where(_lots.id == lot_id, _lots.remaining + points <= _lots.points)
        .values(remaining=_lots.remaining + points)
    )
    return result.rowcount == 1
