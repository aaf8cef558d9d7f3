"""The citizen context's SQL. Rows become model records here and nowhere else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from cloudpay.citizen.model import Citizen, PayerChannel, PayerId
from cloudpay.citizen.tables import citizen_payer_ids, citizens
from cloudpay.kernel.vault import SealedValue


def insert_citizen(
    connection: Connection,
    citizen: Citizen,
    *,
    name: SealedValue,
    resident_id: SealedValue,
    phone: SealedValue,
) -> None:
    connection.execute(
        insert(citizens).values(
            id=citizen.id,
            name_encrypted=name.token,
            name_masked=name.masked,
            resident_id_encrypted=resident_id.token,
            resident_id_index=resident_id.blind_index,
            resident_id_masked=resident_id.masked,
            phone_encrypted=phone.token,
            phone_index=phone.blind_index,
            phone_masked=phone.masked,
            resident=citizen.resident,
            district=citizen.district,
            created_at=citizen.created_at,
        )
    )


def _citizen(row: Any, payer_ids: tuple[PayerId, ...] = ()) -> Citizen:
    return Citizen(
        id=row.id,
        name_masked=row.name_masked,
        resident_id_masked=row.resident_id_masked,
        phone_masked=row.phone_masked,
        resident=row.resident,
        district=row.district,
        created_at=row.created_at,
        payer_ids=payer_ids,
    )


# Read on every voucher claim: built once, the id bound per execution.
_LOAD_CITIZEN = select(citizens).where(citizens.c.id == bindparam("b_citizen"))


def load_citizen(
    connection: Connection, citizen_id: str, *, with_payer_ids: bool = False
) -> Citizen | None:
    row = connection.execute(_LOAD_CITIZEN, {"b_citizen": citizen_id}).first()
    if row is None:
        return None
    return _citizen(row, load_payer_ids(connection, citizen_id) if with_payer_ids else ())


def citizen_id_by_resident_index(connection: Connection, blind_index: str) -> str | None:
    query = select(citizens.c.id).where(citizens.c.resident_id_index == blind_index)
    found: str | None = connection.execute(query).scalar()
    return found


def load_payer_ids(connection: Connection, citizen_id: str) -> tuple[PayerId, ...]:
    query = (
        select(citizen_payer_ids)
        .where(citizen_payer_ids.c.citizen_id == citizen_id)
        .order_by(citizen_payer_ids.c.created_at, citizen_payer_ids.c.channel)
    )
    return tuple(
        PayerId(PayerChannel(r.channel), r.payer_id, r.citizen_id, r.created_at)
        for r in connection.execute(query)
    )


def find_payer_id(connection: Connection, channel: PayerChannel, payer_id: str) -> PayerId | None:
    row = connection.execute(
        select(citizen_payer_ids).where(
            citizen_payer_ids.c.channel == channel.value,
            citizen_payer_ids.c.payer_id == payer_id,
        )
    ).first()
    if row is None:
        return None
    return PayerId(PayerChannel(row.channel), row.payer_id, row.citizen_id, row.created_at)


def insert_payer_id(connection: Connection, payer: PayerId) -> None:
    connection.execute(
        insert(citizen_payer_ids).values(
            channel=payer.channel.value,
            payer_id=payer.payer_id,
            citizen_id=payer.citizen_id,
            created_at=payer.created_at,
        )
    )


def citizens_with_many_payer_ids(
    connection: Connection, *, at_least: int, limit: int
) -> list[tuple[str, int]]:
    """Citizens linked to at least `at_least` wallet payer ids: (citizen id, how many)."""
    count = func.count()
    query = (
        select(citizen_payer_ids.c.citizen_id, count)
        .group_by(citizen_payer_ids.c.citizen_id)
        .having(count >= at_least)
        .order_by(citizen_payer_ids.c.citizen_id)
        .limit(limit)
    )
    return [(row[0], int(row[1])) for row in connection.execute(query)]
