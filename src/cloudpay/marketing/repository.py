"""The marketing context's SQL. Rows become model records here and nowhere else.

Locks (`FOR UPDATE`) are taken on PostgreSQL only: on SQLite `BEGIN IMMEDIATE` has already
made the transaction the only writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, insert, select, update

from cloudpay.marketing.model import (
    USABLE_CLAIM_STATUSES,
    Audience,
    Campaign,
    CampaignKind,
    CampaignStats,
    CampaignStatus,
    Caps,
    Claim,
    ClaimStatus,
    DiscountRule,
    FunderKind,
    Instrument,
    Issuance,
    MerchantScope,
    RedPacket,
    RedPacketShare,
    RedPacketStatus,
    RuleKind,
    SplitMode,
    Windows,
)
from cloudpay.marketing.stock_tables import marketing_stock_shards
from cloudpay.marketing.tables import (
    marketing_campaign_people,
    marketing_campaigns,
    marketing_claims,
    marketing_red_packet_parts,
    marketing_red_packets,
    marketing_redemptions,
)

_campaigns = marketing_campaigns.c
_claims = marketing_claims.c
_redemptions = marketing_redemptions.c


def _locked(connection: Connection, query: Select[Any]) -> Select[Any]:
    return query if connection.dialect.name == "sqlite" else query.with_for_update()


# --- campaigns --------------------------------------------------------------------------
def insert_campaign(connection: Connection, campaign: Campaign, people: Sequence[str]) -> None:
    rule, windows, scope = campaign.rule, campaign.windows, campaign.scope
    connection.execute(
        insert(marketing_campaigns).values(
            id=campaign.id, name=campaign.name, funder_kind=campaign.funder_kind.value,
            funder_id=campaign.funder_id, kind=campaign.kind.value, currency=campaign.currency,
            rule_kind=rule.kind.value, discount_fen=rule.discount_fen,
            threshold_fen=rule.threshold_fen, percent_bp=rule.percent_bp, cap_fen=rule.cap_fen,
            max_value_fen=rule.max_value_fen, stock=campaign.stock, issued=0, committed_fen=0,
            funded_fen=0, returned_fen=0, claim_starts_at=windows.claim_starts_at,
            claim_ends_at=windows.claim_ends_at, valid_from=windows.valid_from,
            valid_until=windows.valid_until, eligible_merchant_ids=sorted(scope.merchant_ids),
            eligible_mccs=sorted(scope.mccs), eligible_districts=sorted(scope.districts),
            audience=campaign.audience.value, per_person_per_day=campaign.caps.per_person_per_day,
            per_person_total=campaign.caps.per_person_total, stackable=campaign.stackable,
            status=campaign.status.value, budget_account_id=None,
            created_at=campaign.created_at, updated_at=campaign.created_at,
            issuance=campaign.issuance.value,
        )
    )  # fmt: skip
    if people:
        connection.execute(
            insert(marketing_campaign_people),
            [{"campaign_id": campaign.id, "citizen_id": person} for person in people],
        )


def _rule(row: Any) -> DiscountRule:
    return DiscountRule(
        RuleKind(row.rule_kind), row.discount_fen, row.threshold_fen, row.percent_bp, row.cap_fen
    )


def _scope(row: Any) -> MerchantScope:
    return MerchantScope(
        frozenset(row.eligible_merchant_ids),
        frozenset(row.eligible_mccs),
        frozenset(row.eligible_districts),
    )


def _campaign(row: Any) -> Campaign:
    # First-come campaigns count issues on their stock shards, the lottery on the row itself.
    shard_issued = int(row.shard_issued)
    return Campaign(
        id=row.id, name=row.name, funder_kind=FunderKind(row.funder_kind),
        funder_id=row.funder_id, kind=CampaignKind(row.kind), currency=row.currency,
        rule=_rule(row), stock=row.stock, issued=row.issued + shard_issued,
        committed_fen=row.committed_fen + shard_issued * row.max_value_fen,
        funded_fen=row.funded_fen,
        windows=Windows(row.claim_starts_at, row.claim_ends_at, row.valid_from, row.valid_until),
        scope=_scope(row), audience=Audience(row.audience),
        caps=Caps(row.per_person_per_day, row.per_person_total), stackable=row.stackable,
        status=CampaignStatus(row.status), budget_account_id=row.budget_account_id,
        created_at=row.created_at, returned_fen=row.returned_fen,
        issuance=Issuance(row.issuance), draw_seed=row.draw_seed, drawn_at=row.drawn_at,
    )  # fmt: skip


# Every claim reads its campaign: built once, values bound per execution (building a statement
# costs more than running it on SQLite). A first-come campaign's issues live on its stock shards.
_SHARD_ISSUED = (
    select(func.coalesce(func.sum(marketing_stock_shards.c.issued), 0))
    .where(marketing_stock_shards.c.campaign_id == _campaigns.id)
    .scalar_subquery()
    .label("shard_issued")
)
_CAMPAIGNS = select(marketing_campaigns, _SHARD_ISSUED)
_LOAD_CAMPAIGN = _CAMPAIGNS.where(_campaigns.id == bindparam("b_campaign"))


def load_campaign(
    connection: Connection, campaign_id: str, *, lock: bool = False
) -> Campaign | None:
    query = _locked(connection, _LOAD_CAMPAIGN) if lock else _LOAD_CAMPAIGN
    row = connection.execute(query, {"b_campaign": campaign_id}).first()
    return None if row is None else _campaign(row)


def list_campaigns(
    connection: Connection, *, status: CampaignStatus | None, limit: int, starting_after: str | None
) -> list[Campaign]:
    query = _CAMPAIGNS.order_by(_campaigns.id.desc()).limit(limit)
    if status is not None:
        query = query.where(_campaigns.status == status.value)
    if starting_after is not None:
        query = query.where(_campaigns.id < starting_after)
    return [_campaign(row) for row in connection.execute(query)]


def record_funding(
    connection: Connection,
    campaign_id: str,
    *,
    amount_fen: int,
    budget_account_id: str,
    now: datetime,
) -> None:
    connection.execute(
        update(marketing_campaigns)
        .where(_campaigns.id == campaign_id)
        .values(
            funded_fen=_campaigns.funded_fen + amount_fen,
            budget_account_id=budget_account_id,
            status=CampaignStatus.ACTIVE.value,
            updated_at=now,
        )
    )


def record_end(
    connection: Connection, campaign_id: str, *, returned_fen: int, now: datetime
) -> None:
    connection.execute(
        update(marketing_campaigns)
        .where(_campaigns.id == campaign_id)
        .values(
            status=CampaignStatus.ENDED.value,
            returned_fen=_campaigns.returned_fen + returned_fen,
            updated_at=now,
        )
    )


def campaigns_due_to_end(connection: Connection, *, now: datetime, limit: int) -> list[str]:
    query = (
        select(_campaigns.id)
        .where(_campaigns.status != CampaignStatus.ENDED.value, _campaigns.valid_until <= now)
        .order_by(_campaigns.valid_until)
        .limit(limit)
    )
    return list(connection.execute(query).scalars())


def is_listed(connection: Connection, campaign_id: str, citizen_id: str) -> bool:
    query = select(marketing_campaign_people.c.citizen_id).where(
        marketing_campaign_people.c.campaign_id == campaign_id,
        marketing_campaign_people.c.citizen_id == citizen_id,
    )
    return connection.execute(query).first() is not None


# --- claims and instruments -------------------------------------------------------------
def _claim(row: Any) -> Claim:
    return Claim(
        row.id, row.campaign_id, row.citizen_id, ClaimStatus(row.status), row.max_value_fen,
        row.created_at, row.order_id,
    )  # fmt: skip


def load_claim(connection: Connection, claim_id: str) -> Claim | None:
    row = connection.execute(select(marketing_claims).where(_claims.id == claim_id)).first()
    return None if row is None else _claim(row)


def wallet_claims(
    connection: Connection, citizen_id: str, *, limit: int
) -> list[tuple[Claim, Campaign]]:
    """The citizen's claims, newest first, each with its campaign."""
    query = (
        select(marketing_claims)
        .where(_claims.citizen_id == citizen_id)
        .order_by(_claims.id.desc())
        .limit(limit)
    )
    claims = [_claim(row) for row in connection.execute(query)]
    campaign_ids = sorted({claim.campaign_id for claim in claims})
    campaigns = {
        row.id: _campaign(row)
        for row in connection.execute(_CAMPAIGNS.where(_campaigns.id.in_(campaign_ids)))
    }
    return [(claim, campaigns[claim.campaign_id]) for claim in claims]


def usable_instruments(
    connection: Connection,
    citizen_id: str,
    *,
    claim_ids: Sequence[str] | None,
    limit: int,
    lock: bool,
) -> list[Instrument]:
    """The citizen's claims that could pay now; `lock` keeps two orders off one claim."""
    query = (
        select(marketing_claims.c.id.label("claim_id"), marketing_campaigns)
        .join(marketing_campaigns, _campaigns.id == _claims.campaign_id)
        .where(
            _claims.citizen_id == citizen_id,
            _claims.status.in_([s.value for s in USABLE_CLAIM_STATUSES]),
            _campaigns.status == CampaignStatus.ACTIVE.value,
        )
        .order_by(_claims.id)
        .limit(limit)
    )
    if claim_ids is not None:
        query = query.where(_claims.id.in_(list(claim_ids)))
    if lock and connection.dialect.name != "sqlite":
        query = query.with_for_update(of=marketing_claims)
    return [
        Instrument(
            row.claim_id,
            row.id,
            row.currency,
            _rule(row),
            _scope(row),
            row.valid_from,
            row.valid_until,
            row.stackable,
        )
        for row in connection.execute(query)
    ]


def set_claim_status(
    connection: Connection,
    claim_id: str,
    *,
    status: ClaimStatus,
    expected: Sequence[ClaimStatus],
    order_id: str | None,
    now: datetime,
) -> bool:
    result = connection.execute(
        update(marketing_claims)
        .where(_claims.id == claim_id, _claims.status.in_([s.value for s in expected]))
        .values(status=status.value, order_id=order_id, updated_at=now)
    )
    return result.rowcount == 1


def expire_claims(connection: Connection, campaign_id: str, *, now: datetime) -> int:
    result = connection.execute(
        update(marketing_claims)
        .where(
            _claims.campaign_id == campaign_id,
            _claims.status.in_([s.value for s in USABLE_CLAIM_STATUSES]),
        )
        .values(status=ClaimStatus.EXPIRED.value, updated_at=now)
    )
    return int(result.rowcount or 0)


# --- redemptions ------------------------------------------------------------------------
def campaign_stats(connection: Connection, campaign_id: str) -> CampaignStats:
    by_status = connection.execute(
        select(_claims.status, func.count())
        .where(_claims.campaign_id == campaign_id)
        .group_by(_claims.status)
    ).all()
    count, subsidy, driven = connection.execute(
        select(
            func.count(),
            func.coalesce(func.sum(_redemptions.discount_fen - _redemptions.reversed_fen), 0),
            func.coalesce(func.sum(_redemptions.order_amount_fen), 0),
        ).where(_redemptions.campaign_id == campaign_id, _redemptions.status == "redeemed")
    ).one()
    return CampaignStats(
        {status: int(n) for status, n in by_status}, int(count), int(subsidy), int(driven)
    )


def insert_redemptions(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(marketing_redemptions), list(rows))


def load_redemptions(connection: Connection, order_id: str, *, lock: bool = False) -> list[Any]:
    query = (
        select(marketing_redemptions)
        .where(_redemptions.order_id == order_id)
        .order_by(_redemptions.line_no)
    )
    return list(connection.execute(_locked(connection, query) if lock else query))


def record_reversal(
    connection: Connection,
    order_id: str,
    line_no: int,
    *,
    reversed_fen: int,
    status: str,
    now: datetime,
) -> None:
    connection.execute(
        update(marketing_redemptions)
        .where(_redemptions.order_id == order_id, _redemptions.line_no == line_no)
        .values(reversed_fen=reversed_fen, status=status, reversed_at=now)
    )


# --- red packets ------------------------------------------------------------------------
_packets = marketing_red_packets.c
_parts = marketing_red_packet_parts.c


def insert_red_packet(connection: Connection, packet: RedPacket, parts: Sequence[int]) -> None:
    connection.execute(
        insert(marketing_red_packets).values(
            id=packet.id, funder_account_id=packet.funder_account_id,
            account_id=packet.account_id, currency=packet.currency, mode=packet.mode.value,
            total_fen=packet.total_fen, count=packet.count, max_part_fen=packet.max_part_fen,
            claimed_count=0, claimed_fen=0, returned_fen=0, status=packet.status.value,
            claim_ends_at=packet.claim_ends_at, return_due_at=packet.return_due_at,
            created_at=packet.created_at, updated_at=packet.created_at,
        )
    )  # fmt: skip
    connection.execute(
        insert(marketing_red_packet_parts),
        [
            {"red_packet_id": packet.id, "part_no": number, "amount_fen": amount}
            for number, amount in enumerate(parts, start=1)
        ],
    )


def _red_packet(row: Any) -> RedPacket:
    return RedPacket(
        id=row.id, funder_account_id=row.funder_account_id, account_id=row.account_id,
        currency=row.currency, mode=SplitMode(row.mode), total_fen=row.total_fen,
        count=row.count, max_part_fen=row.max_part_fen, claimed_count=row.claimed_count,
        claimed_fen=row.claimed_fen, returned_fen=row.returned_fen,
        status=RedPacketStatus(row.status), claim_ends_at=row.claim_ends_at,
        return_due_at=row.return_due_at, created_at=row.created_at,
    )  # fmt: skip


def load_red_packet(
    connection: Connection, red_packet_id: str, *, lock: bool = False
) -> RedPacket | None:
    query = select(marketing_red_packets).where(_packets.id == red_packet_id)
    row = connection.execute(_locked(connection, query) if lock else query).first()
    return None if row is None else _red_packet(row)


def _share(row: Any) -> RedPacketShare:
    return RedPacketShare(
        row.red_packet_id, row.part_no, row.amount_fen, row.citizen_id, row.claimed_at
    )


def find_share(
    connection: Connection, red_packet_id: str, citizen_id: str
) -> RedPacketShare | None:
    query = select(marketing_red_packet_parts).where(
        _parts.red_packet_id == red_packet_id, _parts.citizen_id == citizen_id
    )
    row = connection.execute(query).first()
    return None if row is None else _share(row)


def list_shares(connection: Connection, red_packet_id: str) -> list[RedPacketShare]:
    query = (
        select(marketing_red_packet_parts)
        .where(_parts.red_packet_id == red_packet_id, _parts.citizen_id.is_not(None))
        .order_by(_parts.part_no)
    )
    return [_share(row) for row in connection.execute(query)]


def next_unclaimed_part(connection: Connection, red_packet_id: str) -> tuple[int, int] | None:
    """The lowest-numbered share nobody has claimed: (part_no, amount_fen)."""
    query = (
        select(_parts.part_no, _parts.amount_fen)
        .where(_parts.red_packet_id == red_packet_id, _parts.citizen_id.is_(None))
        .order_by(_parts.part_no)
        .limit(1)
    )
    row = connection.execute(query).first()
    return None if row is None else (row.part_no, row.amount_fen)


def take_part(
    connection: Connection, red_packet_id: str, part_no: int, citizen_id: str, now: datetime
) -> bool:
    """Give the share to the citizen if it is still free (a conditional update: exact)."""
    result = connection.execute(
        update(marketing_red_packet_parts)
        .where(
            _parts.red_packet_id == red_packet_id,
            _parts.part_no == part_no,
            _parts.citizen_id.is_(None),
        )
        .values(citizen_id=citizen_id, claimed_at=now)
    )
    return result.rowcount == 1


def record_share_claimed(
    connection: Connection, red_packet_id: str, amount_fen: int, now: datetime
) -> None:
    connection.execute(
        update(marketing_red_packets)
        .where(_packets.id == red_packet_id)
        .values(
            claimed_count=_packets.claimed_count + 1,
            claimed_fen=_packets.claimed_fen + amount_fen,
            updated_at=now,
        )
    )


def red_packets_due_for_return(connection: Connection, *, now: datetime, limit: int) -> list[str]:
    query = (
        select(_packets.id)
        .where(
            _packets.status == RedPacketStatus.OPEN.value,
            _packets.return_due_at <= now,
        )
        .order_by(_packets.return_due_at, _packets.id)
        .limit(limit)
    )
    return list(connection.execute(query).scalars())


def record_red_packet_return(
    connection: Connection, red_packet_id: str, *, returned_fen: int, now: datetime
) -> None:
    connection.execute(
        update(marketing_red_packets)
        .where(_packets.id == red_packet_id)
        .values(status=RedPacketStatus.RETURNED.value, returned_fen=returned_fen, updated_at=now)
    )
