"""SQL of split receivers (分账接收方) and merchants' split configuration; nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select, update

from cloudpay.merchants.tables import split_configs, split_receivers


def insert_receiver(connection: Connection, row: dict[str, Any]) -> None:
    connection.execute(split_receivers.insert(), row)


def load_receiver(connection: Connection, receiver_id: str) -> Row[Any] | None:
    query = select(split_receivers).where(split_receivers.c.id == receiver_id)
    return connection.execute(query).first()


def load_receivers(connection: Connection, receiver_ids: Sequence[str]) -> list[Row[Any]]:
    query = select(split_receivers).where(split_receivers.c.id.in_(list(receiver_ids)))
    return list(connection.execute(query).all())


def list_receivers(
    connection: Connection, merchant_id: str, *, limit: int, starting_after: str | None
) -> list[Row[Any]]:
    query = select(split_receivers).where(split_receivers.c.merchant_id == merchant_id)
    if starting_after is not None:
        query = query.where(split_receivers.c.id < starting_after)
    return list(connection.execute(query.order_by(split_receivers.c.id.desc()).limit(limit)))


def bound_receiver_ids(connection: Connection, merchant_id: str) -> set[str]:
    query = select(split_receivers.c.id).where(
        split_receivers.c.merchant_id == merchant_id, split_receivers.c.status == "bound"
    )
    return set(connection.execute(query).scalars())


def set_receiver_status(connection: Connection, receiver_id: str, status: str, now: Any) -> None:
    connection.execute(
        update(split_receivers)
        .where(split_receivers.c.id == receiver_id)
        .values(status=status, updated_at=now)
    )


def load_config(connection: Connection, merchant_id: str) -> Row[Any] | None:
    query = select(split_configs).where(split_configs.c.merchant_id == merchant_id)
    return connection.execute(query).first()


def load_configs_with_rules(connection: Connection) -> list[Row[Any]]:
    """Configurations that have standing rules (few merchants have them)."""
    rows = connection.execute(select(split_configs)).all()
    return [row for row in rows if row.rules]


def upsert_config(connection: Connection, row: dict[str, Any]) -> None:
    found = load_config(connection, row["merchant_id"])
    if found is None:
        connection.execute(split_configs.insert(), row)
    else:
        connection.execute(
            update(split_configs)
            .where(split_configs.c.merchant_id == row["merchant_id"])
            .values(**{k: v for k, v in row.items() if k != "merchant_id"})
        )
