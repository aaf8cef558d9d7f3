"""Reconciliation use cases: keep a bill file, reconcile a day, work a break to resolution.

Services receive the unit of work and never commit. `run_day` and `repair` span several
transactions (a channel call or a large parse never runs inside one) and take a `Transact`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from cloudpay import ledger, payments
from cloudpay.db.unit_of_work import Transact, UnitOfWork
from cloudpay.kernel.business_time import business_date, day_bounds_utc
from cloudpay.kernel.errors import Conflict, InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id, new_ids
from cloudpay.reconciliation import bank, model
from cloudpay.reconciliation import repository as repo
from cloudpay.reconciliation.bills import BillRejected, reader_for
from cloudpay.reconciliation.model import BreakStatus, Resolution
from cloudpay.reconciliation.runs import (
    BillFile,
    get_run,
    keep_file,
    raise_breaks,
    record_rejected,
    run_values,
)

OPEN_ORDER_LOOKBACK = timedelta(days=1)  # an order opened the day before may be paid today


def run_day(transact: Transact, *, bill: BillFile, actor: str) -> dict[str, Any]:
    """Keep the file, read it strictly, reconcile it against our side; a rejected file is
    recorded as a rejected run and raised to the caller."""
    started = transact(lambda uow: uow.clock.now())
    if bill.no_statement:
        return transact(
            lambda uow: reconcile_day(
                uow, bill=bill, file_id=None, channel_frame=model.empty_frame(), actor=actor,
                started_at=started,
            )
        )  # fmt: skip
    file_id = transact(lambda uow: keep_file(uow, bill=bill))
    try:
        channel_frame = reader_for(bill.bill_format)(bill.data)
    except BillRejected as rejected:
        reason = rejected.message
        transact(lambda uow: record_rejected(uow, bill, file_id, reason, actor, started))
        raise
    return transact(
        lambda uow: reconcile_day(
            uow, bill=bill, file_id=file_id, channel_frame=channel_frame, actor=actor,
            started_at=started,
        )
    )  # fmt: skip


def rerun(transact: Transact, *, run_id: str, actor: str) -> dict[str, Any]:
    """Reconcile a run's day again from exactly the file it used."""
    run = transact(lambda uow: get_run(uow, run_id))
    if run["file_id"] is None:
        raise Conflict("this run kept no file", code="run_without_file")
    data = transact(lambda uow: repo.file_content(uow.connection, run["file_id"]))
    assert data is not None, "a run's file is never deleted"
    bill = BillFile(run["channel"], run["bill_date"], data, f"rerun:{run_id}", run["bill_format"])
    if bill.bill_format == model.BANK_FORMAT:
        return bank.rerun_statement(transact, bill=bill, actor=actor)
    return run_day(transact, bill=bill, actor=actor)


def reconcile_day(
    uow: UnitOfWork, *, bill: BillFile, file_id: str | None, channel_frame: pl.DataFrame,
    actor: str, started_at: datetime,
) -> dict[str, Any]:  # fmt: skip
    """One transaction: our side in one query, yesterday's carry-over, match, record."""
    start, end = day_bounds_utc(bill.bill_date)
    rows = payments.reconciliation_rows(
        uow, connector=bill.channel, start=start, end=end, open_since=start - OPEN_ORDER_LOOKBACK
    )
    carried = repo.carried_rows(uow.connection, bill.channel, bill.bill_date - timedelta(days=1))
    repo.forget_unconsumed_carry(uow.connection, bill.channel, bill.bill_date)
    outcome = model.reconcile(
        channel_frame, model.platform_frame_from_rows(rows), business_date=bill.bill_date,
        carried_channel=_carried_frame(carried, model.Side.CHANNEL),
        carried_platform=_carried_frame(carried, model.Side.PLATFORM),
    )  # fmt: skip
    run_id = new_id("rcr")
    values = run_values(
        run_id, bill, file_id, actor, started_at, uow.clock.now(),
        channel_rows=channel_frame.height, matched_count=outcome.matched.height,
        matched_amount_fen=outcome.matched_amount_fen, break_count=outcome.breaks.height,
        breaks_by_type=json.dumps(outcome.breaks_by_type(), sort_keys=True),
        carried_over_count=outcome.carry_over.height, carry_in_count=len(carried),
    )  # fmt: skip
    repo.insert_run(uow.connection, values)
    raise_breaks(uow, run_id, bill, outcome.breaks)
    _keep_carry_over(uow, run_id, bill.channel, outcome.carry_over)
    repo.mark_consumed(uow.connection, [row.id for row in carried], run_id)
    return get_run(uow, run_id)


def _carried_frame(rows: list[Any], side: model.Side) -> pl.DataFrame:
    mine = [row for row in rows if row.side == side]
    return pl.DataFrame(
        {
            "kind": [row.kind for row in mine], "order_id": [row.order_id for row in mine],
            "refund_id": [row.refund_id for row in mine],
            "channel_txn_id": [row.channel_txn_id for row in mine],
            "amount_fen": [row.amount_fen for row in mine],
            "fee_fen": [row.fee_fen for row in mine], "status": [row.status for row in mine],
            "time": [row.occurred_at for row in mine],
            model.CARRIED_COLUMN: [row.carried_from for row in mine],
        },
        schema=model.FRAME_SCHEMA | {model.CARRIED_COLUMN: pl.Date()},
    )  # fmt: skip


def _keep_carry_over(uow: UnitOfWork, run_id: str, channel: str, carry: pl.DataFrame) -> None:
    rows = carry.rename({"time": "occurred_at"}).to_dicts()
    repo.insert_carry(uow.connection, [
        row | {"id": carry_id, "channel": channel, "created_run_id": run_id,
               "consumed_run_id": None}
        for carry_id, row in zip(new_ids("rco", len(rows)), rows, strict=True)
    ])  # fmt: skip


# ---------------------------------------------------------------- reading


def list_runs(uow: UnitOfWork, **filters: Any) -> list[dict[str, Any]]:
    return [get_run(uow, row["id"]) for row in repo.list_runs(uow.connection, **filters)]


def get_break(uow: UnitOfWork, break_id: str, *, lock: bool = False) -> dict[str, Any]:
    found = repo.get_break(uow.connection, break_id, lock=lock)
    if found is None:
        raise NotFound(f"no reconciliation break {break_id}", param="break_id")
    return found


def break_history(uow: UnitOfWork, break_id: str) -> list[dict[str, Any]]:
    return repo.break_events(uow.connection, break_id)


def today(uow: UnitOfWork) -> date:
    return business_date(uow.clock.now())


def daily_report(uow: UnitOfWork, *, channel: str, bill_date: date) -> dict[str, Any]:
    """The day's latest completed run, its carry-over, and the ageing of unresolved breaks."""
    runs = [r for r in list_runs(uow, channel=channel, bill_date=bill_date, limit=50,
                                 starting_after=None) if r["status"] == "completed"]  # fmt: skip
    if not runs:
        raise NotFound(f"no completed run for {channel} on {bill_date}", code="run_missing")
    latest = runs[0]
    ageing: dict[str, int] = {}
    for _status, _type, day in repo.unresolved_breaks(uow.connection, channel):
        bucket = model.ageing_bucket(model.age_days(day, today(uow)))
        ageing[bucket] = ageing.get(bucket, 0) + 1
    return {
        "object": "reconciliation_report", "channel": channel, "bill_date": bill_date,
        "run_id": latest["id"], "matched_count": latest["matched_count"],
        "matched_amount_fen": latest["matched_amount_fen"],
        "break_count": latest["break_count"], "breaks_by_type": latest["breaks_by_type"],
        "carried_over_count": latest["carried_over_count"],
        "carry_in_count": latest["carry_in_count"], "unresolved_by_age": ageing,
        "bank_leg": _bank_leg(uow, latest),
    }  # fmt: skip


def _bank_leg(uow: UnitOfWork, run: dict[str, Any]) -> dict[str, Any] | None:
    """The bank leg of a channel's day: was its settlement credit checked, and what broke."""
    reference = model.settlement_reference(run["bill_format"], run["bill_date"])
    if reference is None:
        return None
    statement_date = run["bill_date"] + model.SETTLEMENT_LAG
    checked = [r for r in repo.list_runs(uow.connection, channel=None, bill_date=statement_date,
                                         limit=1_000, starting_after=None)
               if r["bill_format"] == model.BANK_FORMAT and r["status"] == "completed"]  # fmt: skip
    breaks = repo.breaks_of_key(uow.connection, statement_date, reference)
    return {
        "reference": reference, "statement_date": statement_date, "checked": bool(checked),
        "breaks": [{"id": b["id"], "type": b["type"], "status": b["status"],
                    "bank_amount_fen": b["channel_amount_fen"],
                    "bill_amount_fen": b["platform_amount_fen"]} for b in breaks],
    }  # fmt: skip


# ---------------------------------------------------------------- a break's life


def investigate(uow: UnitOfWork, *, break_id: str, actor: str, note: str) -> dict[str, Any]:
    return _move(uow, break_id, BreakStatus.INVESTIGATING, actor=actor, note=note, action=None)


def resolve(
    uow: UnitOfWork, *, break_id: str, action: Resolution, actor: str, note: str,
    ledger_transfer_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Close a break with the action taken. `repair_order` goes through `repair` instead."""
    if action is Resolution.ADJUST:
        if not ledger_transfer_id:
            raise InvalidRequest(
                "an adjustment names its ledger journal",
                code="ledger_transfer_required", param="ledger_transfer_id",
            )  # fmt: skip
        ledger.get_transfer(uow, ledger_transfer_id)  # NotFound unless the journal exists
    elif ledger_transfer_id:
        raise InvalidRequest("only an adjustment names a ledger journal",
                             param="ledger_transfer_id")  # fmt: skip
    return _move(uow, break_id, BreakStatus.RESOLVED, actor=actor, note=note, action=action,
                 ledger_transfer_id=ledger_transfer_id)  # fmt: skip


def check_repairable(uow: UnitOfWork, break_id: str) -> str:
    """The order a `repair_order` would repair; refused for any other break."""
    found = get_break(uow, break_id)
    if found["status"] == BreakStatus.RESOLVED:
        raise Conflict("the break is already resolved", code="break_resolved")
    if found["type"] not in model.REPAIRABLE or found["kind"] != model.Kind.PAYMENT:
        raise Conflict("only a payment the channel has and we lack can be repaired",
                       code="break_not_repairable")  # fmt: skip
    return str(found["order_id"])


def repair(
    transact: Transact, ctx: payments.ChannelContext, *, break_id: str, actor: str, note: str
) -> dict[str, Any]:
    """补单: query the channel, apply its answer through payments' state machine (which sends
    the merchant's webhook), and resolve the break only if the order is now paid."""
    order_id = transact(lambda uow: check_repairable(uow, break_id))
    try:
        order = payments.repair_order(transact, ctx, order_id=order_id)
    except NotFound as missing:
        raise Conflict("the order is unknown to us: refund or write off instead",
                       code="repair_order_unknown") from missing  # fmt: skip
    if order.status not in PAID:
        raise Conflict(f"the channel does not confirm a payment (order is {order.status})",
                       code="repair_not_confirmed")  # fmt: skip
    return transact(
        lambda uow: _move(uow, break_id, BreakStatus.RESOLVED, actor=actor, note=note,
                          action=Resolution.REPAIR_ORDER)
    )  # fmt: skip


PAID = frozenset({payments.OrderStatus.SUCCEEDED, payments.OrderStatus.PARTIALLY_REFUNDED,
                  payments.OrderStatus.REFUNDED})  # fmt: skip


def _move(
    uow: UnitOfWork, break_id: str, target: BreakStatus, *, actor: str, note: str,
    action: Resolution | None, ledger_transfer_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    found = get_break(uow, break_id, lock=True)
    current = BreakStatus(found["status"])
    if not model.can_move(current, target):
        raise Conflict(f"a break that is {current} cannot become {target}",
                       code=f"break_{current}")  # fmt: skip
    now = uow.clock.now()
    changes: dict[str, Any] = {"status": target.value, "updated_at": now}
    if target is BreakStatus.RESOLVED:
        changes |= {"resolution": action.value if action else None, "resolution_note": note,
                    "resolved_by": actor, "resolved_at": now,
                    "ledger_transfer_id": ledger_transfer_id}  # fmt: skip
    repo.update_break(uow.connection, break_id, **changes)
    repo.insert_break_events(uow.connection, [{
        "id": new_id("rbe"), "break_id": break_id, "from_status": current.value,
        "to_status": target.value, "action": action.value if action else None, "note": note,
        "actor": actor, "created_at": now,
    }])  # fmt: skip
    return get_break(uow, break_id)


def list_breaks(uow: UnitOfWork, **filters: Any) -> list[dict[str, Any]]:
    return repo.list_breaks(uow.connection, **filters)
