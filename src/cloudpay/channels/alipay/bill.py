"""Alipay's daily trade bill (对账单, `bill_type=trade`): a zip of two GBK-encoded CSVs.

- `…_业务明细.csv`: one row per payment (业务类型 交易) and refund (退款), between `#` preamble
  lines (账号, 起始日期/终止日期) and a footer (`#-----…业务明细列表结束…-----`, counts, export
  time). Ids end with a tab so spreadsheets keep them as text; amounts are yuan with two
  decimals, refunds negative; the fee (服务费) is negative on payments and positive (returned)
  on refunds.
- `…_业务明细(汇总).csv`: the day's totals (合计).

Format per the bill URL API
(https://opendocs.alipay.com/apis/api_15/alipay.data.dataservice.bill.downloadurl.query: a
zip of 业务明细 and 汇总, the URL valid 30 seconds) and the reconciliation guide
(https://opendocs.alipay.com/open/204/106262); a day's bill is published the next morning.
Reconciliation parses with `parse_trade_bill`, which is strict: a wrong encoding,
a truncated archive, an unknown header or totals that disagree raise `BillFormatError`.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cloudpay.kernel.business_time import SHANGHAI

MAX_BILL_BYTES = 64 * 1024 * 1024
DETAIL_SUFFIX = "_业务明细.csv"
SUMMARY_SUFFIX = "_业务明细(汇总).csv"
DETAIL_TITLE = "#支付宝业务明细查询"
SUMMARY_TITLE = "#支付宝业务汇总查询"
DETAIL_BEGIN = (
    "#-----------------------------------------业务明细列表----------------------------------------"
)
DETAIL_END = (
    "#-----------------------------------------业务明细列表结束------------------------------------"
)
SUMMARY_BEGIN = (
    "#-----------------------------------------业务汇总列表----------------------------------------"
)
SUMMARY_END = (
    "#-----------------------------------------业务汇总列表结束------------------------------------"
)
DETAIL_HEADER = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号",
    "门店名称", "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）",
    "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）",
    "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）",
    "分润（元）", "备注",
)  # fmt: skip
SUMMARY_HEADER = (
    "门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "已收入总笔数(笔)",
    "订单金额（元）", "商家实收（元）", "支付宝优惠（元）", "商家优惠（元）", "卡消费金额（元）",
    "服务费（元）", "分润（元）", "实收净额（元）",
)  # fmt: skip
TRADE, REFUND = "交易", "退款"
_SIGNED_AMOUNT = re.compile(r"(-?)(0|[1-9]\d*)\.(\d{2})")
_COUNTS = re.compile(r"#交易合计：(\d+)笔，退款合计：(\d+)笔")
_ACCOUNT = re.compile(r"#账号：\[(\d+)\]")
_PERIOD = re.compile(r"#起始日期：\[(.+?)\]\s+终止日期：\[(.+?)\]")
_CN_TIME = "%Y年%m月%d日 %H:%M:%S"
_TIME = "%Y-%m-%d %H:%M:%S"


class BillFormatError(ValueError):
    """The file is not a well-formed Alipay trade bill."""


@dataclass(frozen=True)
class BillRow:
    trade_no: str
    out_trade_no: str
    business_type: str  # 交易 | 退款
    subject: str
    created_at: datetime  # Beijing wall time, aware
    finished_at: datetime
    counterparty: str
    order_amount_fen: int  # negative on refunds
    received_fen: int  # 商家实收, negative on refunds
    refund_request_no: str | None  # our refund id on refund rows
    fee_fen: int  # 服务费: negative on payments, positive (returned) on refunds

    @property
    def is_refund(self) -> bool:
        return self.business_type == REFUND


@dataclass(frozen=True)
class TradeBill:
    account: str
    starts_at: datetime
    ends_at: datetime
    rows: tuple[BillRow, ...]
    total_order_fen: int
    total_received_fen: int
    total_fee_fen: int


# ---------------------------------------------------------------- rendering (the sandbox)


def amount_text(amount_fen: int) -> str:
    sign = "-" if amount_fen < 0 else ""
    return f"{sign}{abs(amount_fen) // 100}.{abs(amount_fen) % 100:02d}"


def _period_lines(title: str, account: str, bill_date: date) -> list[str]:
    start = datetime.combine(bill_date, datetime.min.time())
    end = start + timedelta(days=1)
    return [
        title,
        f"#账号：[{account}]",
        f"#起始日期：[{start.strftime(_CN_TIME)}]   终止日期：[{end.strftime(_CN_TIME)}]",
    ]


def _row_cells(row: BillRow) -> list[str]:
    amount, received = amount_text(row.order_amount_fen), amount_text(row.received_fen)
    return [
        f"{row.trade_no}\t", f"{row.out_trade_no}\t", row.business_type, row.subject,
        row.created_at.astimezone(SHANGHAI).strftime(_TIME),
        row.finished_at.astimezone(SHANGHAI).strftime(_TIME),
        "", "", "", "", row.counterparty, amount, received, "0.00", "0.00", "0.00", "0.00",
        "0.00", "", "0.00", "0.00", f"{row.refund_request_no}\t" if row.refund_request_no else "",
        amount_text(row.fee_fen), "0.00", "",
    ]  # fmt: skip


def _csv_text(
    lines_before: list[str], header: Sequence[str], rows: list[list[str]], after: list[str]
) -> bytes:
    out = io.StringIO()
    out.write("\r\n".join(lines_before) + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    out.write("\r\n".join(after) + "\r\n")
    return out.getvalue().encode("gbk")


def render_trade_bill(
    *, account: str, bill_date: date, rows: Sequence[BillRow], exported_at: datetime
) -> bytes:
    """The zip Alipay serves for `bill_type=trade` (what the sandbox hands out)."""
    exported = f"#导出时间：[{exported_at.astimezone(SHANGHAI).strftime(_CN_TIME)}]"
    refunds = sum(1 for row in rows if row.is_refund)
    detail = _csv_text(
        [*_period_lines(DETAIL_TITLE, account, bill_date), DETAIL_BEGIN],
        DETAIL_HEADER,
        [_row_cells(row) for row in rows],
        [DETAIL_END, f"#交易合计：{len(rows) - refunds}笔，退款合计：{refunds}笔", exported],
    )
    order_fen = sum(row.order_amount_fen for row in rows)
    received_fen = sum(row.received_fen for row in rows)
    fee_fen = sum(row.fee_fen for row in rows)
    total = [
        "合计", "", str(len(rows) - refunds), str(refunds), str(len(rows)), amount_text(order_fen),
        amount_text(received_fen), "0.00", "0.00", "0.00", amount_text(fee_fen), "0.00",
        amount_text(received_fen + fee_fen),
    ]  # fmt: skip
    summary = _csv_text(
        [*_period_lines(SUMMARY_TITLE, account, bill_date), SUMMARY_BEGIN],
        SUMMARY_HEADER,
        [total],
        [SUMMARY_END, exported],
    )
    stem = f"{account}_{bill_date.strftime('%Y%m%d')}"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(stem + DETAIL_SUFFIX, detail)
        bundle.writestr(stem + SUMMARY_SUFFIX, summary)
    return archive.getvalue()


# ---------------------------------------------------------------- parsing (reconciliation)


def parse_trade_bill(data: bytes) -> TradeBill:
    """Parse and cross-check a trade bill zip; `BillFormatError` says what is wrong."""
    if len(data) > MAX_BILL_BYTES:
        raise BillFormatError("bill file too large")
    detail, summary = _members(data)
    account, starts_at, ends_at, detail_lines = _sections(
        detail, DETAIL_TITLE, DETAIL_BEGIN, DETAIL_END
    )
    rows = tuple(_row(cells, number) for number, cells in _table(detail_lines, DETAIL_HEADER))
    _check_counts(detail_lines, rows)
    summary_account, _, _, summary_lines = _sections(
        summary, SUMMARY_TITLE, SUMMARY_BEGIN, SUMMARY_END
    )
    if summary_account != account:
        raise BillFormatError("summary and detail name different accounts")
    totals = [cells for _, cells in _table(summary_lines, SUMMARY_HEADER) if cells[0] == "合计"]
    if len(totals) != 1:
        raise BillFormatError("summary needs exactly one 合计 row")
    bill = TradeBill(
        account=account,
        starts_at=starts_at,
        ends_at=ends_at,
        rows=rows,
        total_order_fen=_amount(totals[0][5], "订单金额"),
        total_received_fen=_amount(totals[0][6], "商家实收"),
        total_fee_fen=_amount(totals[0][10], "服务费"),
    )
    _check_totals(bill)
    return bill


def _members(data: bytes) -> tuple[list[str], list[str]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            found = {_member_name(info): info for info in bundle.infolist()}
            detail = [info for name, info in found.items() if name.endswith(DETAIL_SUFFIX)]
            summary = [info for name, info in found.items() if name.endswith(SUMMARY_SUFFIX)]
            if len(detail) != 1 or len(summary) != 1:
                raise BillFormatError("the zip must hold one 业务明细 and one 汇总 CSV")
            if detail[0].file_size + summary[0].file_size > MAX_BILL_BYTES:
                raise BillFormatError("bill files too large")
            texts = [_gbk(bundle.read(detail[0])), _gbk(bundle.read(summary[0]))]
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise BillFormatError(f"not a complete zip archive: {error}") from error
    return texts[0].splitlines(), texts[1].splitlines()


def _member_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:  # the name is UTF-8 already
        return info.filename
    try:  # Alipay writes GBK names without the UTF-8 flag; zipfile read them as cp437
        return info.filename.encode("cp437").decode("gbk")
    except UnicodeError:
        return info.filename


def _gbk(raw: bytes) -> str:
    if not raw.isascii() and _is_utf8(raw):  # GBK Chinese is practically never valid UTF-8
        raise BillFormatError("bill CSV is UTF-8-encoded; Alipay's bills are GBK")
    try:
        return raw.decode("gbk")
    except UnicodeDecodeError as error:
        raise BillFormatError(f"bill CSV is not GBK-encoded: {error}") from error


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sections(
    lines: list[str], title: str, begin: str, end: str
) -> tuple[str, datetime, datetime, list[str]]:
    if len(lines) < 5 or lines[0] != title:
        raise BillFormatError(f"bill CSV must start with {title}")
    account = _ACCOUNT.fullmatch(lines[1])
    period = _PERIOD.fullmatch(lines[2])
    if account is None or period is None or lines[3] != begin:
        raise BillFormatError("bill preamble (账号, 起始日期/终止日期, list start) is malformed")
    if end not in lines:  # the data rows run up to this marker; the totals follow it
        raise BillFormatError("bill is truncated: the list end marker is missing")
    if any(line and not line.startswith("#") for line in lines[lines.index(end) :]):
        raise BillFormatError("data after the list end marker")
    try:
        starts_at = datetime.strptime(period.group(1), _CN_TIME).replace(tzinfo=SHANGHAI)
        ends_at = datetime.strptime(period.group(2), _CN_TIME).replace(tzinfo=SHANGHAI)
    except ValueError as error:
        raise BillFormatError(f"bill period is malformed: {error}") from error
    return account.group(1), starts_at, ends_at, lines[4:]


def _table(lines: list[str], header: Sequence[str]) -> list[tuple[int, list[str]]]:
    """(line number, cells) of the data rows after `header`, up to the `#` footer."""
    body = list(itertools.takewhile(lambda line: not line.startswith("#"), lines))
    parsed = list(csv.reader(body))
    if not parsed or tuple(cell.strip() for cell in parsed[0]) != tuple(header):
        raise BillFormatError(f"unknown bill header: {parsed[0] if parsed else 'none'}")
    rows = []
    for number, cells in enumerate(parsed[1:], start=2):
        if len(cells) != len(header):
            raise BillFormatError(f"row {number} has {len(cells)} cells, not {len(header)}")
        rows.append((number, cells))
    return rows


def _amount(text: str, name: str) -> int:
    match = _SIGNED_AMOUNT.fullmatch(text.strip())
    if match is None:
        raise BillFormatError(f"{name} is not an amount in yuan: {text!r}")
    value = int(match.group(2)) * 100 + int(match.group(3))
    return -value if match.group(1) else value


def _time(text: str, number: int) -> datetime:
    try:
        return datetime.strptime(text.strip(), _TIME).replace(tzinfo=SHANGHAI)
    except ValueError as error:
        raise BillFormatError(f"row {number}: bad time {text!r}") from error


def _row(cells: list[str], number: int) -> BillRow:
    business_type = cells[2].strip()
    if business_type not in (TRADE, REFUND):
        raise BillFormatError(f"row {number}: unknown 业务类型 {business_type!r}")
    refund_request_no = cells[21].strip() or None
    if (business_type == REFUND) != (refund_request_no is not None):
        raise BillFormatError(f"row {number}: refund rows (and only they) carry a request no")
    return BillRow(
        trade_no=cells[0].strip(),
        out_trade_no=cells[1].strip(),
        business_type=business_type,
        subject=cells[3],
        created_at=_time(cells[4], number),
        finished_at=_time(cells[5], number),
        counterparty=cells[10],
        order_amount_fen=_amount(cells[11], f"row {number} 订单金额"),
        received_fen=_amount(cells[12], f"row {number} 商家实收"),
        refund_request_no=refund_request_no,
        fee_fen=_amount(cells[22], f"row {number} 服务费"),
    )


def _check_counts(lines: list[str], rows: tuple[BillRow, ...]) -> None:
    counts = [match for line in lines if (match := _COUNTS.fullmatch(line))]
    if len(counts) != 1:
        raise BillFormatError("bill footer lacks the 交易合计/退款合计 line")
    refunds = sum(1 for row in rows if row.is_refund)
    if (int(counts[0].group(1)), int(counts[0].group(2))) != (len(rows) - refunds, refunds):
        raise BillFormatError("footer counts do not match the rows (truncated or altered)")


def _check_totals(bill: TradeBill) -> None:
    sums = (
        sum(row.order_amount_fen for row in bill.rows),
        sum(row.received_fen for row in bill.rows),
        sum(row.fee_fen for row in bill.rows),
    )
    if sums != (bill.total_order_fen, bill.total_received_fen, bill.total_fee_fen):
        raise BillFormatError(f"summary totals {bill.total_order_fen} … do not match rows {sums}")
