"""The UnionPay merchant reconciliation file (全渠道商户对账文件, ZM file): render and parse.

fileTransfer.do (txnType 76, fileType 00) answers `fileContent` = base64 of the deflated zip;
the zip holds `INN{yyMMdd}{batch}ZM_{merId}`, the general transaction detail file (一般交易流水
文件): one line a transaction, GBK, fixed-width fields separated by one space.

What we could establish, and reproduce exactly: the 42 field widths and their order, from
acp_sdk's `parseZMFile` (lengths 3,11,11,6,10,19,12,4,2,21,…,32,98; one separator byte
between fields; GBK), e.g. https://github.com/Javen205/IJPay (DemoBase.java), and the field
names of the first 40 from integrators' tables (e.g. github.com/lyonliyang/demo,
`UnionField.java`, citing 《全渠道平台接入接口规范 第3部分 文件接口》 6.1). What we could not
open at the source and chose: the trade codes (交易代码) S22 consumption, S31 void (消费撤销),
S30 refund (退货); 13-character amounts as a `C`/`D` (credit/debit to the merchant) sign and
12 digits of fen; `\\r\\n` line ends; the name of field 41. The parser classifies lines by
`txnType` (field 20), which the sources do establish, and checks the trade code agrees.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date

MAX_BILL_BYTES = 64 * 1024 * 1024
FILE_ENCODING = "gbk"

FIELD_WIDTHS: tuple[tuple[str, int], ...] = (
    ("trade_code", 3),  # 交易代码
    ("acquirer_code", 11),  # 代理机构标识码
    ("sender_code", 11),  # 发送机构标识码
    ("trace_no", 6),  # 系统跟踪号
    ("txn_time", 10),  # 交易传输时间 MMddHHmmss
    ("card_no", 19),  # 账号 (masked)
    ("txn_amount", 12),  # 交易金额, fen
    ("mcc", 4),  # 商户类别
    ("terminal_type", 2),  # 终端类型
    ("query_id", 21),  # 查询流水号
    ("pay_method_old", 2),  # 支付方式（旧）
    ("order_id", 32),  # 商户订单号
    ("card_type", 2),  # 支付卡类型
    ("orig_trace_no", 6),  # 原始交易的系统跟踪号
    ("orig_txn_time", 10),  # 原始交易日期时间
    ("merchant_fee", 13),  # 商户手续费
    ("settle_amount", 13),  # 结算金额
    ("pay_method", 4),  # 支付方式
    ("group_merchant", 15),  # 集团商户代码
    ("txn_type", 2),  # 交易类型
    ("txn_sub_type", 2),  # 交易子类
    ("biz_type", 6),  # 业务类型
    ("account_type", 2),  # 账号类型
    ("bill_type", 4),  # 账单类型
    ("bill_no", 32),  # 账单号码
    ("interact_mode", 1),  # 交互方式
    ("orig_query_id", 21),  # 原交易查询流水号
    ("mer_id", 15),  # 商户代码
    ("split_mode", 1),  # 分账入账方式
    ("sub_mer_id", 15),  # 二级商户代码
    ("sub_mer_abbr", 32),  # 二级商户简称
    ("sub_mer_split_amount", 13),  # 二级商户分账入账金额
    ("settle_net_amount", 13),  # 清算净额
    ("terminal_id", 8),  # 终端号
    ("mer_reserved", 32),  # 商户自定义域
    ("discount_amount", 13),  # 优惠金额
    ("invoice_amount", 13),  # 发票金额
    ("installment_fee", 12),  # 分期付款附加手续费
    ("installment_count", 2),  # 分期付款期数
    ("trade_media", 1),  # 交易介质
    ("field_41", 32),  # name not established
    ("reserved", 98),  # 保留使用
)
LINE_BYTES = sum(width for _, width in FIELD_WIDTHS) + len(FIELD_WIDTHS) - 1
TRADE_CODES = {"01": "S22", "31": "S31", "04": "S30"}  # txnType → 交易代码
_SIGNED_AMOUNTS = frozenset(
    {"merchant_fee", "settle_amount", "sub_mer_split_amount", "settle_net_amount"}
    | {"discount_amount", "invoice_amount"}
)
_DIGITS = frozenset({"trace_no", "txn_time", "txn_amount", "query_id", "txn_type"})
_ENTRY_NAME = re.compile(r"^INN\d{6}\d{2}(ZM|ZME)_[0-9A-Za-z]{1,15}$")


class BillFormatError(ValueError):
    """A reconciliation file that is not what the format says: never guess, say where."""


@dataclass(frozen=True)
class BillLine:
    """One transaction of the ZM file, the fields reconciliation uses typed."""

    txn_type: str  # 01 consumption, 31 void, 04 refund
    txn_sub_type: str
    biz_type: str
    order_id: str  # UnionPay orderId (ours without the underscore)
    query_id: str
    orig_query_id: str
    txn_time: str  # MMddHHmmss, Beijing
    trace_no: str
    amount_fen: int
    fee_fen: int  # positive: charged to the merchant; negative: returned
    settle_fen: int  # positive: credited to the merchant; negative: debited
    mer_id: str
    card_no: str = ""

    @property
    def trade_code(self) -> str:
        return TRADE_CODES[self.txn_type]


@dataclass(frozen=True)
class UnionPayBill:
    file_name: str
    lines: tuple[BillLine, ...]


def _signed(value_fen: int) -> str:
    return ("C" if value_fen >= 0 else "D") + f"{abs(value_fen):012d}"


def _values(line: BillLine) -> dict[str, str]:
    return {
        "trade_code": line.trade_code,
        "acquirer_code": "48020000",
        "sender_code": "00049992",
        "trace_no": line.trace_no,
        "txn_time": line.txn_time,
        "card_no": line.card_no,
        "txn_amount": f"{line.amount_fen:012d}",
        "terminal_type": "08",
        "query_id": line.query_id,
        "order_id": line.order_id,
        "merchant_fee": _signed(-line.fee_fen),
        "settle_amount": _signed(line.settle_fen),
        "txn_type": line.txn_type,
        "txn_sub_type": line.txn_sub_type,
        "biz_type": line.biz_type,
        "orig_query_id": line.orig_query_id,
        "mer_id": line.mer_id,
        "sub_mer_split_amount": _signed(0),
        "settle_net_amount": _signed(line.settle_fen),
        "discount_amount": _signed(0),
        "invoice_amount": _signed(0),
    }


def render_line(line: BillLine) -> bytes:
    values = _values(line)
    parts = []
    for name, width in FIELD_WIDTHS:
        raw = values.get(name, "").encode(FILE_ENCODING)
        if len(raw) > width:
            raise ValueError(f"{name} is wider than {width} bytes")
        parts.append(raw.ljust(width, b" "))
    return b" ".join(parts)


def entry_name(settle_day: date, mer_id: str) -> str:
    return f"INN{settle_day:%y%m%d}88ZM_{mer_id}"


def render_bill(lines: list[BillLine], *, settle_day: date, mer_id: str) -> bytes:
    """The zip the gateway serves for `settle_day` (before deflate + base64)."""
    content = b"".join(render_line(line) + b"\r\n" for line in lines)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(entry_name(settle_day, mer_id), content)
    return buffer.getvalue()


# ---------------------------------------------------------------- parsing


def _split(raw: bytes, number: int) -> dict[str, str]:
    if len(raw) != LINE_BYTES:
        raise BillFormatError(f"line {number}: {len(raw)} bytes, the format has {LINE_BYTES}")
    values, position = {}, 0
    for index, (name, width) in enumerate(FIELD_WIDTHS):
        if index and raw[position - 1 : position] != b" ":
            raise BillFormatError(f"line {number}: no separator before {name}")
        try:
            values[name] = raw[position : position + width].decode(FILE_ENCODING).strip()
        except UnicodeDecodeError as error:
            raise BillFormatError(f"line {number}: {name} is not GBK") from error
        position += width + 1
    return values


def _signed_fen(values: dict[str, str], name: str, number: int) -> int:
    text = values[name]
    if not re.fullmatch(r"[CD]\d{12}", text):
        raise BillFormatError(f"line {number}: {name} {text!r} is not C/D and 12 digits")
    return int(text[1:]) * (1 if text[0] == "C" else -1)


def parse_line(raw: bytes, number: int) -> BillLine:
    values = _split(raw, number)
    for name in _DIGITS:
        if not values[name].isdigit():
            raise BillFormatError(f"line {number}: {name} {values[name]!r} is not digits")
    txn_type = values["txn_type"]
    if TRADE_CODES.get(txn_type) != values["trade_code"]:
        raise BillFormatError(
            f"line {number}: unknown record: trade code {values['trade_code']!r}, txnType "
            f"{txn_type!r}"
        )
    amounts = {name: _signed_fen(values, name, number) for name in _SIGNED_AMOUNTS}
    return BillLine(
        txn_type=txn_type,
        txn_sub_type=values["txn_sub_type"],
        biz_type=values["biz_type"],
        order_id=values["order_id"],
        query_id=values["query_id"],
        orig_query_id=values["orig_query_id"],
        txn_time=values["txn_time"],
        trace_no=values["trace_no"],
        amount_fen=int(values["txn_amount"]),
        fee_fen=-amounts["merchant_fee"],
        settle_fen=amounts["settle_amount"],
        mer_id=values["mer_id"],
        card_no=values["card_no"],
    )


def _zm_entry(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    found = None
    for info in archive.infolist():
        match = _ENTRY_NAME.match(info.filename)
        if match is None:
            raise BillFormatError(f"unexpected file {info.filename!r} in the bill zip")
        if match.group(1) == "ZM":
            if found is not None:
                raise BillFormatError("more than one ZM file in the bill zip")
            found = info
    if found is None:
        raise BillFormatError("no ZM file in the bill zip")
    if found.file_size > MAX_BILL_BYTES:
        raise BillFormatError("ZM file too large")
    return found


def parse_bill(data: bytes) -> UnionPayBill:
    """Read the zip `UnionPayChannel.download_bill` returns; a deviation is `BillFormatError`."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = _zm_entry(archive)
            content = archive.read(entry)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise BillFormatError(f"not a readable zip: {error}") from error
    if content and not content.endswith(b"\n"):
        raise BillFormatError("the ZM file is truncated (last line has no line end)")
    raw_lines = content.split(b"\n")[:-1] if content else []
    lines = tuple(
        parse_line(raw.removesuffix(b"\r"), number) for number, raw in enumerate(raw_lines, start=1)
    )
    return UnionPayBill(file_name=entry.filename, lines=lines)
