"""The settlement context's SQL (its own tables only; orders are read through payments)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloudpay.db.retry import RetryableConflict
from cloudpay.settlement.tables import (
    settlement_agent_rates,
    settlement_fee_plans,
    settlement_lines,
    settlement_payouts,
    settlement_profiles,
    settlement_runs,
)

MAX_PAGE = 101
COPY_MIN_ROWS = 50  # below this, an INSERT's fixed cost is the smaller


def _insert(connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    try:
        connection.execute(statement, list(rows))
    except IntegrityError as error:
        # A concurrent writer got there first; the retried transaction sees its row.
        raise RetryableConflict(str(error.orig)) from error


# --- fee plans and agent rates ------------------------------------------------------------
def insert_fee_plan(connection: Connection, row: Mapping[str, Any]) -> None:
    _insert(connection, insert(settlement_fee_plans), [row])


def fee_plan_exists(connection: Connection, merchant_id: str, method: str, at: datetime) -> bool:
    c = settlement_fee_plans.c
    query = select(c.id).where(c.merchant_id == merchant_id, c.method == method,
                               c.effective_from == at)  # fmt: skip
    return connection.execute(query).first() is not None


def list_fee_plans(connection: Connection, merchant_id: str) -> list[Row[Any]]:
    c = settlement_fee_plans.c
    query = (
        select(settlement_fee_plans)
        .where(c.merchant_id == merchant_id)
        .order_by(c.method, c.effective_from)
    )
    return list(connection.execute(query).all())


def load_fee_plans(connection: Connection, plan_ids: Sequence[str]) -> dict[str, Row[Any]]:
    if not plan_ids:
        return {}
    query = select(settlement_fee_plans).where(settlement_fee_plans.c.id.in_(plan_ids))
    return {row.id: row for row in connection.execute(query)}


def pricing() -> Any:
    """The fee plan versions as the payments feed joins them (by the unique index)."""
    return settlement_fee_plans.alias("pricing")


def close_versions(connection: Connection, merchant_id: str, method: str) -> None:
    """Set each version's `effective_to` to the next version's start (few rows a merchant)."""
    c = settlement_fee_plans.c
    starts = list(
        connection.execute(
            select(c.id, c.effective_from)
            .where(c.merchant_id == merchant_id, c.method == method)
            .order_by(c.effective_from)
        )
    )
    for (plan_id, _), (_, next_start) in zip(starts, [*starts[1:], (None, None)], strict=True):
        connection.execute(
            update(settlement_fee_plans).where(c.id == plan_id).values(effective_to=next_start)
        )


def upsert_agent_rate(connection: Connection, row: Mapping[str, Any]) -> None:
    c = settlement_agent_rates.c
    found = connection.execute(
        update(settlement_agent_rates)
        .where(c.agent_id == row["agent_id"], c.method == row["method"])
        .values(cost_rate_centi_bp=row["cost_rate_centi_bp"], updated_at=row["updated_at"])
    )
    if found.rowcount == 0:
        _insert(connection, insert(settlement_agent_rates), [row])


def all_agent_rates(connection: Connection) -> dict[tuple[str, str], int]:
    c = settlement_agent_rates.c
    rows = connection.execute(select(c.agent_id, c.method, c.cost_rate_centi_bp))
    return {(agent, method): rate for agent, method, rate in rows}


# --- profiles ---------------------------------------------------------------------------
def get_profile(connection: Connection, merchant_id: str) -> Row[Any] | None:
    c = settlement_profiles.c
    return connection.execute(
        select(settlement_profiles).where(c.merchant_id == merchant_id)
    ).first()


def upsert_profile(connection: Connection, row: Mapping[str, Any]) -> None:
    c = settlement_profiles.c
    values = {k: v for k, v in row.items() if k not in ("merchant_id", "created_at")}
    found = connection.execute(
        update(settlement_profiles).where(c.merchant_id == row["merchant_id"]).values(**values)
    )
    if found.rowcount == 0:
        _insert(connection, insert(settlement_profiles), [row])


def profiles_by_cycle(connection: Connection) -> dict[str, str]:
    c = settlement_profiles.c
    rows = connection.execute(select(c.merchant_id, c.cycle))
    return {str(merchant_id): str(cycle) for merchant_id, cycle in rows}


def load_profiles(connection: Connection, merchant_ids: Sequence[str]) -> dict[str, Row[Any]]:
    c = settlement_profiles.c
    query = select(settlement_profiles).where(c.merchant_id.in_(merchant_ids))
    return {row.merchant_id: row for row in connection.execute(query)}


# --- runs and lines ---------------------------------------------------------------------
def get_run(connection: Connection, business_date: date) -> Row[Any] | None:
    c = settlement_runs.c
    return connection.execute(
        select(settlement_runs).where(c.business_date == business_date)
    ).first()


def insert_run(connection: Connection, row: Mapping[str, Any]) -> None:
    _insert(connection, insert(settlement_runs), [row])


def update_run(connection: Connection, run_id: str, **values: Any) -> None:
    connection.execute(
        update(settlement_runs).where(settlement_runs.c.id == run_id).values(**values)
    )


def count_lines(connection: Connection, run_id: str) -> int:
    c = settlement_lines.c
    query = select(func.count()).select_from(settlement_lines).where(c.run_id == run_id)
    return int(connection.execute(query).scalar_one())


def settled_merchants(connection: Connection, trade_date: date) -> set[str]:
    c = settlement_lines.c
    query = select(c.merchant_id).where(c.trade_date == trade_date)
    return set(connection.execute(query).scalars())


def insert_lines(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """On PostgreSQL one `COPY` for the batch: a row-by-row INSERT cost more than the
    settlement rules themselves (SQLite's in-process `executemany` is cheap already)."""
    if connection.dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
        _insert(connection, insert(settlement_lines), rows)
        return
    columns = list(settlement_lines.columns)
    sql = f"COPY settlement_lines ({', '.join(c.name for c in columns)}) FROM STDIN"
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row([row.get(c.name, _default(c)) for c in columns])
    except connection.dialect.loaded_dbapi.IntegrityError as error:
        raise RetryableConflict(str(error)) from error  # a concurrent writer got there first


def _default(column: Any) -> Any:
    """What SQLAlchemy's INSERT would have filled in for a key the row leaves out."""
    default = column.default
    return default.arg if default is not None and default.is_scalar else None


def get_line(connection: Connection, line_id: str) -> Row[Any] | None:
    query = select(settlement_lines).where(settlement_lines.c.id == line_id)
    return connection.execute(query).first()


def list_lines(
    connection: Connection, *, merchant_id: str | None, business_date: date | None,
    limit: int, starting_after: str | None,
) -> list[Row[Any]]:  # fmt: skip
    c = settlement_lines.c
    query = select(settlement_lines).order_by(c.id.desc()).limit(min(limit, MAX_PAGE))
    if merchant_id is not None:
        query = query.where(c.merchant_id == merchant_id)
    if business_date is not None:
        query = query.where(c.business_date == business_date)
    if starting_after is not None:
        query = query.where(c.id < starting_after)
    return list(connection.execute(query).all())


def reserves_due(connection: Connection, on: date, limit: int) -> list[Any]:
    c = settlement_lines.c
    query = (
        select(c.id, c.merchant_id, c.currency, c.reserve_held_fen)
        .where(c.reserve_release_on <= on, c.reserve_released_on.is_(None), c.reserve_held_fen > 0)
        .order_by(c.id)
        .limit(limit)
    )
    return list(connection.execute(query).all())


def mark_reserves_released(connection: Connection, line_ids: Sequence[str], on: date) -> None:
    if line_ids:
        connection.execute(
            update(settlement_lines)
            .where(settlement_lines.c.id.in_(line_ids))
            .values(reserve_released_on=on)
        )


def reserved_fen(connection: Connection, merchant_id: str) -> int:
    c = settlement_lines.c
    query = select(func.coalesce(func.sum(c.reserve_held_fen), 0)).where(
        c.merchant_id == merchant_id, c.reserve_released_on.is_(None)
    )
    return int(connection.execute(query).scalar_one())


# --- payouts ----------------------------------------------------------------------------
def insert_payout(connection: Connection, row: Mapping[str, Any]) -> None:
    _insert(connection, insert(settlement_payouts), [row])


def get_payout(connection: Connection, payout_id: str) -> Row[Any] | None:
    query = select(settlement_payouts).where(settlement_payouts.c.id == payout_id)
    return connection.execute(query).first()


def payout_for_day(
    connection: Connection, merchant_id: str, pay_date: date, kind: str
) -> Row[Any] | None:
    c = settlement_payouts.c
    query = select(settlement_payouts).where(
        c.merchant_id == merchant_id, c.pay_date == pay_date, c.destination_kind == kind
    )
    return connection.execute(query).first()


def payouts_in_status(connection: Connection, status: str, limit: int) -> list[Row[Any]]:
    c = settlement_payouts.c
    query = select(settlement_payouts).where(c.status == status).order_by(c.id).limit(limit)
    return list(connection.execute(query).all())


def payouts_of_merchant(connection: Connection, merchant_id: str, since: date) -> list[Row[Any]]:
    c = settlement_payouts.c
    query = (
        select(settlement_payouts)
        .where(c.merchant_id == merchant_id, c.pay_date >= since)
        .order_by(c.id)
    )
    return list(connection.execute(query).all())


def update_payout(connection: Connection, payout_id: str, **values: Any) -> None:
    connection.execute(
        update(settlement_payouts).where(settlement_payouts.c.id == payout_id).values(**values)
    )


# --- the regional closed-loop report ------------------------------------------------------
def succeeded_payouts_between(connection: Connection, start: date, end: date) -> list[Row[Any]]:
    """Payouts that reached the merchant, paid on a day in [start, end]."""
    c = settlement_payouts.c
    query = (
        select(c.pay_date, c.bank_code, c.destination_kind, c.destination_account, c.amount_fen)
        .where(c.pay_date >= start, c.pay_date <= end, c.status == "succeeded")
        .order_by(c.pay_date, c.id)
    )
    return list(connection.execute(query))


def receipts_by_bank(connection: Connection, start: date, end: date) -> list[tuple[str, int]]:
    """Merchants' receipts (gross − refunds) settled on a day in [start, end], by the bank
    their settlement profile names."""
    line, profile = settlement_lines.c, settlement_profiles.c
    query = (
        select(profile.bank_code, func.sum(line.gross_fen - line.refunds_fen))
        .select_from(
            settlement_lines.join(settlement_profiles, profile.merchant_id == line.merchant_id)
        )
        .where(line.business_date >= start, line.business_date <= end, line.status == "settled")
        .group_by(profile.bank_code)
    )
    return [(row[0], int(row[1] or 0)) for row in connection.execute(query)]


def profile_bank_codes(connection: Connection) -> set[str]:
    c = settlement_profiles.c
    return set(connection.execute(select(c.bank_code).distinct()).scalars())
