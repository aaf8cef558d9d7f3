"""SQL of delayed splits and split parts (分账明细); nothing else."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from cloudpay.settlement.tables import settlement_split_parts, settlement_splits

SPLIT, RETURN = "split", "return"


def find_split(connection: Connection, merchant_id: str, out_split_no: str) -> Row[Any] | None:
    c = settlement_splits.c
    query = select(settlement_splits).where(
        c.merchant_id == merchant_id, c.out_split_no == out_split_no
    )
    return connection.execute(query).first()


def get_split(connection: Connection, split_id: str) -> Row[Any] | None:
    query = select(settlement_splits).where(settlement_splits.c.id == split_id)
    return connection.execute(query).first()


def insert_split(connection: Connection, row: Mapping[str, Any]) -> None:
    connection.execute(settlement_splits.insert(), dict(row))


def insert_parts(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        connection.execute(settlement_split_parts.insert(), [dict(row) for row in rows])


def parts_of_orders(connection: Connection, order_ids: Collection[str]) -> list[Row[Any]]:
    if not order_ids:
        return []
    c = settlement_split_parts.c
    query = select(settlement_split_parts).where(c.order_id.in_(sorted(order_ids)))
    return list(connection.execute(query.order_by(c.order_id, c.id)))


def parts_of_source(connection: Connection, source_id: str) -> list[Row[Any]]:
    c = settlement_split_parts.c
    query = select(settlement_split_parts).where(c.source_id == source_id).order_by(c.id)
    return list(connection.execute(query))


def parts_of_line(connection: Connection, line_id: str) -> list[Row[Any]]:
    c = settlement_split_parts.c
    query = select(settlement_split_parts).where(c.line_id == line_id).order_by(c.id)
    return list(connection.execute(query))


def split_total_of_order(connection: Connection, order_id: str) -> int:
    c = settlement_split_parts.c
    query = select(func.coalesce(func.sum(c.amount_fen), 0)).where(
        c.order_id == order_id, c.kind == SPLIT
    )
    return int(connection.execute(query).scalar_one())


def mark_settled(connection: Connection, part_ids: Sequence[str], line_id: str) -> None:
    if part_ids:
        c = settlement_split_parts.c
        connection.execute(
            update(settlement_split_parts)
            .where(c.id.in_(list(part_ids)), c.line_id.is_(None))
            .values(line_id=line_id)
        )


def receiver_totals(connection: Connection, receiver_id: str) -> dict[str, int]:
    """What a receiver was credited and gave back, settled and not yet settled."""
    c = settlement_split_parts.c
    query = (
        select(c.kind, c.line_id.is_(None), func.sum(c.amount_fen))
        .where(c.receiver_id == receiver_id)
        .group_by(c.kind, c.line_id.is_(None))
    )
    totals = dict.fromkeys(("split", "return", "split_unsettled", "return_unsettled"), 0)
    for kind, unsettled, amount in connection.execute(query):
        totals[f"{kind}_unsettled" if unsettled else kind] += int(amount or 0)
    return totals
