"""Reconciliation (对账): every channel's daily bill proven against our orders and refunds;
what does not match becomes a break for an operator to work to resolution.

Other contexts and entry points use these names only.
"""

from cloudpay.reconciliation.bills import BillRejected, read_wechat_trade_bill, reader_for
from cloudpay.reconciliation.model import BreakStatus, BreakType, Resolution, reconcile
from cloudpay.reconciliation.service import (
    BillFile,
    break_history,
    daily_report,
    get_break,
    get_run,
    investigate,
    list_breaks,
    list_runs,
    repair,
    rerun,
    resolve,
    run_day,
    today,
)

__all__ = [
    "BillFile",
    "BillRejected",
    "BreakStatus",
    "BreakType",
    "Resolution",
    "break_history",
    "daily_report",
    "get_break",
    "get_run",
    "investigate",
    "list_breaks",
    "list_runs",
    "read_wechat_trade_bill",
    "reader_for",
    "reconcile",
    "repair",
    "rerun",
    "resolve",
    "run_day",
    "today",
]
