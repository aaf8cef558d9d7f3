"""The SQL of anti-abuse: its rules, its flags, and the aggregates the rules measure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cloudpay.marketing.abuse_model import (
    AbuseRule,
    Decision,
    Finding,
    Flag,
    FlagStatus,
    MerchantPerson,
    MerchantRole,
    RuleCode,
    SubjectKind,
)
from cloudpay.marketing.abuse_tables import marketing_merchant_people
from cloudpay.marketing.tables import (
    marketing_abuse_rules,
    marketing_claims,
    marketing_flags,
    marketing_redemptions,
)

_rules = marketing_abuse_rules.c
_flags = marketing_flags.c
_redemptions = marketing_redemptions.c
_people = marketing_merchant_people.c
REVERSED = "reversed"


def load_rules(connection: Connection) -> dict[RuleCode, AbuseRule]:
    rows = connection.execute(select(marketing_abuse_rules))
    rules = [AbuseRule(RuleCode(r.code), r.description, r.threshold, r.window_hours, r.enabled)
             for r in rows if r.code in RuleCode.__members__.values()]  # fmt: skip
    return {rule.code: rule for rule in rules}


def update_rule(connection: Connection, rule: AbuseRule) -> bool:
    result = connection.execute(
        update(marketing_abuse_rules)
        .where(_rules.code == rule.code.value)
        .values(threshold=rule.threshold, window_hours=rule.window_hours, enabled=rule.enabled)
    )
    return result.rowcount == 1


def insert_flag(connection: Connection, flag_id: str, finding: Finding, now: datetime) -> bool:
    """Store the finding as an open flag unless the rule already flagged this subject."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(marketing_flags).values(
        id=flag_id, subject_kind=finding.subject_kind.value, subject_id=finding.subject_id,
        rule_code=finding.rule.value, reason=finding.reason, status=FlagStatus.OPEN.value,
        created_at=now,
    )  # fmt: skip
    # RETURNING, not rowcount: psycopg reports no row count for ON CONFLICT DO NOTHING.
    inserted = connection.execute(statement.on_conflict_do_nothing().returning(_flags.id))
    return inserted.first() is not None


def _flag(row: Any) -> Flag:
    return Flag(
        row.id, SubjectKind(row.subject_kind), row.subject_id, RuleCode(row.rule_code),
        row.reason, FlagStatus(row.status), row.created_at,
        None if row.decision is None else Decision(row.decision), row.note, row.reviewed_at,
    )  # fmt: skip


def load_flag(connection: Connection, flag_id: str) -> Flag | None:
    row = connection.execute(select(marketing_flags).where(_flags.id == flag_id)).first()
    return None if row is None else _flag(row)


def list_flags(
    connection: Connection, *, status: FlagStatus | None, limit: int, starting_after: str | None
) -> list[Flag]:
    query = select(marketing_flags).order_by(_flags.id.desc()).limit(limit)
    if status is not None:
        query = query.where(_flags.status == status.value)
    if starting_after is not None:
        query = query.where(_flags.id < starting_after)
    return [_flag(row) for row in connection.execute(query)]


def review_flag(
    connection: Connection, flag_id: str, *, decision: Decision, note: str | None, now: datetime
) -> bool:
    """Record the decision if the flag is still open (a conditional update: reviewed once)."""
    result = connection.execute(
        update(marketing_flags)
        .where(_flags.id == flag_id, _flags.status == FlagStatus.OPEN.value)
        .values(
            status=FlagStatus.REVIEWED.value, decision=decision.value, note=note, reviewed_at=now
        )
    )
    return result.rowcount == 1


def identical_amounts(
    connection: Connection, *, since: datetime, at_least: int, merchant_id: str | None, limit: int
) -> list[tuple[str, int, int]]:
    """(merchant, amount, orders) for each amount a merchant's voucher orders repeat."""
    orders = func.count(func.distinct(_redemptions.order_id))
    query = (
        select(_redemptions.merchant_id, _redemptions.order_amount_fen, orders)
        .where(_redemptions.created_at >= since)
        .group_by(_redemptions.merchant_id, _redemptions.order_amount_fen)
        .having(orders >= at_least)
        .order_by(_redemptions.merchant_id, _redemptions.order_amount_fen)
        .limit(limit)
    )
    if merchant_id is not None:
        query = query.where(_redemptions.merchant_id == merchant_id)
    return [(row[0], int(row[1]), int(row[2])) for row in connection.execute(query)]


def refund_loops(
    connection: Connection, *, since: datetime, at_least: int, citizen_id: str | None, limit: int
) -> list[tuple[str, int]]:
    """(citizen, refunded voucher orders) for citizens at or above `at_least`."""
    citizen = marketing_claims.c.citizen_id
    orders = func.count(func.distinct(_redemptions.order_id))
    query = (
        select(citizen, orders)
        .select_from(marketing_redemptions.join(
            marketing_claims, marketing_claims.c.id == _redemptions.claim_id))
        .where(_redemptions.status == REVERSED, _redemptions.reversed_at >= since)
        .group_by(citizen)
        .having(orders >= at_least)
        .order_by(citizen)
        .limit(limit)
    )  # fmt: skip
    if citizen_id is not None:
        query = query.where(citizen == citizen_id)
    return [(row[0], int(row[1])) for row in connection.execute(query)]


def upsert_merchant_person(connection: Connection, person: MerchantPerson) -> MerchantPerson:
    """Bind the citizen to the merchant; registering them again keeps the first binding."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(marketing_merchant_people)
        .values(
            merchant_id=person.merchant_id, citizen_id=person.citizen_id,
            role=person.role.value, registered_at=person.registered_at,
        )
        .on_conflict_do_nothing()
    )  # fmt: skip
    row = connection.execute(
        select(marketing_merchant_people).where(
            _people.merchant_id == person.merchant_id, _people.citizen_id == person.citizen_id
        )
    ).one()
    return MerchantPerson(row.merchant_id, row.citizen_id, MerchantRole(row.role),
                          row.registered_at)  # fmt: skip


def own_people_orders(
    connection: Connection, *, since: datetime, at_least: int, merchant_id: str | None, limit: int
) -> list[tuple[str, int, frozenset[MerchantRole]]]:
    """(merchant, voucher orders its own people paid, their roles) since `since`, for each
    merchant at or above `at_least`; orders refunded or ended unpaid count too (the attempt is
    the signal). Two roles exist, so the least and the greatest name them all."""
    orders = func.count(func.distinct(_redemptions.order_id))
    query = (
        select(_redemptions.merchant_id, orders, func.min(_people.role), func.max(_people.role))
        .select_from(
            marketing_redemptions.join(
                marketing_claims, marketing_claims.c.id == _redemptions.claim_id
            ).join(
                marketing_merchant_people,
                (_people.merchant_id == _redemptions.merchant_id)
                & (_people.citizen_id == marketing_claims.c.citizen_id),
            )
        )
        .where(_redemptions.created_at >= since)
        .group_by(_redemptions.merchant_id)
        .having(orders >= at_least)
        .order_by(_redemptions.merchant_id)
        .limit(limit)
    )
    if merchant_id is not None:
        query = query.where(_redemptions.merchant_id == merchant_id)
    return [
        (row[0], int(row[1]), frozenset({MerchantRole(row[2]), MerchantRole(row[3])}))
        for row in connection.execute(query)
    ]
