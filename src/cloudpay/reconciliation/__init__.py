"""Reconciliation (对账): every channel's daily bill proven against our orders and refunds;
what does not match becomes a break for an operator to work to resolution.

Other contexts and entry points use these names only.
"""

from cloudpay.reconciliation.bank import StatementRejected, bank_channel_key, run_bank_day
from cloudpay.reconciliation.bills import BillRejected, read_wechat_trade_bill, reader_for
from cloudpay.reconciliation.model import BreakStatus, BreakType, Resolution, reconcile
from cloudpay.reconciliation.runs import BillFile, get_run
from cloudpay.reconciliation.schedule import DEFAULT_RUN_AT, due_bill_date, reconcile_all
from cloudpay.reconciliation.service import (
    break_history,
    daily_report,
    get_break,
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
    "DEFAULT_RUN_AT",
    "BillFile",
    "BillRejected",
    "BreakStatus",
    "BreakType",
    "Resolution",
    "StatementRejected",
    "bank_channel_key",
    "break_history",
    "daily_report",
    "due_bill_date",
    "get_break",
    "get_run",
    "investigate",
    "list_breaks",
    "list_runs",
    "read_wechat_trade_bill",
    "reader_for",
    "reconcile",
    "reconcile_all",
    "repair",
    "rerun",
    "resolve",
    "run_bank_day",
    "run_day",
    "today",
]
