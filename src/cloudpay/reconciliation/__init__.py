"""Reconciliation (对账): every channel's daily bill proven against our orders and refunds;
what does not match becomes a break for an operator to work to resolution.

Other contexts and entry points use these names only.
"""

from cloudpay.reconciliation.bills import BillRejected, read_wechat_trade_bill, reader_for
from cloudpay.reconciliation.model import BreakStatus, BreakType, Resolution, reconcile
from cloudpay.reconciliation.service import (
    BillFile,
    daily_report,
    get_break,
    get_run,
    list_breaks,
    list_runs,
    rerun,
    run_day,
)

__all__ = [
    "BillFile",
    "BillRejected",
    "BreakStatus",
    "BreakType",
    "Resolution",
    "daily_report",
    "get_break",
    "get_run",
    "list_breaks",
    "list_runs",
    "read_wechat_trade_bill",
    "reader_for",
    "reconcile",
    "rerun",
    "run_day",
]
