"""Channel bill files read straight into the normalised frame (`model.FRAME_SCHEMA`), strictly.

The channels' own parsers (`channels/*/bill.py`) build one Python object a row: right for a
sandbox and a contract test, too slow for a million-row day. These readers parse the same
formats column-wise with polars and are as strict: an unknown layout, a malformed amount, a
ragged row or a summary that disagrees with the detail rows rejects the whole file, loudly.

WeChat Pay trade bill (交易账单, bill_type=ALL), per
https://pay.weixin.qq.com/docs/merchant/products/bill-download/format-trade.html :
a header of Chinese column names, one backtick-prefixed CSV row per payment (交易状态 SUCCESS)
and per refund (REFUND; REVOKED for a reversed payment code, read as the payment closed), a
summary header and row;
amounts in yuan with two decimals, the fee with five; CRLF line ends, optional UTF-8 BOM.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import polars as pl

from cloudpay.reconciliation.bills_alipay import read_alipay_trade_bill
from cloudpay.reconciliation.bills_common import BillRejected
from cloudpay.reconciliation.bills_unionpay import read_unionpay_bill
from cloudpay.reconciliation.model import FRAME_SCHEMA, SUCCESS, UTC_INSTANT, Kind, conform

MAX_BILL_BYTES = 512 * 1024 * 1024
WECHAT_DETAIL_COLUMNS: tuple[str, ...] = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
    "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额",
    "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
    "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)  # fmt: skip
WECHAT_SUMMARY_COLUMNS: tuple[str, ...] = (
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额",
    "订单总金额", "申请退款总金额",
)  # fmt: skip
_YUAN = r"^`-?\d+\.\d{2}$"
_FEE = r"^`-?\d+\.\d{5}$"
# A reversed payment code (撤销, REVOKED) is no refund of ours: the payment, closed.
_TRADE_STATES = {"SUCCESS": Kind.PAYMENT.value, "REFUND": Kind.REFUND.value,
                 "REVOKED": Kind.PAYMENT.value}  # fmt: skip
CLOSED = "closed"
_REFUND_STATES = {"SUCCESS": SUCCESS, "PROCESSING": "processing"}  # others: failed


# The columns reconciliation reads, plus the last one (its value proves a row is not short).
_READ_COLUMNS = (
    "交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号",
    "商户退款单号", "退款金额", "退款状态", "手续费", "订单金额", "申请退款金额",
    WECHAT_DETAIL_COLUMNS[-1],
)  # fmt: skip


def _lines_at_ends(data: bytes) -> tuple[list[str], list[str], list[str]]:
    """The header, the summary header and the summary row, found without reading the rest."""
    head_end = data.find(b"\n")
    tail = data[-4096:].rstrip(b"\r\n").rsplit(b"\n", 2)
    if head_end < 0 or len(tail) < 3:
        raise BillRejected("a bill is a header, detail rows, a summary header and row")
    try:
        header, summary_header, summary = (
            line.decode("utf-8").removeprefix("\ufeff").strip().split(",")
            for line in (data[:head_end], tail[1], tail[2])
        )
    except UnicodeDecodeError as error:
        raise BillRejected("bill is not UTF-8") from error
    return header, summary_header, [value.removeprefix("`") for value in summary]


def _read(data: bytes) -> tuple[pl.DataFrame, list[str]]:
    """The detail rows (values still backticked) and the summary row's values.

    The file is read in one pass, only the columns used: the summary header and row are
    shorter than the detail header, so polars pads them; they are the last two rows read.
    """
    if len(data) > MAX_BILL_BYTES:
        raise BillRejected(f"bill larger than {MAX_BILL_BYTES} bytes")
    header, summary_header, summary = _lines_at_ends(data)
    missing = set(WECHAT_DETAIL_COLUMNS) - set(header)
    if missing:
        raise BillRejected(f"bill header lacks {sorted(missing)}")
    if summary_header != list(WECHAT_SUMMARY_COLUMNS):
        raise BillRejected("the bill does not end with the trade bill's summary")
    if len(summary) != len(WECHAT_SUMMARY_COLUMNS) or not summary[0].isdigit():
        raise BillRejected("the summary row does not match its header")
    try:
        table = pl.read_csv(
            data, infer_schema=False, quote_char=None, encoding="utf8", columns=_READ_COLUMNS
        )
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        raise BillRejected(f"bill is not a well-formed CSV: {error}") from error
    first_column = header[0]
    ends = table.tail(2).get_column(first_column).to_list() if first_column in _READ_COLUMNS else []
    if table.height < 3 or ends != [WECHAT_SUMMARY_COLUMNS[0], f"`{summary[0]}"]:
        raise BillRejected("the summary is not the bill's last two lines")
    # No value may hold a comma (the format has no quoting), so the commas in the file are
    # exactly the separators: together with the last column present in every row (checked
    # with the formats), this proves every row has exactly the header's fields.
    separators = (len(header) - 1) * (table.height - 1) + (len(WECHAT_SUMMARY_COLUMNS) - 1) * 2
    if data.count(b",") != separators:
        raise BillRejected(
            f"the rows do not all have the header's {len(header)} fields "
            f"({data.count(b',')} separators where {separators} were expected)"
        )
    return table.head(-2), summary


def _check_formats(frame: pl.DataFrame) -> None:
    """Every value read is backticked and well formed; the last column too (polars pads a
    short row with nulls instead of failing, so a null there is a short row)."""
    ticked = [WECHAT_DETAIL_COLUMNS[-1], "交易时间", "微信订单号", "微信退款单号", "商户退款单号",
              "退款状态"]  # fmt: skip
    yuan_columns = ("订单金额", "退款金额", "应结订单金额", "申请退款金额")
    bad = frame.select(
        *(_bad(pl.col(c).str.contains(_YUAN)).alias(c) for c in yuan_columns),
        _bad(pl.col("手续费").str.contains(_FEE)).alias("手续费"),
        _bad(pl.col("交易状态").is_in([f"`{s}" for s in _TRADE_STATES])).alias("交易状态"),
        _bad(pl.col("商户订单号").str.len_bytes() > 1).alias("商户订单号"),
        *(_bad(pl.col(c).str.starts_with("`")).alias(f"{c} (field)") for c in ticked),
    ).row(0, named=True)
    wrong = [column for column, count in bad.items() if count != 0]
    if wrong:
        raise BillRejected(f"malformed or missing values in column(s) {wrong}")


def _bad(valid: pl.Expr) -> pl.Expr:
    """How many rows fail `valid`; a missing value (a short row) fails."""
    return valid.not_().fill_null(True).sum()


def _fen(column: str) -> pl.Expr:
    """A checked yuan value (`12.34`, or the fee's `0.07000`) in its smallest unit."""
    return pl.col(column).str.slice(1).str.replace(".", "", literal=True).cast(pl.Int64)


_TEXT_COLUMNS = ("交易时间", "微信订单号", "商户订单号", "交易状态", "微信退款单号",
                 "商户退款单号", "退款状态")  # fmt: skip


def _values(raw: pl.DataFrame) -> pl.DataFrame:
    """Texts without their backtick; amounts as integers (fen; the fee in 1e-5 yuan)."""
    return raw.select(
        pl.col(_TEXT_COLUMNS).str.slice(1),
        *(_fen(column) for column in ("应结订单金额", "退款金额", "订单金额", "手续费")),
    )


def _normalise(frame: pl.DataFrame) -> pl.DataFrame:
    kind = pl.col("交易状态").replace_strict(_TRADE_STATES, return_dtype=pl.String)
    is_revoked = pl.col("交易状态") == "REVOKED"
    is_payment = (kind == Kind.PAYMENT.value) & ~is_revoked
    refund_status = pl.col("退款状态").replace_strict(
        _REFUND_STATES, default="failed", return_dtype=pl.String
    )
    fee = pl.col("手续费")  # 1e-5 yuan = 1e-3 fen: rounded half away from zero to the fen
    try:
        traded_at = pl.col("交易时间").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S")
        return frame.select(
            kind.alias("kind"),
            pl.col("商户订单号").alias("order_id"),
            pl.when(is_payment | is_revoked).then(None)
            .when(pl.col("商户退款单号").is_in(["", "0"])).then(pl.col("微信退款单号"))
            .otherwise(pl.col("商户退款单号")).alias("refund_id"),
            pl.when(is_payment).then(pl.col("微信订单号")).otherwise(pl.col("微信退款单号"))
            .alias("channel_txn_id"),
            pl.when(is_payment).then(pl.col("订单金额")).otherwise(pl.col("退款金额"))
            .alias("amount_fen"),
            (fee.sign() * ((fee.abs() + 500) // 1000)).alias("fee_fen"),
            pl.when(is_payment).then(pl.lit(SUCCESS)).when(is_revoked).then(pl.lit(CLOSED))
            .otherwise(refund_status).alias("status"),
            # Asia/Shanghai is UTC+8 all year (no daylight saving since 1991): a fixed shift is
            # exact and three times cheaper than a time-zone conversion of a million rows.
            (traded_at - pl.duration(hours=8)).dt.replace_time_zone("UTC")
            .cast(UTC_INSTANT).alias("time"),
        )  # fmt: skip
    except pl.exceptions.PolarsError as error:
        raise BillRejected(f"malformed trade time: {error}") from error


def _check_summary(frame: pl.DataFrame, summary: list[str]) -> None:
    if len(summary) != len(WECHAT_SUMMARY_COLUMNS) or not summary[0].isdigit():
        raise BillRejected("the summary row does not match its header")
    if int(summary[0]) != frame.height:
        raise BillRejected(f"the summary counts {summary[0]} rows, the bill has {frame.height}")
    totals = frame.select(pl.col("应结订单金额", "退款金额", "手续费").sum()).row(0)
    stated = [_summary_amount(text) for text in (summary[1], summary[2], summary[4])]
    if [int(value or 0) for value in totals] != stated:
        raise BillRejected("the summary totals disagree with the detail rows")


def _summary_amount(text: str) -> int:
    """Summary amount in the unit of its detail column (fen, or 1e-5 yuan for the fee)."""
    if not (re.fullmatch(_YUAN[2:-1], text) or re.fullmatch(_FEE[2:-1], text)):
        raise BillRejected(f"summary amount malformed: {text!r}")
    return int(text.replace(".", ""))


def read_wechat_trade_bill(data: bytes) -> pl.DataFrame:
    """A WeChat Pay ALL trade bill (uncompressed) as the normalised channel frame."""
    raw, summary = _read(data)
    _check_formats(raw)
    values = _values(raw)
    _check_summary(values, summary)
    return conform(_net_revoked(_normalise(values)))


def _net_revoked(frame: pl.DataFrame) -> pl.DataFrame:
    """A reversed payment-code payment is listed as its SUCCESS row and a REVOKED row giving
    the money back: net, it did not happen. The REVOKED row (a `closed` payment) stands for
    both, so it matches the order we closed and is raised against one we think paid."""
    revoked = frame.filter(pl.col("status") == CLOSED).get_column("order_id")
    if revoked.is_empty():
        return frame
    reversed_payment = (pl.col("kind") == Kind.PAYMENT.value) & (pl.col("status") == SUCCESS)
    return frame.filter(~(reversed_payment & pl.col("order_id").is_in(revoked.implode())))


BillReader = Callable[[bytes], pl.DataFrame]
READERS: dict[str, BillReader] = {
    "wechat": read_wechat_trade_bill,
    "alipay": read_alipay_trade_bill,
    "unionpay": read_unionpay_bill,
}


def reader_for(channel: str) -> BillReader:
    try:
        return READERS[channel]
    except KeyError:
        raise BillRejected(
            f"no bill reader for channel {channel!r}", code="channel_unsupported", param="channel"
        ) from None


__all__ = [
    "FRAME_SCHEMA",
    "BillRejected",
    "read_alipay_trade_bill",
    "read_unionpay_bill",
    "read_wechat_trade_bill",
    "reader_for",
]
