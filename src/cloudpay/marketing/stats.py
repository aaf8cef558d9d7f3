"""Campaign statistics (效果统计): instruments by status, subsidy and the spending it brought,
broken down by district and merchant category (MCC), redemptions per business day, and the
whole as CSV for the people who report on a programme.

Leverage (杠杆率) is gross: order spend ÷ net subsidy, 2 decimals rounded half-up (as
`CampaignStats.leverage`).

The incremental view (`incremental_view`) asks what the subsidy added to what the redeeming
merchants would have sold anyway. For each merchant that redeemed the campaign's instruments:

    baseline_fen    = spend in the N days before `valid_from`  × campaign seconds ÷ (N × 86,400)
                      (its average daily spend × the campaign's days; rounded half-up, once)
    campaign_fen    = spend from `valid_from` to min(`valid_until`, now)
    incremental_fen = campaign_fen − baseline_fen            (negative when sales fell)
    incremental leverage = Σ incremental_fen ÷ Σ net subsidy, 2 decimals half-up

summed by merchant, district, MCC and for the campaign. "Spend" is every paid order of the
merchant (not only the voucher orders: the question is what the whole shop gained). N is
`baseline_days` (default 28). Spend lives in payments, which sits above marketing in the layers,
so the caller passes it in as a `MerchantSpend` function.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.marketing import stats_repository as repository
from cloudpay.marketing.model import CampaignStats
from cloudpay.marketing.service import campaign_stats, get_campaign

DEFAULT_BASELINE_DAYS = 28
MAX_BASELINE_DAYS = 366
SECONDS_PER_DAY = 86_400


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
    "expired", "orders", "subsidy_fen", "spend_fen", "leverage", "merchant_id", "baseline_fen",
    "campaign_spend_fen", "incremental_fen", "incremental_leverage",
)  # fmt: skip
_NO_INCREMENTAL = ["", "", "", "", ""]


def report_csv(report: CampaignReport, incremental: IncrementalView | None = None) -> str:
    """One row for the campaign, one per (district, MCC), one per business day; with the
    incremental view, one per campaign, merchant, district and MCC of it (`incremental_*`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(CSV_COLUMNS)
    total, claims = report.total, report.total.claims_by_status
    writer.writerow([
        report.campaign_id, "total", "", "", "", sum(claims.values()),
        claims.get("claimed", 0) + claims.get("restored", 0), claims.get("redeemed", 0),
        claims.get("expired", 0), total.redemptions, total.subsidy_fen,
        total.driven_amount_fen, _leverage(total), *_NO_INCREMENTAL,
    ])  # fmt: skip
    blank_counts = ["", "", "", ""]  # issued/claimed/redeemed/expired are campaign-wide
    for place in report.by_place:
        s = place.stats
        writer.writerow([
            report.campaign_id, "place", place.district, place.mcc, "", *blank_counts,
            s.redemptions, s.subsidy_fen, s.driven_amount_fen, _leverage(s), *_NO_INCREMENTAL,
        ])  # fmt: skip
    for day, orders in report.by_day:
        writer.writerow([
            report.campaign_id, "day", "", "", day.isoformat(), *blank_counts, orders, "", "", "",
            *_NO_INCREMENTAL,
        ])  # fmt: skip
    if incremental is not None:
        writer.writerows(_incremental_rows(incremental))
    return out.getvalue()


def _incremental_rows(view: IncrementalView) -> list[list[object]]:
    keyed = [("incremental_total", "", "", "", view.total)]
    keyed += [("incremental_merchant", "", "", m.key, m) for m in view.by_merchant]
    keyed += [("incremental_district", d.key, "", "", d) for d in view.by_district]
    keyed += [("incremental_mcc", "", m.key, "", m) for m in view.by_mcc]
    return [
        [view.campaign_id, dimension, district, mcc, "", "", "", "", "", "", line.subsidy_fen,
         "", "", merchant, line.baseline_fen, line.campaign_fen, line.incremental_fen,
         "" if line.leverage is None else str(line.leverage)]
        for dimension, district, mcc, merchant, line in keyed
    ]  # fmt: skip


def _leverage(stats: CampaignStats) -> str:
    return "" if stats.leverage is None else str(stats.leverage)


# --- the incremental view ---------------------------------------------------------------
class MerchantSpend(Protocol):
    """Paid spend in fen of each merchant in [start, end) (missing merchants: none)."""

    def __call__(
        self, uow: UnitOfWork, merchant_ids: Sequence[str], start: datetime, end: datetime
    ) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class Incremental:
    """One line of the incremental view: a merchant, a district, an MCC, or the campaign."""

    key: str
    subsidy_fen: int
    baseline_fen: int
    campaign_fen: int

    @property
    def incremental_fen(self) -> int:
        return self.campaign_fen - self.baseline_fen

    @property
    def leverage(self) -> Decimal | None:
        if self.subsidy_fen <= 0:
            return None
        ratio = Decimal(self.incremental_fen) / Decimal(self.subsidy_fen)
        return ratio.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class IncrementalView:
    campaign_id: str
    baseline_days: int
    baseline_from: datetime
    campaign_from: datetime
    campaign_until: datetime
    total: Incremental
    by_merchant: tuple[Incremental, ...]
    by_district: tuple[Incremental, ...]
    by_mcc: tuple[Incremental, ...]


def scaled_baseline_fen(before_fen: int, *, baseline_days: int, campaign_s: int) -> int:
    """Average daily spend over `baseline_days` × the campaign's length, half-up, in fen."""
    denominator = baseline_days * SECONDS_PER_DAY
    return (2 * before_fen * campaign_s + denominator) // (2 * denominator)


def incremental_view(
    uow: UnitOfWork,
    campaign_id: str,
    *,
    spend: MerchantSpend,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
) -> IncrementalView:
    """Spend above the redeeming merchants' own pre-campaign baseline ÷ subsidy (see above)."""
    if not 1 <= baseline_days <= MAX_BASELINE_DAYS:
        raise InvalidRequest(f"baseline_days is 1–{MAX_BASELINE_DAYS}", param="baseline_days")
    campaign = get_campaign(uow, campaign_id)
    start = campaign.windows.valid_from
    until = max(start, min(campaign.windows.valid_until, uow.clock.now()))
    baseline_from = start - timedelta(days=baseline_days)
    rows = repository.by_merchant(uow.connection, campaign_id)
    merchant_ids = [row[0] for row in rows]
    before = spend(uow, merchant_ids, baseline_from, start) if rows else {}
    during = spend(uow, merchant_ids, start, until) if rows and until > start else {}
    campaign_s = int((until - start).total_seconds())
    merchants: list[tuple[str, str, Incremental]] = []
    for merchant_id, district, mcc, _orders, subsidy, _spend in rows:
        baseline = scaled_baseline_fen(
            before.get(merchant_id, 0), baseline_days=baseline_days, campaign_s=campaign_s
        )
        line = Incremental(merchant_id, subsidy, baseline, during.get(merchant_id, 0))
        merchants.append((district, mcc, line))
    lines = [line for _, _, line in merchants]
    return IncrementalView(
        campaign_id, baseline_days, baseline_from, start, until, _sum("", lines),
        tuple(lines), _grouped((d, line) for d, _, line in merchants),
        _grouped((m, line) for _, m, line in merchants),
    )  # fmt: skip


def _sum(key: str, lines: Sequence[Incremental]) -> Incremental:
    return Incremental(
        key,
        sum(line.subsidy_fen for line in lines),
        sum(line.baseline_fen for line in lines),
        sum(line.campaign_fen for line in lines),
    )


def _grouped(keyed: Iterable[tuple[str, Incremental]]) -> tuple[Incremental, ...]:
    groups: dict[str, list[Incremental]] = {}
    for key, line in keyed:
        groups.setdefault(key, []).append(line)
    return tuple(_sum(key, groups[key]) for key in sorted(groups))
