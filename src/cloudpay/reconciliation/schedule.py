"""The daily reconciliation: every configured channel's bill and every partner bank's custody
statement of the previous day, once, after the files are out.

Channels publish a day's bill from about 09:00 the next morning (WeChat Pay: "次日9点启动生成
前一天的对账单, 建议10点后再获取",
https://pay.weixin.qq.com/docs/merchant/apis/bill-download/trade-bill/get-trade-bill.html), so
the run starts at `DEFAULT_RUN_AT` Shanghai time (configurable). What is done is in the
database, not in the worker's memory: a source with a completed run for the day is not fetched
again, and a file whose hash already has a completed run is not reconciled twice — a restarted
or second worker repeats nothing, and one that was down at 10:00 catches up when it returns.
Channels run before banks: the bank leg of day S checks the credits for the bills of S − 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from functools import partial

import structlog

from cloudpay.channels.bank import BankChannel, BankError
from cloudpay.channels.protocol import ChannelError
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.db.unit_of_work import Transact
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.errors import CloudPayError
from cloudpay.reconciliation import bank, runs, service
from cloudpay.reconciliation import repository as repo

DEFAULT_RUN_AT = time(10, 0)  # Asia/Shanghai
SCHEDULE_ACTOR = "system:schedule"
NO_STATEMENT = "NO_STATEMENT_EXIST"  # WeChat: no transaction that day, so no bill
log = structlog.get_logger(__name__)


def due_bill_date(now: datetime, run_at: time = DEFAULT_RUN_AT) -> date:
    """The day to reconcile: yesterday once `run_at` has passed in Shanghai, else the day
    before (which a worker that was down yesterday has not done yet)."""
    local = now.astimezone(SHANGHAI)
    behind = 1 if local.time() >= run_at else 2
    return local.date() - timedelta(days=behind)


def _done(transact: Transact, channel: str, day: date, sha256: str | None = None) -> bool:
    """Reconciled already; or this very file was (a rejected file is not tried again)."""
    return transact(lambda uow: repo.known_run(uow.connection, channel, day, sha256)) is not None


def reconcile_channel(
    transact: Transact, channels: ChannelRegistry | None, key: str, day: date, actor: str
) -> str:
    """Download and reconcile one connector's bill; what happened, in a word or two."""
    if _done(transact, key, day):
        return "done"
    assert channels is not None, "a connector key comes from the registry"
    adapter = channels.get(key)
    try:
        data = adapter.download_bill(day)
    except ChannelError as error:
        if error.code != NO_STATEMENT:
            return f"unavailable: {error.message}"  # tried again on the next pass
        data = b""
    if data and _done(transact, key, day, hashlib.sha256(data).hexdigest()):
        return "done"
    bill = runs.BillFile(key, day, data, f"download:{key}", adapter.code,
                            no_statement=not data)  # fmt: skip
    service.run_day(transact, bill=bill, actor=actor)
    return "reconciled"


def reconcile_bank(transact: Transact, partner: BankChannel, day: date, actor: str) -> str:
    """Download the custody account's statement of `day` and reconcile its settlement credits."""
    key = bank.bank_channel_key(partner.bank_code)
    if _done(transact, key, day):
        return "done"
    try:
        statement = partner.download_statement(partner.custody_account_no, day)
    except BankError as error:
        return f"unavailable: {error}"
    if _done(transact, key, day, hashlib.sha256(statement.raw).hexdigest()):
        return "done"
    bank.run_bank_day(
        transact, bank_code=partner.bank_code, statement_date=day, data=statement.raw,
        source=f"download:{key}", actor=actor,
    )  # fmt: skip
    return "reconciled"


def reconcile_all(
    transact: Transact, *, channels: ChannelRegistry | None, banks: Mapping[str, BankChannel],
    day: date, actor: str = SCHEDULE_ACTOR,
) -> dict[str, str]:  # fmt: skip
    """Every connector, then every bank, for `day`; one source's failure stops no other."""
    outcome: dict[str, str] = {}
    for key in channels.keys if channels is not None else ():
        work = partial(reconcile_channel, transact, channels, key, day, actor)
        outcome[key] = _guarded(work)
    for code, partner in sorted(banks.items()):
        work = partial(reconcile_bank, transact, partner, day, actor)
        outcome[bank.bank_channel_key(code)] = _guarded(work)
    if any(verdict != "done" for verdict in outcome.values()):
        log.info("reconciliation.daily", bill_date=day.isoformat(), outcome=outcome)
    return outcome


def _guarded(work: Callable[[], str]) -> str:
    try:
        return work()
    except CloudPayError as error:  # a rejected file is recorded as a rejected run
        return f"{error.code}: {error.message}"
