"""The claim hot path's SQL: the person's claims, the stock shards, the claim row.

A first-come campaign's stock lives on `marketing_stock_shards` (see `stock_tables.py` for why
and for the exactness argument); the campaign row is not written by claims at all.
"""

from __future__ import annotations

import random
from datetime import date

from sqlalchemy import Connection, bindparam, func, insert, select, text, update

from cloudpay.marketing.model import Caps, Claim
from cloudpay.marketing.stock_tables import marketing_stock_shards
from cloudpay.marketing.tables import marketing_campaigns, marketing_claims

_campaigns = marketing_campaigns.c
_claims = marketing_claims.c
_shards = marketing_stock_shards.c
_INSERT_CLAIM = insert(marketing_claims)

SHARDS_PER_CAMPAIGN = 16  # enough that 50 concurrent claimers rarely wait for one another
_CLAIM_COUNTS = select(
    func.count(), func.count().filter(_claims.claim_day == bindparam("b_day"))
).where(
    _claims.campaign_id == bindparam("b_campaign"), _claims.citizen_id == bindparam("b_citizen")
)

# PostgreSQL: the whole claim in one round trip. A free shard (not full, not locked by another
# claim: SKIP LOCKED, starting at a random one so claimers spread out) gives one instrument if
# the person's caps allow it, and the claim row takes the person's next cap slots; nothing is
# written when any of it fails. Two claims of one person racing for a slot collide on the
# claim's unique keys, which the caller retries.
_CLAIM_ONE_PG = text("""
WITH shard AS (
    SELECT shard_no FROM marketing_stock_shards
    WHERE campaign_id = :b_campaign AND issued < capacity
    ORDER BY (shard_no + :b_offset) % :b_shards
    LIMIT 1 FOR UPDATE SKIP LOCKED
), mine AS (
    SELECT count(*) AS total, count(*) FILTER (WHERE claim_day = :b_day) AS today
    FROM marketing_claims WHERE campaign_id = :b_campaign AND citizen_id = :b_citizen
), taken AS (
    UPDATE marketing_stock_shards AS s SET issued = s.issued + 1
    FROM shard, mine
    WHERE s.campaign_id = :b_campaign AND s.shard_no = shard.shard_no
      AND mine.total < :b_cap_total AND mine.today < :b_cap_day
    RETURNING mine.total, mine.today
)
INSERT INTO marketing_claims (id, campaign_id, citizen_id, status, max_value_fen, claim_day,
                              person_slot, day_slot, order_id, created_at, updated_at)
SELECT :b_id, :b_campaign, :b_citizen, :b_status, :b_value, :b_day, total + 1, today + 1,
       NULL, :b_now, :b_now
FROM taken
RETURNING id
""")

# SQLite (one writer at a time, so no lock to skip): the same shard choice, caps counted first.
_TAKE_FROM_SHARD = text("""
UPDATE marketing_stock_shards SET issued = issued + 1
WHERE campaign_id = :b_campaign AND shard_no = (
    SELECT shard_no FROM marketing_stock_shards
    WHERE campaign_id = :b_campaign AND issued < capacity
    ORDER BY (shard_no + :b_offset) % :b_shards LIMIT 1)
""")


def count_claims(
    connection: Connection, campaign_id: str, citizen_id: str, day: date
) -> tuple[int, int]:
    """The person's claims of this campaign: in total, and on `day`."""
    params = {"b_campaign": campaign_id, "b_citizen": citizen_id, "b_day": day}
    total, today = connection.execute(_CLAIM_COUNTS, params).one()
    return int(total), int(today)


def claim_from_stock(connection: Connection, claim: Claim, *, day: date, caps: Caps) -> bool:
    """Take one instrument from a shard and write the claim in the person's next cap slots,
    or write nothing and answer False (stock, budget or caps used up, or every free shard
    busy: the caller finds out which). A lost cap-slot race raises `IntegrityError`."""
    params = {
        "b_campaign": claim.campaign_id, "b_citizen": claim.citizen_id, "b_day": day,
        "b_offset": random.randrange(SHARDS_PER_CAMPAIGN), "b_shards": SHARDS_PER_CAMPAIGN,
        "b_cap_total": caps.per_person_total, "b_cap_day": caps.per_person_per_day,
        "b_id": claim.id, "b_status": claim.status.value, "b_value": claim.max_value_fen,
        "b_now": claim.created_at,
    }  # fmt: skip
    if connection.dialect.name == "postgresql":
        return connection.execute(_CLAIM_ONE_PG, params).first() is not None
    total, today = count_claims(connection, claim.campaign_id, claim.citizen_id, day)
    if total >= caps.per_person_total or today >= caps.per_person_per_day:
        return False
    if connection.execute(_TAKE_FROM_SHARD, params).rowcount != 1:
        return False
    insert_claim(connection, claim, day=day, person_slot=total + 1, day_slot=today + 1)
    return True


def insert_claim(
    connection: Connection, claim: Claim, *, day: date, person_slot: int, day_slot: int
) -> None:
    connection.execute(
        _INSERT_CLAIM,
        {
            "id": claim.id, "campaign_id": claim.campaign_id, "citizen_id": claim.citizen_id,
            "status": claim.status.value, "max_value_fen": claim.max_value_fen,
            "claim_day": day, "person_slot": person_slot, "day_slot": day_slot,
            "order_id": None, "created_at": claim.created_at, "updated_at": claim.created_at,
        },
    )  # fmt: skip


def provision_stock(connection: Connection, campaign_id: str) -> None:
    """Raise the shards' capacity to what the stock and the funded budget now cover (less what
    the campaign row itself issued), spread evenly. Capacity never falls: funding only adds."""
    row = connection.execute(
        select(_campaigns.stock, _campaigns.funded_fen, _campaigns.max_value_fen,
               _campaigns.issued).where(_campaigns.id == campaign_id)
    ).one()  # fmt: skip
    affordable = row.funded_fen // row.max_value_fen if row.max_value_fen > 0 else row.stock
    target = max(min(row.stock, affordable) - row.issued, 0)
    capacities = dict(
        connection.execute(
            select(_shards.shard_no, _shards.capacity).where(_shards.campaign_id == campaign_id)
        ).all()
    )
    missing = target - sum(capacities.values())
    if missing <= 0:
        return
    if not capacities:
        count = min(SHARDS_PER_CAMPAIGN, missing)
        connection.execute(
            insert(marketing_stock_shards),
            [{"campaign_id": campaign_id, "shard_no": n, "capacity": part, "issued": 0}
             for n, part in enumerate(_even_parts(missing, count))],
        )  # fmt: skip
        return
    parts = _even_parts(missing, len(capacities))
    for shard_no, part in zip(sorted(capacities), parts, strict=True):
        connection.execute(
            update(marketing_stock_shards)
            .where(_shards.campaign_id == campaign_id, _shards.shard_no == shard_no)
            .values(capacity=_shards.capacity + part)
        )


def close_stock(connection: Connection, campaign_id: str) -> None:
    """No shard issues again: capacity falls to what each has issued. Waits for claims that
    hold a shard, so their claims are committed (and visible) before the campaign ends."""
    connection.execute(
        update(marketing_stock_shards)
        .where(_shards.campaign_id == campaign_id)
        .values(capacity=_shards.issued)
    )


def _even_parts(total: int, count: int) -> list[int]:
    base, extra = divmod(total, count)
    return [base + (1 if n < extra else 0) for n in range(count)]
