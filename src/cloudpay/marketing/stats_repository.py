"""The SQL of campaign statistics: redemptions by place (district, merchant category) and by
business day. Net subsidy is what the budget paid less what refunds gave back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from cloudpay.marketing.tables import marketing_redemptions

_redemptions = marketing_redemptions.c
REDEEMED = "redeemed"
MAX_MERCHANTS = 2_000  # a city programme's redeeming merchants, in one report


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


def by_merchant(
    connection: Connection, campaign_id: str
) -> list[tuple[str, str, str, int, int, int]]:
    """(merchant, district, mcc, orders, net subsidy fen, order spend fen), by merchant. A
    merchant redeeming from more than one place is shown at the least (district, MCC)."""
    query = (
        select(
            _redemptions.merchant_id, func.min(func.coalesce(_redemptions.district, "")),
            func.min(func.coalesce(_redemptions.mcc, "")),
            func.count(func.distinct(_redemptions.order_id)),
            func.sum(_redemptions.discount_fen - _redemptions.reversed_fen),
            func.sum(_redemptions.order_amount_fen),
        )
        .where(_redemptions.campaign_id == campaign_id, _redemptions.status == REDEEMED)
        .group_by(_redemptions.merchant_id)
        .order_by(_redemptions.merchant_id)
        .limit(MAX_MERCHANTS)
    )  # fmt: skip
    return [(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in connection.execute(query)]
