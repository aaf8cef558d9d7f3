"""Alipay trade bills: what the sandbox produces from its day, read by the strict parser, and
the parser's refusal of damaged files (truncated, re-encoded, altered totals, unknown header)."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.bill import (
    DETAIL_SUFFIX,
    SUMMARY_SUFFIX,
    BillFormatError,
    parse_trade_bill,
)
from cloudpay.channels.alipay.sandbox import AlipaySandbox, start_alipay_sandbox
from cloudpay.channels.protocol import ChannelError, CreatePayment, RefundRequest
from cloudpay.kernel.business_time import SHANGHAI

FEE_RATE_BP = 60


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AlipaySandbox]:
    with start_alipay_sandbox(time_scale=0.001, fee_rate_bp=FEE_RATE_BP) as sandbox:
        yield sandbox


@dataclass(frozen=True)
class Day:
    orders: list[str]
    data: bytes


@pytest.fixture(scope="module")
def day(sandbox: AlipaySandbox) -> Day:
    """A day with two payments (12.34 and 0.50 yuan) and a partial refund of the first."""
    with AlipayChannel(sandbox.adapter_config()) as channel:
        orders = []
        for amount_fen in (1234, 50):
            order_id = f"ord_{uuid.uuid4().hex[:20]}"
            channel.create_payment(
                CreatePayment(
                    order_id=order_id,
                    amount_fen=amount_fen,
                    currency="CNY",
                    subject="Tea 茶",
                    method="alipay_qr",
                    notify_url="http://127.0.0.1:9/unused",
                    expire_at=datetime.now(UTC) + timedelta(minutes=10),
                )
            )
            sandbox.pay(order_id, "success")
            orders.append(order_id)
        channel.refund(RefundRequest("rfd_bill_1", orders[0], 234, 1234, "CNY"))
        data = channel.download_bill(datetime.now(SHANGHAI).date())
    return Day(orders, data)


def test_sandbox_bill_lists_the_day(day: Day) -> None:
    """Payments and the refund appear with yuan amounts, signs and fees at the set rate."""
    bill = parse_trade_bill(day.data)
    first, second = day.orders
    rows = {(row.out_trade_no, row.business_type): row for row in bill.rows}
    paid, refunded = rows[(first, "交易")], rows[(first, "退款")]
    assert (paid.order_amount_fen, paid.fee_fen) == (1234, -7)  # 0.6% of 12.34 = 0.074
    assert (refunded.order_amount_fen, refunded.refund_request_no) == (-234, "rfd_bill_1")
    assert refunded.fee_fen == 1  # 0.6% of 2.34 = 0.014, returned
    assert rows[(second, "交易")].fee_fen == 0  # 0.6% of 0.50 = 0.003 rounds to 0
    assert bill.total_order_fen == sum(row.order_amount_fen for row in bill.rows)


def test_sandbox_bill_is_gbk_with_tab_padded_ids(day: Day) -> None:
    """The detail CSV is GBK, starts with the # preamble and ends each id with a tab."""
    detail = _member(day.data, DETAIL_SUFFIX)
    text = detail.decode("gbk")
    assert text.startswith("#支付宝业务明细查询\r\n#账号：[2088")
    first = day.orders[0]
    assert f"{first}\t," in text
    with pytest.raises(UnicodeDecodeError):
        detail.decode("utf-8")


def test_future_bill_does_not_exist(sandbox: AlipaySandbox) -> None:
    """A bill for tomorrow is refused as isp.bill_not_exist."""
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    with AlipayChannel(sandbox.adapter_config()) as channel, pytest.raises(ChannelError) as error:
        channel.download_bill(tomorrow)
    assert error.value.code == "isp.bill_not_exist"


def _member(data: bytes, suffix: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        (name,) = [n for n in bundle.namelist() if n.endswith(suffix)]
        return bundle.read(name)


def _rewritten(data: bytes, suffix: str, change: Callable[[bytes], bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            target.writestr(name, change(content) if name.endswith(suffix) else content)
    return out.getvalue()


def _gbk_edit(old: str, new: str) -> Callable[[bytes], bytes]:
    def change(content: bytes) -> bytes:
        text = content.decode("gbk")
        assert old in text
        return text.replace(old, new, 1).encode("gbk")

    return change


def _edited(suffix: str, old: str, new: str) -> Callable[[bytes], bytes]:
    return lambda data: _rewritten(data, suffix, _gbk_edit(old, new))


DAMAGES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated_zip": (lambda data: data[: len(data) // 2], "not a complete zip"),
    "utf8": (
        lambda data: _rewritten(data, DETAIL_SUFFIX, lambda c: c.decode("gbk").encode()),
        "UTF-8",
    ),
    "summary_total_off": (_edited(SUMMARY_SUFFIX, "合计,,2,1,3,", "合计,,2,1,3,1"), "do not match"),
    "footer_count_off": (_edited(DETAIL_SUFFIX, "退款合计：1笔", "退款合计：0笔"), "footer counts"),
    "unknown_header": (
        _edited(DETAIL_SUFFIX, "服务费（元）", "手续费（元）"),
        "unknown bill header",
    ),
    "no_end_marker": (_edited(DETAIL_SUFFIX, "业务明细列表结束", "业务明细"), "truncated"),
}


@pytest.mark.parametrize(("damage", "complaint"), DAMAGES.values(), ids=DAMAGES.keys())
def test_damaged_bills_are_refused(
    day: Day, damage: Callable[[bytes], bytes], complaint: str
) -> None:
    """Each kind of damage raises BillFormatError naming the problem."""
    with pytest.raises(BillFormatError, match=complaint):
        parse_trade_bill(damage(day.data))
