"""The SQL of campaign statistics: redemptions by place (district, merchant category) and by
business day. Net subsidy is what the budget paid less what refunds gave back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from cloudpay.marketing.tables import marketing_redemptions

_redemptions = marketing_redemptions.c
REDEEMED = "redeemed"


def by_place(connection: Connection, campaign_id: str) -> list[tuple[str, str, int, int, int]]:
    """(district, mcc, orders, net subsidy fen, order spend fen), by district then MCC."""
    district = func.coalesce(_redemptions.district, "")
    mcc = func.coalesce(_redemptions.mcc, "")
    query = (
        select(
            district, mcc, func.count(func.distinct(_redemptions.order_id)),
            func.sum(_redemptions.discount_fen - _redemptions.reversed_fen),
            func.sum(_redemptions.order_amount_fen),
        )
        .where(_redemptions.campaign_id == campaign_id, _redemptions.status == REDEEMED)
        .group_by(district, mcc)
        .order_by(district, mcc)
    )  # fmt: skip
    return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in connection.execute(query)]


def redemption_times(connection: Connection, campaign_id: str) -> list[tuple[datetime, str]]:
    """(redeemed at, order id) of the campaign's live redemptions, oldest first."""
    query = (
        select(_redemptions.created_at, _redemptions.order_id)
        .where(_redemptions.campaign_id == campaign_id, _redemptions.status == REDEEMED)
        .order_by(_redemptions.created_at)
    )
    return [(row[0], row[1]) for row in connection.execute(query)]
