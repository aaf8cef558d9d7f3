"""Alipay's daily trade bill (对账单, bill_type=trade) read column-wise into the normalised frame.

The format (its facts from `cloudpay.channels.alipay.trade_bill_format`, which renders the
sandbox's bills and holds the contract tests' parser): a zip of two GBK CSVs, per
https://opendocs.alipay.com/apis/api_15/alipay.data.dataservice.bill.downloadurl.query and
the reconciliation guide https://opendocs.alipay.com/open/204/106262 —
- `…_业务明细.csv`: `#` preamble (title, 账号, 起始日期/终止日期, list start marker), a header,
  one row per payment (业务类型 交易) and refund (退款), the list end marker, then a footer
  with the counts (`#交易合计：N笔，退款合计：M笔`) and the export time. Ids end with a tab
  (so spreadsheets keep them as text); amounts are yuan with two decimals, refunds negative;
  the fee (服务费) is negative on a payment (charged) and positive on a refund (returned).
- `…_业务明细(汇总).csv`: the same preamble and one 合计 row of the day's totals.

Strict like the WeChat reader: a bad zip, a member that is not GBK, an unknown header, a
ragged row, a malformed amount, footer counts or 合计 totals that disagree with the rows —
each rejects the whole file with `BillRejected`.

Mapping: 商户订单号 is our order id (out_trade_no), 退款批次号/请求号 our refund id
(out_request_no); the channel transaction of a refund is `trade_no/out_request_no`, as the
Alipay connector names it. Every row of the bill is a completed movement (status success).
"""

from __future__ import annotations

import csv
import re

import polars as pl

from cloudpay.channels.alipay import trade_bill_format
from cloudpay.reconciliation.bills_common import (
    BillRejected,
    beijing_to_utc,
    reject_bad_columns,
    zip_members,
)
from cloudpay.reconciliation.model import SUCCESS, Kind, conform

# The format's facts come from the channel that renders the sandbox's bills.
DETAIL_SUFFIX, SUMMARY_SUFFIX = trade_bill_format.DETAIL_SUFFIX, trade_bill_format.SUMMARY_SUFFIX
DETAIL_TITLE, SUMMARY_TITLE = trade_bill_format.DETAIL_TITLE, trade_bill_format.SUMMARY_TITLE
DETAIL_BEGIN, DETAIL_END = trade_bill_format.DETAIL_BEGIN, trade_bill_format.DETAIL_END
SUMMARY_BEGIN, SUMMARY_END = trade_bill_format.SUMMARY_BEGIN, trade_bill_format.SUMMARY_END
DETAIL_HEADER, SUMMARY_HEADER = trade_bill_format.DETAIL_HEADER, trade_bill_format.SUMMARY_HEADER
TRADE, REFUND = trade_bill_format.TRADE, trade_bill_format.REFUND
_AMOUNT = r"^-?(0|[1-9]\d*)\.\d{2}$"
_ACCOUNT = re.compile(r"#账号：\[(\d+)\]")
_PERIOD = re.compile(r"#起始日期：\[(.+?)\]\s+终止日期：\[(.+?)\]")
_COUNTS = re.compile(r"#交易合计：(\d+)笔，退款合计：(\d+)笔")
_KINDS = {TRADE: Kind.PAYMENT.value, REFUND: Kind.REFUND.value}
_TAB_ID_COLUMNS = ("支付宝交易号", "商户订单号")
_AMOUNT_COLUMNS = ("订单金额（元）", "商家实收（元）", "服务费（元）")
_SUMMARY_TOTALS = {"订单金额（元）": 5, "商家实收（元）": 6, "服务费（元）": 10}


def read_alipay_trade_bill(data: bytes) -> pl.DataFrame:
    """An Alipay trade bill zip as the normalised channel frame."""
    detail_text, summary_text = _member_texts(data)
    account, detail_body, footer = _section(detail_text, DETAIL_TITLE, DETAIL_BEGIN, DETAIL_END)
    raw = _table(detail_body, DETAIL_HEADER)
    _check_formats(raw)
    values = _values(raw)
    _check_counts(footer, values)
    summary_account, summary_body, _ = _section(
        summary_text, SUMMARY_TITLE, SUMMARY_BEGIN, SUMMARY_END
    )
    if summary_account != account:
        raise BillRejected("the summary and the detail name different accounts")
    _check_totals(values, _summary_totals(summary_body))
    return conform(_normalise(values))


def _member_texts(data: bytes) -> tuple[str, str]:
    members = zip_members(data)
    detail = [name for name in members if name.endswith(DETAIL_SUFFIX)]
    summary = [name for name in members if name.endswith(SUMMARY_SUFFIX)]
    if len(detail) != 1 or len(summary) != 1 or len(members) != 2:
        raise BillRejected(f"the zip must hold one 业务明细 and one 汇总 CSV: {sorted(members)}")
    return _gbk(members[detail[0]], detail[0]), _gbk(members[summary[0]], summary[0])


def _gbk(raw: bytes, name: str) -> str:
    # GBK Chinese is practically never valid UTF-8: a UTF-8 file is named as such.
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise BillRejected(f"{name} is UTF-8-encoded; Alipay's bills are GBK")
    try:
        return raw.decode("gbk")
    except UnicodeDecodeError as error:
        raise BillRejected(f"{name} is not GBK-encoded: {error}") from error


def _section(text: str, title: str, begin: str, end: str) -> tuple[str, str, list[str]]:
    """The account, the table (header and rows) and the footer lines of one CSV."""
    lines = text.split("\r\n")
    if len(lines) < 5 or lines[0] != title:
        raise BillRejected(f"the bill CSV does not start with {title}")
    account, period = _ACCOUNT.fullmatch(lines[1]), _PERIOD.fullmatch(lines[2])
    if account is None or period is None or lines[3] != begin:
        raise BillRejected("the bill preamble (账号, 起始日期/终止日期, list start) is malformed")
    if end not in lines:
        raise BillRejected("the bill is truncated: its list end marker is missing")
    end_at = lines.index(end)
    footer = lines[end_at + 1 :]
    if footer[-1:] != [""] or any(not line.startswith("#") for line in footer[:-1]):
        raise BillRejected("the bill has data after its list end marker or no final line end")
    if any(line.startswith("#") for line in lines[4:end_at]):
        raise BillRejected("a `#` line inside the bill's list")
    return account.group(1), "\r\n".join(lines[4:end_at]) + "\r\n", footer[:-1]


def _table(body: str, header: tuple[str, ...]) -> pl.DataFrame:
    encoded = body.encode("utf-8")
    try:
        table = pl.read_csv(encoded, infer_schema=False, raise_if_empty=True)
    except pl.exceptions.PolarsError as error:
        raise BillRejected(f"the bill's list is not a well-formed CSV: {error}") from error
    if tuple(name.strip() for name in table.columns) != header:
        raise BillRejected(f"unknown bill header: {table.columns}")
    # polars pads a short row with nulls: the commas in the list are the separators plus the
    # commas inside quoted values, exactly, only if every row has the header's fields.
    quoted = table.select(pl.all().str.count_matches(",", literal=True).sum()).sum_horizontal()
    separators = (len(header) - 1) * (table.height + 1) + int(quoted.item() or 0)
    if encoded.count(b",") != separators:
        raise BillRejected(f"the rows do not all have the header's {len(header)} fields")
    return table.rename(dict(zip(table.columns, header, strict=True)))


def _check_formats(raw: pl.DataFrame) -> None:
    amounts = {name: pl.col(name).str.contains(_AMOUNT) for name in _AMOUNT_COLUMNS}
    ids = {name: pl.col(name).str.contains(r"^\S+\t$") for name in _TAB_ID_COLUMNS}
    refund = pl.col("业务类型") == REFUND
    request_no = pl.col("退款批次号/请求号")
    times = {name: pl.col(name).str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S",
                                             strict=False).is_not_null()
             for name in ("创建时间", "完成时间")}  # fmt: skip
    signs = pl.col("订单金额（元）").str.starts_with("-") == refund
    reject_bad_columns(raw, amounts | ids | times | {
        "业务类型": pl.col("业务类型").is_in(list(_KINDS)),
        "退款批次号/请求号": pl.when(refund).then(request_no.str.contains(r"^\S+\t$"))
        .otherwise(request_no.is_null()),
        "订单金额（元） (sign)": signs,
    })  # fmt: skip


def _fen(column: str) -> pl.Expr:
    """A checked yuan amount (`-12.34`) in fen."""
    return pl.col(column).str.replace(".", "", literal=True).cast(pl.Int64)


def _values(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.select(
        pl.col("业务类型"),
        pl.col("支付宝交易号", "商户订单号", "退款批次号/请求号").str.strip_suffix("\t"),
        pl.col("完成时间").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S"),
        *(_fen(column) for column in _AMOUNT_COLUMNS),
    )


def _check_counts(footer: list[str], values: pl.DataFrame) -> None:
    counts = [found for line in footer if (found := _COUNTS.fullmatch(line))]
    if len(counts) != 1:
        raise BillRejected("the bill footer lacks its 交易合计/退款合计 line")
    refunds = values.get_column("业务类型").eq(REFUND).sum()
    stated = (int(counts[0].group(1)), int(counts[0].group(2)))
    if stated != (values.height - refunds, refunds):
        raise BillRejected(
            f"the footer counts {stated} payments/refunds, the bill has "
            f"{(values.height - refunds, refunds)} (truncated or altered)"
        )


def _summary_totals(body: str) -> dict[str, int]:
    rows = list(csv.reader(body.split("\r\n")[:-1]))
    if not rows or tuple(cell.strip() for cell in rows[0]) != SUMMARY_HEADER:
        raise BillRejected(f"unknown summary header: {rows[0] if rows else 'none'}")
    totals = [row for row in rows[1:] if row and row[0] == "合计"]
    if len(totals) != 1 or len(totals[0]) != len(SUMMARY_HEADER):
        raise BillRejected("the summary needs exactly one well-formed 合计 row")
    found = {name: totals[0][index].strip() for name, index in _SUMMARY_TOTALS.items()}
    if not all(re.fullmatch(_AMOUNT, text) for text in found.values()):
        raise BillRejected(f"a summary total is not an amount in yuan: {found}")
    return {name: int(text.replace(".", "")) for name, text in found.items()}


def _check_totals(values: pl.DataFrame, stated: dict[str, int]) -> None:
    sums = values.select(pl.col(list(stated)).sum()).row(0, named=True)
    if {name: int(total) for name, total in sums.items()} != stated:
        raise BillRejected(f"the summary totals {stated} disagree with the rows {sums}")


def _normalise(values: pl.DataFrame) -> pl.DataFrame:
    is_payment = pl.col("业务类型") == TRADE
    return values.select(
        pl.col("业务类型").replace_strict(_KINDS, return_dtype=pl.String).alias("kind"),
        pl.col("商户订单号").alias("order_id"),
        pl.when(is_payment).then(None).otherwise(pl.col("退款批次号/请求号")).alias("refund_id"),
        pl.when(is_payment).then(pl.col("支付宝交易号"))
        .otherwise(pl.concat_str("支付宝交易号", pl.lit("/"), "退款批次号/请求号"))
        .alias("channel_txn_id"),
        pl.col("订单金额（元）").abs().alias("amount_fen"),
        # Charged on a payment (negative in the bill), returned on a refund: ours is the
        # opposite sign, as the platform side books it.
        (-pl.col("服务费（元）")).alias("fee_fen"),
        pl.lit(SUCCESS).alias("status"),
        beijing_to_utc(pl.col("完成时间")).alias("time"),
    )  # fmt: skip
