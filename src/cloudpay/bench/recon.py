"""`cloudpay bench recon`: reconcile a generated million-row WeChat Pay trade bill.

The bill is written in the channel's real format (backtick CSV, summary, yuan) with mistakes
injected at known rows; the order table is generated to match it. The run reconciles the file
(strict read + our side + matching) and, in the same process, times polars reading the same
file and nothing else: the ratio between the two is the figure to watch, not seconds.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from cloudpay.reconciliation.bills import (
    WECHAT_DETAIL_COLUMNS,
    WECHAT_SUMMARY_COLUMNS,
    read_wechat_trade_bill,
)
from cloudpay.reconciliation.model import (
    ORDER_COLUMNS,
    REFUND_COLUMNS,
    BreakType,
    Outcome,
    expected_refund_fee,
    platform_frame,
    reconcile,
)

BILL_DATE = date(2026, 11, 24)
DAY_START_UTC = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai
MISTAKE_EVERY = 10_007  # one row in about ten thousand carries a mistake
# What each injected mistake must be found as (None: carried over, raised only tomorrow).
MISTAKES: dict[str, BreakType | None] = {
    "lost_notification": BreakType.MISSING_IN_PLATFORM,
    "wrong_amount": BreakType.AMOUNT_MISMATCH,
    "fee_off_by_one": BreakType.FEE_MISMATCH,
    "duplicate_row": BreakType.DUPLICATE,
    "unseen_refund": BreakType.MISSING_IN_PLATFORM,
    "missing_at_channel": BreakType.MISSING_IN_CHANNEL,
    "cross_midnight": None,
}


@dataclass(frozen=True)
class Generated:
    bill: bytes
    orders: pl.DataFrame
    refunds: pl.DataFrame
    expected: dict[str, str]  # key → break type of every injected mistake


def _base(rows: int) -> pl.DataFrame:
    index = pl.int_range(0, rows, dtype=pl.Int64, eager=True).alias("i")
    mistake_slot = pl.col("i") // MISTAKE_EVERY
    kinds = list(MISTAKES)
    return (
        pl.DataFrame(index)
        .with_columns(
            pl.format("ord_{}", pl.col("i").cast(pl.String).str.zfill(12)).alias("order_id"),
            ((pl.col("i") * 7_919) % 99_999 + 1).alias("amount"),
            (DAY_START_UTC + pl.duration(seconds=(pl.col("i") * 86_000) // rows)).alias("time"),
            pl.when(pl.col("i") % MISTAKE_EVERY == 17)
            .then(pl.lit(pl.Series(kinds)).get(mistake_slot % len(kinds)))
            .alias("mistake"),
        )
        .with_columns(((pl.col("amount") * 60 + 5_000) // 10_000).alias("route_cost_fen"))
    )


def _yuan(fen: pl.Expr, decimals: int = 2) -> pl.Expr:
    sign = pl.when(fen < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    cents = (fen.abs() % 100).cast(pl.String).str.zfill(2)
    tail = "0" * (decimals - 2)
    return pl.format("{}{}.{}" + tail, sign, (fen.abs() // 100).cast(pl.String), cents)


def _channel_rows(base: pl.DataFrame) -> pl.DataFrame:
    """The channel's view: payments with the mistakes applied, one refund per unseen refund."""
    mistake = pl.col("mistake")
    payments = base.filter(mistake.ne_missing("missing_at_channel")).with_columns(
        pl.lit("SUCCESS").alias("state"), pl.lit("0").alias("refund_id"),
        (pl.col("amount") + (mistake == "wrong_amount").fill_null(False).cast(pl.Int64))
        .alias("amount"),
        (pl.col("route_cost_fen") + (mistake == "fee_off_by_one").fill_null(False))
        .alias("fee"),
        pl.when(mistake == "cross_midnight")
        .then(pl.lit(datetime(2026, 11, 24, 15, 59, 58, tzinfo=UTC))).otherwise("time")
        .alias("time"),
    )  # fmt: skip
    duplicated = payments.filter(mistake == "duplicate_row")
    refunds = base.filter(mistake == "unseen_refund").with_columns(
        pl.lit("REFUND").alias("state"),
        pl.format("rfd_{}", pl.col("i").cast(pl.String).str.zfill(12)).alias("refund_id"),
        (pl.col("amount") // 2).alias("amount"),
        expected_refund_fee(pl.col("route_cost_fen"), pl.col("amount") // 2, pl.col("amount"))
        .alias("fee"),
    )  # fmt: skip
    columns = ["order_id", "refund_id", "state", "amount", "fee", "time"]
    return pl.concat([payments.select(columns), duplicated.select(columns),
                      refunds.select(columns)]).sort("time")  # fmt: skip


def _render(rows: pl.DataFrame) -> bytes:
    is_refund = pl.col("state") == "REFUND"
    zero = pl.lit("0.00")
    amount = _yuan(pl.col("amount"))
    values = {
        "交易时间": pl.col("time").dt.convert_time_zone("Asia/Shanghai")
        .dt.strftime("%Y-%m-%d %H:%M:%S"),
        "公众账号ID": pl.lit("wxbench00000000001"), "商户号": pl.lit("1900000001"),
        "特约商户号": pl.lit("0"), "设备号": pl.lit(""),
        "微信订单号": pl.format("42{}", pl.col("order_id").str.slice(4)),
        "商户订单号": pl.col("order_id"), "用户标识": pl.lit("oBench"),
        "交易类型": pl.lit("NATIVE"), "交易状态": pl.col("state"), "付款银行": pl.lit("OTHERS"),
        "货币种类": pl.lit("CNY"),
        "应结订单金额": pl.when(is_refund).then(zero).otherwise(amount),
        "代金券金额": zero,
        "微信退款单号": pl.when(is_refund).then(pl.format("50{}", pl.col("refund_id").str.slice(4)))
        .otherwise(pl.lit("0")),
        "商户退款单号": pl.col("refund_id"),
        "退款金额": pl.when(is_refund).then(amount).otherwise(zero), "充值券退款金额": zero,
        "退款类型": pl.when(is_refund).then(pl.lit("ORIGINAL")).otherwise(pl.lit("")),
        "退款状态": pl.when(is_refund).then(pl.lit("SUCCESS")).otherwise(pl.lit("")),
        "商品名称": pl.lit("bench"), "商户数据包": pl.lit(""),
        "手续费": _yuan(pl.col("fee"), decimals=5), "费率": pl.lit("0.60%"),
        "订单金额": pl.when(is_refund).then(zero).otherwise(amount),
        "申请退款金额": pl.when(is_refund).then(amount).otherwise(zero), "费率备注": pl.lit(""),
    }  # fmt: skip
    detail = rows.select(
        *(pl.format("`{}", values[name]).alias(name) for name in WECHAT_DETAIL_COLUMNS)
    )
    body = detail.write_csv(quote_style="never", line_terminator="\r\n").encode("utf-8")
    return b"\xef\xbb\xbf" + body + _summary(rows)


def _summary(rows: pl.DataFrame) -> bytes:
    refund = pl.col("state") == "REFUND"
    totals = rows.select(
        pl.len(),
        pl.col("amount").filter(~refund).sum().alias("paid"),
        pl.col("amount").filter(refund).sum().alias("refunded"),
        pl.col("fee").sum(),
    ).row(0)
    count, paid, refunded, fee = (int(value or 0) for value in totals)
    values = [str(count), _text(paid), _text(refunded), "0.00", _text(fee, 5), _text(paid),
              _text(refunded)]  # fmt: skip
    lines = [",".join(WECHAT_SUMMARY_COLUMNS), ",".join(f"`{value}" for value in values)]
    return "\r\n".join(lines).encode("utf-8") + b"\r\n"


def _text(fen: int, decimals: int = 2) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}" + "0" * (decimals - 2)


def _our_tables(base: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    mistake = pl.col("mistake")
    orders = base.filter(mistake.ne_missing("cross_midnight")).select(
        pl.col("order_id").alias("id"), "amount",
        pl.when(mistake == "lost_notification").then(pl.lit("paying"))
        .otherwise(pl.lit("succeeded")).alias("status"),
        "route_cost_fen", pl.format("42{}", pl.col("order_id").str.slice(4))
        .alias("channel_transaction_id"),
        pl.when(mistake == "lost_notification").then(None).otherwise("time").alias("paid_at"),
        pl.col("time").alias("created_at"),
    )  # fmt: skip
    refunds = pl.DataFrame(schema=REFUND_COLUMNS)
    return orders.cast(ORDER_COLUMNS), refunds  # type: ignore[arg-type]


def generate(rows: int) -> Generated:
    base = _base(rows)
    orders, refunds = _our_tables(base)
    injected = base.filter(pl.col("mistake").is_not_null()).select("i", "order_id", "mistake")
    expected: dict[str, str] = {}
    for index, order_id, mistake in injected.iter_rows():
        found_as = MISTAKES[mistake]
        if found_as is not None:
            key = f"rfd_{index:012d}" if mistake == "unseen_refund" else order_id
            expected[key] = found_as.value
    return Generated(_render(_channel_rows(base)), orders, refunds, expected)


def run_recon_bench(*, rows: int = 1_000_000, repeats: int = 3) -> dict[str, Any]:
    """Best of `repeats` interleaved runs of each: a shared machine's noise hits both alike."""
    generated = generate(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tradebill.csv"
        path.write_bytes(generated.bill)
        timings = [(_time_plain_read(path), *_time_reconcile(path, generated))
                   for _ in range(repeats)]  # fmt: skip
    read_s = min(t[0] for t in timings)
    total_s, rows_read, outcome = min((t[1:] for t in timings), key=lambda triple: triple[0])
    found = dict(outcome.breaks.select("key", "type").iter_rows())
    right = {key for key, kind in found.items() if generated.expected.get(key) == kind}
    return {
        "bench": "recon", "rows": rows_read, "bill_bytes": len(generated.bill),
        "repeats": repeats, "total_s": round(total_s, 3), "rows_per_s": round(rows_read / total_s),
        "plain_read_s": round(read_s, 3), "ratio_to_plain_read": round(total_s / read_s, 2),
        "mistakes_injected": len(generated.expected), "mistakes_found": len(right),
        "false_positives": len(set(found) - right), "missed": len(generated.expected) - len(right),
        "carried_over": outcome.carry_over.height, "matched": outcome.matched.height,
        "breaks_by_type": outcome.breaks_by_type(), "target_ratio": 3.0,
    }  # fmt: skip


def _time_reconcile(path: Path, generated: Generated) -> tuple[float, int, Outcome]:
    """The whole job on a file: strict read, our side, matching."""
    started = time.perf_counter()
    channel = read_wechat_trade_bill(path.read_bytes())
    ours = platform_frame(generated.orders, generated.refunds)
    outcome = reconcile(channel, ours, business_date=BILL_DATE)
    return time.perf_counter() - started, channel.height, outcome


def _time_plain_read(path: Path) -> float:
    """polars reading the same file as text columns, nothing checked or converted."""
    started = time.perf_counter()
    pl.read_csv(path, infer_schema=False, quote_char=None, truncate_ragged_lines=True)
    return time.perf_counter() - started
