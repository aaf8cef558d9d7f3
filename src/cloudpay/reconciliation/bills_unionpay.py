"""UnionPay's merchant reconciliation file (全渠道商户对账文件, ZM file) read column-wise into
the normalised frame.

The format (the same facts as `cloudpay.channels.unionpay.bill`, which renders the
sandbox's files and holds the contract tests' parser, with its sources: 《全渠道平台接入接口规范
第3部分 文件接口》 6.1 as tabulated by integrators, and acp_sdk's `parseZMFile` widths): the zip
fileTransfer.do serves holds `INN{yyMMdd}{batch}ZM_{merId}`, one GBK line a transaction of
42 fixed-width fields separated by one space, CRLF line ends. The file has no header and no
totals; strictness is in the shape: a bad zip, a missing or extra member, a file that is not
GBK, a line of the wrong length or without its line end (truncated), a missing separator,
an unknown record (trade code and txnType disagree), a malformed amount, a settlement amount
that is not the amount net of the fee — each rejects the whole file with `BillRejected`.

Mapping: txnType 01 (消费, trade code S22) is a payment, 04 (退货, S30) a refund, 31 (消费撤销,
S31) the void of a same-day payment — the payment as `closed`, so it matches an order we
closed and is raised against one we think paid. Our ids travel as UnionPay orderIds without
the underscore (`ord_01J…` → `ord01J…`; a void's own id is the order's with the channel's
`VOID_SUFFIX`: `ord_01J…_v` → `ord01J…v`) and are restored here; a void's orderId names the
order it voids. Amounts are fen; the merchant fee is `C`/`D` (credit/debit to the merchant)
and 12 digits: a payment's fee is debited, a refund's returned. The time is txnTime
(MMddHHmmss, Beijing): the year is the settle day's, or the one before for a December line
in a January file.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import polars as pl

from cloudpay.channels.unionpay import VOID_SUFFIX, bill_format
from cloudpay.reconciliation.bills_common import (
    BillRejected,
    beijing_to_utc,
    reject_bad_columns,
    zip_members,
)
from cloudpay.reconciliation.model import SUCCESS, Kind, conform

FILE_ENCODING = "gbk"
# The 42 fields' widths in bytes, in order (the channel's renderer holds them); the ones read
# are named (`_FIELDS`).
FIELD_WIDTHS: tuple[int, ...] = tuple(width for _, width in bill_format.FIELD_WIDTHS)
LINE_BYTES = bill_format.LINE_BYTES  # one space between fields
_READ = ("trade_code", "txn_time", "txn_amount", "query_id", "order_id", "merchant_fee",
         "settle_amount", "txn_type", "orig_query_id")  # fmt: skip
_FIELD_INDEXES = {
    name: at for at, (name, _) in enumerate(bill_format.FIELD_WIDTHS) if name in _READ
}
TRADE_CODES = bill_format.TRADE_CODES  # txnType → 交易代码
_ENTRY = re.compile(r"^INN(\d{6})\d{2}(ZM|ZME)_[0-9A-Za-z]{1,15}$")
_PAYMENT, _VOID, _REFUND = "01", "31", "04"
# Our id without its underscore: prefix and Crockford body (upper case, so a lower-case suffix
# of a derived id can never be read as part of it).
_OUR_NUMBER = r"^([a-z]{2,8})([0-9A-HJKMNP-TV-Z]{26})$"
_DERIVED_NUMBER = r"^([a-z]{2,8})([0-9A-HJKMNP-TV-Z]{26})([a-z]{1,8})$"


def _starts() -> list[int]:
    starts, position = [], 0
    for width in FIELD_WIDTHS:
        starts.append(position)
        position += width + 1
    return starts


_STARTS = _starts()
_FIELDS = {name: (_STARTS[at], FIELD_WIDTHS[at]) for name, at in _FIELD_INDEXES.items()}


def read_unionpay_bill(data: bytes) -> pl.DataFrame:
    """A UnionPay reconciliation zip (as `UnionPayChannel.download_bill` returns it)."""
    settle_day, content = _zm_file(data)
    lines = _lines(content)
    _check_shape(lines)
    raw = lines.select(
        pl.col("line").str.slice(start, width).str.strip_chars(" ").alias(name)
        for name, (start, width) in _FIELDS.items()
    )
    _check_formats(raw)
    _check_settlement(raw)
    return conform(_normalise(raw, settle_day))


def _zm_file(data: bytes) -> tuple[date, bytes]:
    members = zip_members(data)
    entries = {name: _ENTRY.fullmatch(name) for name in members}
    unknown = [name for name, found in entries.items() if found is None]
    zm = [name for name, found in entries.items() if found and found.group(2) == "ZM"]
    if unknown or len(zm) != 1:
        raise BillRejected(f"the zip must hold one ZM file (and ZME files), not {sorted(members)}")
    match = entries[zm[0]]
    assert match is not None
    try:
        settle_day = datetime.strptime(match.group(1), "%y%m%d").date()
    except ValueError as error:
        raise BillRejected(f"the ZM file's name has no valid date: {zm[0]}") from error
    return settle_day, members[zm[0]]


def _lines(content: bytes) -> pl.DataFrame:
    if content and not content.endswith(b"\r\n"):
        raise BillRejected("the ZM file is truncated: its last line has no line end")
    try:
        content.decode(FILE_ENCODING)
    except UnicodeDecodeError as error:
        raise BillRejected(f"the ZM file is not GBK-encoded: {error}") from error
    # Latin-1 maps each byte to one character, so the fixed byte offsets are string offsets.
    return pl.DataFrame({"line": content.decode("latin-1").split("\r\n")[:-1]})


def _check_shape(lines: pl.DataFrame) -> None:
    line = pl.col("line")
    short = lines.filter(line.str.len_chars() != LINE_BYTES)
    if short.height:
        raise BillRejected(
            f"{short.height} line(s) are not {LINE_BYTES} bytes long (the first has "
            f"{short.get_column('line').str.len_chars().item(0)})"
        )
    separators = [start - 1 for start in _STARTS[1:]]
    reject_bad_columns(lines, {
        "separators": pl.all_horizontal(line.str.slice(at, 1) == " " for at in separators),
    })  # fmt: skip


def _check_formats(raw: pl.DataFrame) -> None:
    signed = r"^[CD]\d{12}$"
    known = pl.concat_str("txn_type", "trade_code").is_in(
        [txn_type + code for txn_type, code in TRADE_CODES.items()]
    )
    reject_bad_columns(raw, {
        "trade_code/txn_type": known,
        "txn_time": pl.col("txn_time").str.contains(r"^\d{10}$"),
        "txn_amount": pl.col("txn_amount").str.contains(r"^\d{12}$"),
        "query_id": pl.col("query_id").str.contains(r"^\d{21}$"),
        "order_id": pl.col("order_id").str.contains(r"^[0-9A-Za-z]{8,40}$"),
        "merchant_fee": pl.col("merchant_fee").str.contains(signed),
        "settle_amount": pl.col("settle_amount").str.contains(signed),
        "orig_query_id": pl.when(pl.col("txn_type") == _PAYMENT)
        .then(pl.col("orig_query_id") == "")
        .otherwise(pl.col("orig_query_id").str.contains(r"^\d{21}$")),
    })  # fmt: skip


def _check_settlement(raw: pl.DataFrame) -> None:
    """The file has no totals; each line's own sum is its check: the settlement amount is
    the transaction amount (credited on a payment, debited otherwise) net of the fee."""
    direction = pl.when(pl.col("txn_type") == _PAYMENT).then(1).otherwise(-1)
    net = direction * pl.col("txn_amount").cast(pl.Int64) + _signed_fen("merchant_fee")
    reject_bad_columns(raw, {"settle_amount (≠ amount net of fee)": _signed_fen("settle_amount")
                             == net})  # fmt: skip


def _signed_fen(column: str) -> pl.Expr:
    magnitude = pl.col(column).str.slice(1).cast(pl.Int64)
    return pl.when(pl.col(column).str.starts_with("C")).then(magnitude).otherwise(-magnitude)


def _our_id(number: pl.Expr) -> pl.Expr:
    """Our id from a UnionPay orderId, a derived one's too (a cancel's refund `ord01J…c` →
    `ord_01J…_c`, as the channel named it); a foreign number stays as it is."""
    restored = number.str.replace(_DERIVED_NUMBER, "${1}_${2}_${3}")
    return restored.str.replace(_OUR_NUMBER, "${1}_${2}")


def _voided_order_id(number: pl.Expr) -> pl.Expr:
    """The order a void's orderId names: the number without the void suffix."""
    return _our_id(number.str.strip_suffix(VOID_SUFFIX))


def _traded_at(settle_day: date) -> pl.Expr:
    """txnTime with its year: the settle day's, or the previous for a later month-day."""
    month_day = pl.col("txn_time").str.slice(0, 4)
    year = pl.when(month_day > f"{settle_day:%m%d}").then(pl.lit(str(settle_day.year - 1)))
    stamp = pl.concat_str(year.otherwise(pl.lit(str(settle_day.year))), pl.col("txn_time"))
    return stamp.str.strptime(pl.Datetime("us"), "%Y%m%d%H%M%S", strict=False)


def _normalise(raw: pl.DataFrame, settle_day: date) -> pl.DataFrame:
    txn_type = pl.col("txn_type")
    payments = (
        raw.filter(txn_type == _PAYMENT)
        .select(
            pl.col("query_id").alias("orig_query_id"), _our_id(pl.col("order_id")).alias("paid")
        )
        .unique("orig_query_id")
    )  # a duplicated line must not duplicate its refunds
    frame = raw.join(payments, on="orig_query_id", how="left").select(
        pl.when(txn_type == _REFUND).then(pl.lit(Kind.REFUND.value))
        .otherwise(pl.lit(Kind.PAYMENT.value)).alias("kind"),
        pl.when(txn_type == _PAYMENT).then(_our_id(pl.col("order_id")))
        .when(txn_type == _VOID).then(_voided_order_id(pl.col("order_id")))
        .otherwise(pl.col("paid")).alias("order_id"),
        pl.when(txn_type == _REFUND).then(_our_id(pl.col("order_id"))).alias("refund_id"),
        pl.col("query_id").alias("channel_txn_id"),
        pl.col("txn_amount").cast(pl.Int64).alias("amount_fen"),
        (-_signed_fen("merchant_fee")).alias("fee_fen"),
        pl.when(txn_type == _VOID).then(pl.lit("closed")).otherwise(pl.lit(SUCCESS))
        .alias("status"),
        beijing_to_utc(_traded_at(settle_day)).alias("time"),
    )  # fmt: skip
    if frame.get_column("time").null_count():
        raise BillRejected("a txnTime is not a valid MMddHHmmss time")
    return frame
