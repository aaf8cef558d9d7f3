"""What the reconciliation (对账) and settlement (结算) pages read and change.

Reads go through the public functions of `reconciliation` and `settlement`. Investigating and
resolving a break check the role, move the break and record the console audit entry with
before/after in the same transaction. A `repair_order` (补单) first asks the channel in its own
transactions (reconciliation's flow), so its audit entry follows in the transaction after the
break is resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from cloudpay import payments, reconciliation, settlement
from cloudpay.console.model import Permission, Scope, require
from cloudpay.console.service import Actor, record_audit, require_in_scope
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import InvalidRequest

T = TypeVar("T")
Transact = Callable[[Callable[[UnitOfWork], T]], T]
MAX_RUNS_SHOWN = 30
MAX_BREAKS_SHOWN = 100
MAX_SETTLEMENTS_SHOWN = 100
MAX_NOTE_LENGTH = 512
UNRESOLVED = (reconciliation.BreakStatus.OPEN, reconciliation.BreakStatus.INVESTIGATING)


# --- reconciliation ----------------------------------------------------------------------
def reconciliation_overview(uow: UnitOfWork, actor: Actor) -> dict[str, Any]:
    """The latest runs and every unresolved break, oldest bill first, with its age in days."""
    require(actor.role, Permission.VIEW_RECONCILIATION)
    runs = reconciliation.list_runs(uow, channel=None, bill_date=None, limit=MAX_RUNS_SHOWN,
                                    starting_after=None)  # fmt: skip
    today = reconciliation.today(uow)
    breaks = [
        _with_age(found, today)
        for status in UNRESOLVED
        for found in reconciliation.list_breaks(
            uow,
            status=status.value,
            type_=None,
            channel=None,
            bill_date=None,
            limit=MAX_BREAKS_SHOWN,
            starting_after=None,
        )
    ]
    breaks.sort(key=lambda found: (found["bill_date"], found["id"]))
    return {"runs": runs, "breaks": breaks}


def _with_age(found: dict[str, Any], today: Any) -> dict[str, Any]:
    unresolved = found["status"] != reconciliation.BreakStatus.RESOLVED
    return found | {"age_days": max((today - found["bill_date"]).days, 0) if unresolved else None}


def break_detail(uow: UnitOfWork, actor: Actor, *, break_id: str) -> dict[str, Any]:
    require(actor.role, Permission.VIEW_RECONCILIATION)
    found = _with_age(reconciliation.get_break(uow, break_id), reconciliation.today(uow))
    return {"found": found, "history": reconciliation.break_history(uow, break_id),
            "actions": list(reconciliation.Resolution)}  # fmt: skip


def break_audit_view(found: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": found["status"], "type": found["type"], "resolution": found["resolution"],
        "resolution_note": found["resolution_note"],
        "ledger_transfer_id": found["ledger_transfer_id"],
    }  # fmt: skip


def checked_note(note: str) -> str:
    cleaned = note.strip()
    if not 1 <= len(cleaned) <= MAX_NOTE_LENGTH:
        raise InvalidRequest(f"a note has 1–{MAX_NOTE_LENGTH} characters", code="note_invalid",
                             param="note")  # fmt: skip
    return cleaned


def operator_name(actor: Actor) -> str:
    """Who reconciliation's trail names: the console user, by id (emails stay out of it)."""
    return f"console:{actor.user_id}"


def investigate_break(uow: UnitOfWork, actor: Actor, *, break_id: str, note: str) -> dict[str, Any]:
    require(actor.role, Permission.RESOLVE_BREAKS)
    before = reconciliation.get_break(uow, break_id)
    after = reconciliation.investigate(uow, break_id=break_id, actor=operator_name(actor),
                                       note=checked_note(note))  # fmt: skip
    record_audit(uow, actor, action="reconciliation_break.investigate",
                 object_type="reconciliation_break", object_id=break_id,
                 before=break_audit_view(before), after=break_audit_view(after))  # fmt: skip
    return after


def resolve_break(
    uow: UnitOfWork, actor: Actor, *, break_id: str, action: reconciliation.Resolution,
    note: str, ledger_transfer_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Adjust, refund or write off, in one transaction with its audit entry."""
    require(actor.role, Permission.RESOLVE_BREAKS)
    if action is reconciliation.Resolution.REPAIR_ORDER:
        raise InvalidRequest("a repair goes through the channel", param="action")
    before = reconciliation.get_break(uow, break_id)
    after = reconciliation.resolve(
        uow, break_id=break_id, action=action, actor=operator_name(actor),
        note=checked_note(note), ledger_transfer_id=ledger_transfer_id,
    )  # fmt: skip
    _audit_resolve(uow, actor, break_id, before, after)
    return after


def repair_break(
    transact: Transact[Any], actor: Actor, context: payments.ChannelContext, *, break_id: str,
    note: str,
) -> dict[str, Any]:  # fmt: skip
    """补单 through reconciliation's flow, then the audit entry of what it did."""
    require(actor.role, Permission.RESOLVE_BREAKS)
    cleaned = checked_note(note)
    before = transact(lambda uow: reconciliation.get_break(uow, break_id))
    after = reconciliation.repair(transact, context, break_id=break_id,
                                  actor=operator_name(actor), note=cleaned)  # fmt: skip
    transact(lambda uow: _audit_resolve(uow, actor, break_id, before, after))
    return after


def _audit_resolve(
    uow: UnitOfWork, actor: Actor, break_id: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    record_audit(uow, actor, action="reconciliation_break.resolve",
                 object_type="reconciliation_break", object_id=break_id,
                 before=break_audit_view(before), after=break_audit_view(after))  # fmt: skip


# --- settlement --------------------------------------------------------------------------
def settlements_page(uow: UnitOfWork, actor: Actor, scope: Scope) -> list[dict[str, Any]]:
    """The newest settlement lines the actor's scope covers."""
    require(actor.role, Permission.VIEW_SETTLEMENTS)
    if scope.merchant_ids is None:
        return settlement.list_settlements(uow, limit=MAX_SETTLEMENTS_SHOWN)
    lines = [
        line
        for merchant_id in sorted(scope.merchant_ids)
        for line in settlement.list_settlements(
            uow, merchant_id=merchant_id, limit=MAX_SETTLEMENTS_SHOWN
        )
    ]
    lines.sort(key=lambda line: line["id"], reverse=True)
    return lines[:MAX_SETTLEMENTS_SHOWN]


def settlement_detail(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, settlement_id: str
) -> dict[str, Any]:
    """A line with its amounts and the payouts to its merchant that day; outside the scope it
    is answered as absent."""
    require(actor.role, Permission.VIEW_SETTLEMENTS)
    line, payouts = settlement.get_settlement(uow, settlement_id)
    require_in_scope(scope, line["merchant_id"])
    return {"line": line, "payouts": payouts}


def merchant_balance(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, merchant_id: str
) -> dict[str, Any] | None:
    """Pending (待结算), available, in transit and reserved; None for roles that do not read
    settlements. A write transaction: settlement opens the merchant's accounts on first read."""
    if not actor.can(Permission.VIEW_SETTLEMENTS):
        return None
    require_in_scope(scope, merchant_id)
    return settlement.balances(uow, merchant_id)


def regional_flows_page(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, start: date, end: date,
    period: settlement.Period, ctx: settlement.SettlementContext,
) -> dict[str, Any]:  # fmt: skip
    """资金闭环 across the city: for the platform's and banks' roles only, since it sums every
    merchant's money (a scoped viewer gets a 404 like any page outside its scope)."""
    require(actor.role, Permission.VIEW_SETTLEMENTS)
    require_in_scope(scope, None)  # only an unrestricted scope covers "no merchant": the city
    report = settlement.regional_flows(
        uow, start=start, end=end, period=period, policy=ctx.local, banks=sorted(ctx.banks)
    )
    return settlement.report_view(report)
