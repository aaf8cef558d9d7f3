"""A reconciliation run's records, shared by the channel leg (`service`) and the bank leg
(`bank`): the kept file, the run row, and the breaks it raises. Both legs write runs and
breaks the same way, so operators work them in one list and one flow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import NotFound
from cloudpay.kernel.ids import new_id, new_ids
from cloudpay.reconciliation import repository as repo
from cloudpay.reconciliation.model import BreakStatus

SYSTEM_ACTOR = "system:reconciliation"


@dataclass(frozen=True)
class BillFile:
    channel: str  # the connector whose merchant account the bill covers
    bill_date: date
    data: bytes
    source: str  # download:<connector> | file:<name> | rerun:<run id>
    bill_format: str  # which reader: wechat | …
    # The channel says it has no bill for the day (WeChat NO_STATEMENT_EXIST): nothing moved
    # there, so everything we booked that day is raised as missing in the channel.
    no_statement: bool = False


def keep_file(uow: UnitOfWork, *, bill: BillFile) -> str:
    """Store the raw bytes once (by sha256) so a run can be repeated from the same file."""
    digest = hashlib.sha256(bill.data).hexdigest()
    found = repo.find_file(uow.connection, bill.channel, bill.bill_date, digest)
    if found is not None:
        return found
    file_id = new_id("rcf")
    repo.insert_file(uow.connection, {
        "id": file_id, "channel": bill.channel, "bill_date": bill.bill_date,
        "source": bill.source[:256], "sha256": digest, "size_bytes": len(bill.data),
        "content": bill.data, "created_at": uow.clock.now(),
    })  # fmt: skip
    return file_id


def record_rejected(
    uow: UnitOfWork, bill: BillFile, file_id: str, reason: str, actor: str,
    started: datetime,
) -> None:  # fmt: skip
    """A run of a file read and refused: the reason kept, nothing matched or raised."""
    repo.insert_run(uow.connection, run_values(
        new_id("rcr"), bill, file_id, actor, started, uow.clock.now(), status="rejected",
        error=reason[:512],
    ))  # fmt: skip


def run_values(
    run_id: str, bill: BillFile, file_id: str | None, actor: str, started: datetime,
    finished: datetime, **values: Any,
) -> dict[str, Any]:  # fmt: skip
    """A run row: the bill it read, who and when, and its counts (`values`)."""
    empty = {"status": "completed", "error": None, "channel_rows": 0, "matched_count": 0,
             "matched_amount_fen": 0, "break_count": 0, "breaks_by_type": "{}",
             "carried_over_count": 0, "carry_in_count": 0}  # fmt: skip
    return empty | values | {
        "id": run_id, "channel": bill.channel, "bill_date": bill.bill_date,
        "file_id": file_id, "bill_format": bill.bill_format, "actor": actor[:64],
        "started_at": started,
        "finished_at": finished,
    }  # fmt: skip


def raise_breaks(uow: UnitOfWork, run_id: str, bill: BillFile, breaks: pl.DataFrame) -> None:
    """Insert each break once: a repeated run of the day finds the ones already raised."""
    known = repo.known_break_keys(uow.connection, bill.channel, bill.bill_date)
    fresh = [row for row in breaks.iter_rows(named=True) if (row["type"], row["key"]) not in known]
    now = uow.clock.now()
    ids = new_ids("rcb", len(fresh))
    repo.insert_breaks(uow.connection, [
        {**{k: v for k, v in row.items() if k != "key"}, "id": break_id, "match_key": row["key"],
         "run_id": run_id, "channel": bill.channel, "bill_date": bill.bill_date,
         "status": BreakStatus.OPEN.value, "created_at": now, "updated_at": now}
        for break_id, row in zip(ids, fresh, strict=True)
    ])  # fmt: skip
    repo.insert_break_events(uow.connection, [
        {"id": event_id, "break_id": break_id, "from_status": None, "to_status": "open",
         "action": None, "note": f"raised by run {run_id}", "actor": SYSTEM_ACTOR,
         "created_at": now}
        for event_id, break_id in zip(new_ids("rbe", len(ids)), ids, strict=True)
    ])  # fmt: skip


def get_run(uow: UnitOfWork, run_id: str) -> dict[str, Any]:
    run = repo.get_run(uow.connection, run_id)
    if run is None:
        raise NotFound(f"no reconciliation run {run_id}", param="run_id")
    run["breaks_by_type"] = json.loads(run["breaks_by_type"])
    return run
