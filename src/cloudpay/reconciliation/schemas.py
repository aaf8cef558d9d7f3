"""Wire shapes of the reconciliation operator API. Amounts are integer fen."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cloudpay.reconciliation.model import BreakStatus, Resolution, age_days, ageing_bucket

CONNECTOR_PATTERN = r"^[a-z][a-z0-9_]{1,31}$"


class RunCreate(BaseModel):
    """Download the channel's bill of `bill_date` through the connector and reconcile it."""

    model_config = ConfigDict(extra="forbid")
    channel: str = Field(pattern=CONNECTOR_PATTERN, description="the connector key")
    bill_date: date


class BreakNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=512)


class BreakResolve(BaseModel):
    """Resolving needs the action taken and why; an adjustment names its ledger journal."""

    model_config = ConfigDict(extra="forbid")
    action: Resolution
    note: str = Field(min_length=1, max_length=512)
    ledger_transfer_id: str | None = Field(default=None, max_length=64)


def run_view(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run["id"], "object": "reconciliation_run", "channel": run["channel"],
        "bill_date": run["bill_date"].isoformat(), "bill_format": run["bill_format"],
        "file_id": run["file_id"], "status": run["status"], "error": run["error"],
        "channel_rows": run["channel_rows"], "matched_count": run["matched_count"],
        "matched_amount_fen": run["matched_amount_fen"], "break_count": run["break_count"],
        "breaks_by_type": run["breaks_by_type"],
        "carried_over_count": run["carried_over_count"],
        "carry_in_count": run["carry_in_count"], "actor": run["actor"],
        "started_at": run["started_at"].isoformat(),
        "finished_at": run["finished_at"].isoformat(),
    }  # fmt: skip


def break_view(found: dict[str, Any], today: date) -> dict[str, Any]:
    unresolved = found["status"] != BreakStatus.RESOLVED
    days = age_days(found["bill_date"], today)
    stamp = {k: found[k].isoformat() if found[k] else None
             for k in ("occurred_at", "resolved_at", "created_at", "updated_at")}  # fmt: skip
    return stamp | {
        "id": found["id"], "object": "reconciliation_break", "run_id": found["run_id"],
        "channel": found["channel"], "bill_date": found["bill_date"].isoformat(),
        "type": found["type"], "kind": found["kind"], "order_id": found["order_id"],
        "refund_id": found["refund_id"], "channel_txn_id": found["channel_txn_id"],
        "channel_amount_fen": found["channel_amount_fen"],
        "platform_amount_fen": found["platform_amount_fen"],
        "channel_fee_fen": found["channel_fee_fen"],
        "platform_fee_fen": found["platform_fee_fen"],
        "channel_status": found["channel_status"], "platform_status": found["platform_status"],
        "status": found["status"], "age_days": days if unresolved else None,
        "ageing_bucket": ageing_bucket(days) if unresolved else None,
        "resolution": found["resolution"], "resolution_note": found["resolution_note"],
        "ledger_transfer_id": found["ledger_transfer_id"], "resolved_by": found["resolved_by"],
    }  # fmt: skip


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"], "from_status": event["from_status"], "to_status": event["to_status"],
        "action": event["action"], "note": event["note"], "actor": event["actor"],
        "created_at": event["created_at"].isoformat(),
    }  # fmt: skip
