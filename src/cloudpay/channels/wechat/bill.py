"""The daily trade bill (交易账单, `bill_type=ALL`) in WeChat Pay's file format.

Format, per https://pay.weixin.qq.com/docs/merchant/products/bill-download/format-trade.html
and the samples in WxJava's `WxPayBillResultTest` (binarywang/WxJava):
- a header row of 27 Chinese column names, then one detail row per payment (数据时间 = the
  payment's success time) and one per refund (= the time the refund was accepted); a payment
  refunded the same day appears twice;
- every detail and summary value is prefixed with a backtick (`) so spreadsheets keep long
  numbers as text; fields are separated by commas, lines end with CRLF;
- then a summary header (总交易单数,…) and one summary row;
- amounts are in yuan with 2 decimals, the fee (手续费) with 5;
- the file is UTF-8 (a BOM may lead it); `tar_type=GZIP` gzips it, and the `hash_value` the
  bill API returns is the SHA1 of the uncompressed file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from cloudpay.kernel.business_time import SHANGHAI

DETAIL_COLUMNS: tuple[str, ...] = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
    "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额",
    "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
    "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)  # fmt: skip
SUMMARY_COLUMNS: tuple[str, ...] = (
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额",
    "订单总金额", "申请退款总金额",
)  # fmt: skip
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
LINE_END = "\r\n"
BOM = "\ufeff"
MAX_BILL_BYTES = 256 * 1024 * 1024  # three months of a busy merchant fit well below this
_FEN_PER_YUAN = Decimal(100)
_FEE_QUANTUM = Decimal("0.00001")


class BillFormatError(ValueError):
    """The bytes are not a WeChat Pay trade bill."""


@dataclass(frozen=True)
class TradeBillRow:
    """One detail line; `trade_state` is SUCCESS for a payment line, REFUND for a refund."""

    traded_at: datetime  # aware UTC
    appid: str
    mchid: str
    sub_mchid: str
    device_info: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    trade_state: str
    bank_type: str
    currency: str
    settlement_total_fen: int  # 应结订单金额
    coupon_fen: int
    refund_id: str
    out_refund_no: str
    refund_fen: int
    coupon_refund_fen: int
    refund_type: str
    refund_status: str
    description: str
    attach: str
    fee_yuan: Decimal  # 手续费, negative on a refund line (the fee share given back)
    fee_rate: str  # e.g. "0.60%"
    order_total_fen: int  # 订单金额
    refund_requested_fen: int  # 申请退款金额
    fee_rate_note: str


@dataclass(frozen=True)
class TradeBillSummary:
    trade_count: int
    settlement_total_fen: int
    refund_fen: int
    coupon_refund_fen: int
    fee_yuan: Decimal
    order_total_fen: int
    refund_requested_fen: int


@dataclass(frozen=True)
class TradeBill:
    rows: tuple[TradeBillRow, ...]
    summary: TradeBillSummary


# ---------------------------------------------------------------- amounts


def yuan_text(amount_fen: int) -> str:
    """Integer fen as yuan with 2 decimals, exact (`1234` → `12.34`, `-5` → `-0.05`)."""
    sign = "-" if amount_fen < 0 else ""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def fen_from_yuan(text: str) -> int:
    """Yuan text as integer fen; refuses anything finer than a fen."""
    try:
        fen = Decimal(text) * _FEN_PER_YUAN
    except InvalidOperation as error:
        raise BillFormatError(f"not an amount: {text!r}") from error
    if fen != fen.to_integral_value():
        raise BillFormatError(f"amount finer than a fen: {text!r}")
    return int(fen)


def _fee(text: str) -> Decimal:
    try:
        return Decimal(text).quantize(_FEE_QUANTUM)
    except InvalidOperation as error:
        raise BillFormatError(f"not a fee: {text!r}") from error


# ---------------------------------------------------------------- render (the sandbox's side)


def _row_values(row: TradeBillRow) -> list[str]:
    return [
        row.traded_at.astimezone(SHANGHAI).strftime(TIME_FORMAT),
        row.appid, row.mchid, row.sub_mchid, row.device_info, row.transaction_id,
        row.out_trade_no, row.openid, row.trade_type, row.trade_state, row.bank_type,
        row.currency, yuan_text(row.settlement_total_fen), yuan_text(row.coupon_fen),
        row.refund_id, row.out_refund_no, yuan_text(row.refund_fen),
        yuan_text(row.coupon_refund_fen), row.refund_type, row.refund_status,
        _plain(row.description), _plain(row.attach), f"{row.fee_yuan.quantize(_FEE_QUANTUM)}",
        row.fee_rate, yuan_text(row.order_total_fen), yuan_text(row.refund_requested_fen),
        row.fee_rate_note,
    ]  # fmt: skip


def _plain(text: str) -> str:
    # The format has no quoting: a comma or line break inside free text would shift columns.
    return text.replace(",", "，").replace("\r", " ").replace("\n", " ")


def summarize(rows: Sequence[TradeBillRow]) -> TradeBillSummary:
    return TradeBillSummary(
        trade_count=len(rows),
        settlement_total_fen=sum(row.settlement_total_fen for row in rows),
        refund_fen=sum(row.refund_fen for row in rows),
        coupon_refund_fen=sum(row.coupon_refund_fen for row in rows),
        fee_yuan=sum((row.fee_yuan for row in rows), Decimal(0)).quantize(_FEE_QUANTUM),
        order_total_fen=sum(row.order_total_fen for row in rows),
        refund_requested_fen=sum(row.refund_requested_fen for row in rows),
    )


def _summary_values(summary: TradeBillSummary) -> list[str]:
    return [
        str(summary.trade_count),
        yuan_text(summary.settlement_total_fen),
        yuan_text(summary.refund_fen),
        yuan_text(summary.coupon_refund_fen),
        f"{summary.fee_yuan}",
        yuan_text(summary.order_total_fen),
        yuan_text(summary.refund_requested_fen),
    ]


def _line(values: Iterable[str]) -> str:
    return ",".join(f"`{value}" for value in values)


def render_trade_bill(rows: Sequence[TradeBillRow]) -> bytes:
    lines = [BOM + ",".join(DETAIL_COLUMNS)]
    lines += [_line(_row_values(row)) for row in rows]
    lines += [",".join(SUMMARY_COLUMNS), _line(_summary_values(summarize(rows)))]
    return (LINE_END.join(lines) + LINE_END).encode("utf-8")


# ---------------------------------------------------------------- parse (reconciliation's side)


def _fields(line: str) -> list[str]:
    return [value[1:] if value.startswith("`") else value for value in line.split(",")]


def _detail(values: Sequence[str], index: dict[str, int]) -> TradeBillRow:
    def text(column: str) -> str:
        return values[index[column]]

    def fen(column: str) -> int:
        return fen_from_yuan(text(column))

    try:
        traded_at = datetime.strptime(text("交易时间"), TIME_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError as error:
        raise BillFormatError(f"bad trade time {text('交易时间')!r}") from error
    return TradeBillRow(
        traded_at=traded_at.astimezone(UTC),
        appid=text("公众账号ID"), mchid=text("商户号"), sub_mchid=text("特约商户号"),
        device_info=text("设备号"), transaction_id=text("微信订单号"),
        out_trade_no=text("商户订单号"), openid=text("用户标识"), trade_type=text("交易类型"),
        trade_state=text("交易状态"), bank_type=text("付款银行"), currency=text("货币种类"),
        settlement_total_fen=fen("应结订单金额"), coupon_fen=fen("代金券金额"),
        refund_id=text("微信退款单号"), out_refund_no=text("商户退款单号"),
        refund_fen=fen("退款金额"), coupon_refund_fen=fen("充值券退款金额"),
        refund_type=text("退款类型"), refund_status=text("退款状态"),
        description=text("商品名称"), attach=text("商户数据包"), fee_yuan=_fee(text("手续费")),
        fee_rate=text("费率"), order_total_fen=fen("订单金额"),
        refund_requested_fen=fen("申请退款金额"), fee_rate_note=text("费率备注"),
    )  # fmt: skip


def _summary(values: Sequence[str]) -> TradeBillSummary:
    if len(values) != len(SUMMARY_COLUMNS) or not values[0].isdigit():
        raise BillFormatError("the summary row does not match its header")
    return TradeBillSummary(
        trade_count=int(values[0]),
        settlement_total_fen=fen_from_yuan(values[1]),
        refund_fen=fen_from_yuan(values[2]),
        coupon_refund_fen=fen_from_yuan(values[3]),
        fee_yuan=_fee(values[4]),
        order_total_fen=fen_from_yuan(values[5]),
        refund_requested_fen=fen_from_yuan(values[6]),
    )


def parse_trade_bill(data: bytes) -> TradeBill:
    """Parse an (uncompressed) ALL trade bill; columns are found by name, not position."""
    if len(data) > MAX_BILL_BYTES:
        raise BillFormatError(f"bill larger than {MAX_BILL_BYTES} bytes")
    try:
        lines = [line for line in data.decode("utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError as error:
        raise BillFormatError("bill is not UTF-8") from error
    if len(lines) < 3 or lines[-2].split(",") != list(SUMMARY_COLUMNS):
        raise BillFormatError("a bill is a header, detail rows, a summary header and row")
    header = lines[0].split(",")
    missing = set(DETAIL_COLUMNS) - set(header)
    if missing:
        raise BillFormatError(f"bill header lacks {sorted(missing)}")
    index = {name: position for position, name in enumerate(header)}
    rows = []
    for line in lines[1:-2]:
        values = _fields(line)
        if len(values) != len(header):
            raise BillFormatError("a detail row does not match the header")
        rows.append(_detail(values, index))
    summary = _summary(_fields(lines[-1]))
    if summary.trade_count != len(rows):
        raise BillFormatError("the summary counts a different number of rows")
    return TradeBill(tuple(rows), summary)
