"""Campaign statistics (效果统计): instruments by status, subsidy and the spending it brought,
broken down by district and merchant category (MCC), redemptions per business day, and the
whole as CSV for the people who report on a programme.

Leverage (杠杆率) is gross: order spend ÷ net subsidy, 2 decimals rounded half-up (as
`CampaignStats.leverage`). The incremental view (spend above the same merchants' baseline
before the campaign) needs the payments context's per-merchant history, and payments sits above
marketing in the layers (import-linter): it belongs to a caller above both, not here.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import business_date
from cloudpay.marketing import stats_repository as repository
from cloudpay.marketing.model import CampaignStats
from cloudpay.marketing.service import campaign_stats


@dataclass(frozen=True)
class PlaceStats:
    district: str
    mcc: str
    stats: CampaignStats


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    total: CampaignStats
    by_place: tuple[PlaceStats, ...]
    by_day: tuple[tuple[date, int], ...]  # business day (Asia/Shanghai), orders redeemed


def campaign_report(uow: UnitOfWork, campaign_id: str) -> CampaignReport:
    total = campaign_stats(uow, campaign_id)  # 404 for an unknown campaign
    places = tuple(
        PlaceStats(district, mcc, CampaignStats({}, orders, subsidy, spend))
        for district, mcc, orders, subsidy, spend in repository.by_place(
            uow.connection, campaign_id
        )
    )
    orders_by_day: Counter[date] = Counter()
    seen: set[str] = set()
    for redeemed_at, order_id in repository.redemption_times(uow.connection, campaign_id):
        if order_id not in seen:  # an order with two lines of one campaign counts once
            seen.add(order_id)
            orders_by_day[business_date(redeemed_at)] += 1
    days = tuple(sorted(orders_by_day.items()))
    return CampaignReport(campaign_id, total, places, days)


CSV_COLUMNS = (
    "campaign_id", "dimension", "district", "mcc", "day", "issued", "claimed", "redeemed",
    "expired", "orders", "subsidy_fen", "spend_fen", "leverage",
)  # fmt: skip


def report_csv(report: CampaignReport) -> str:
    """One row for the campaign, one per (district, MCC), one per business day."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(CSV_COLUMNS)
    total, claims = report.total, report.total.claims_by_status
    writer.writerow([
        report.campaign_id, "total", "", "", "", sum(claims.values()),
        claims.get("claimed", 0) + claims.get("restored", 0), claims.get("redeemed", 0),
        claims.get("expired", 0), total.redemptions, total.subsidy_fen,
        total.driven_amount_fen, _leverage(total),
    ])  # fmt: skip
    blank_counts = ["", "", "", ""]  # issued/claimed/redeemed/expired are campaign-wide
    for place in report.by_place:
        s = place.stats
        writer.writerow([
            report.campaign_id, "place", place.district, place.mcc, "", *blank_counts,
            s.redemptions, s.subsidy_fen, s.driven_amount_fen, _leverage(s),
        ])  # fmt: skip
    for day, orders in report.by_day:
        writer.writerow([
            report.campaign_id, "day", "", "", day.isoformat(), *blank_counts, orders, "", "", "",
        ])  # fmt: skip
    return out.getvalue()


def _leverage(stats: CampaignStats) -> str:
    return "" if stats.leverage is None else str(stats.leverage)
