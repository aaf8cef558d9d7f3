"""The daily reconciliation is on in a deployment: a worker context built from settings
runs it at 10:00 (or the configured time) over the connectors file's partner banks, "off"
turns it off, and `cloudpay recon run` without a channel includes the banks too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.cli import app
from cloudpay.config import Settings, get_settings
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.clock import SystemClock
from cloudpay.main import worker_context
from cloudpay.reconciliation import DEFAULT_RUN_AT, bank_channel_key, due_bill_date, list_runs
from cloudpay.worker import JOBS, WorkerContext

BANK = "WFCB"
DAILY = next(job for job in JOBS if job.name == "reconciliation.daily")


@pytest.fixture
def bank() -> Iterator[BankSandbox]:
    with start_bank_sandbox(bank_code=BANK, time_scale=0.001) as sandbox:
        yield sandbox


@pytest.fixture
def connectors(tmp_path: Path, bank: BankSandbox) -> Path:
    """A connectors file naming the partner bank (as `cloudpay settle` reads it)."""
    config = bank.adapter_config()
    (tmp_path / "client.pem").write_text(config.client_private_key_pem.reveal())
    (tmp_path / "bank.pem").write_text(config.bank_public_key_pem)
    entry = {
        "key": BANK, "channel": "bank", "client_id": config.client_id,
        "client_private_key_file": "client.pem", "client_serial_no": config.client_serial_no,
        "bank_public_key_file": "bank.pem", "bank_serial_no": config.bank_serial_no,
        "custody_account_no": config.custody_account_no, "base_url": config.base_url,
    }  # fmt: skip
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps({"connectors": [entry]}))
    return path


def _worker(
    engine: Engine, settings: Settings, connectors: Path, tmp_path: Path, **changes: Any
) -> WorkerContext:
    configured = settings.model_copy(update={
        "connectors_file": str(connectors), "platform_keys_dir": tmp_path / "keys", **changes,
    })  # fmt: skip
    # The real clock: the bank refuses a request signed far from its own time.
    return worker_context(configured, engine, SystemClock())


def _bank_runs(context: WorkerContext, day: date) -> list[str]:
    runs = context.transact(
        lambda uow: list_runs(uow, channel=bank_channel_key(BANK), bill_date=day, limit=10,
                              starting_after=None)
    )  # fmt: skip
    return [run["status"] for run in runs]


def test_a_worker_from_settings_reconciles_daily_with_the_configured_banks(
    engine: Engine, settings: Settings, connectors: Path, tmp_path: Path
) -> None:
    """By default the job is on at 10:00 with the file's bank: it checks the due day's
    custody statement once; a second pass repeats nothing."""
    context = _worker(engine, settings, connectors, tmp_path)
    assert (context.reconcile_at, set(context.banks)) == (DEFAULT_RUN_AT, {BANK})
    due = due_bill_date(context.clock.now())
    assert DAILY.run(context) == 1
    assert _bank_runs(context, due) == ["completed"]
    assert DAILY.run(context) == 0


def test_the_setting_moves_or_turns_off_the_daily_run(
    engine: Engine, settings: Settings, connectors: Path, tmp_path: Path
) -> None:
    """CLOUDPAY_RECONCILE_AT=off: no reconciliation from this worker; a time moves it."""
    off = _worker(engine, settings, connectors, tmp_path, reconcile_at="off")
    assert off.reconcile_at is None
    assert DAILY.run(off) == 0
    assert _bank_runs(off, due_bill_date(off.clock.now())) == []
    later = _worker(engine, settings, connectors, tmp_path, reconcile_at=time(12, 30))
    assert later.reconcile_at == time(12, 30)


def test_settings_refuse_a_start_that_is_neither_a_time_nor_off() -> None:
    """A typo is refused at start-up, not read as "off" or as the default."""
    with pytest.raises(ValueError, match="reconcile_at"):
        Settings(reconcile_at="soon")  # type: ignore[arg-type]


def test_recon_run_without_a_channel_includes_the_partner_banks(
    database_url: str, connectors: Path
) -> None:
    """`cloudpay recon run --date D` reconciles every configured bank's statement of D."""
    day = datetime.now(SHANGHAI).date() - timedelta(days=1)
    env = {"CLOUDPAY_DATABASE_URL": database_url, "CLOUDPAY_CONNECTORS_FILE": str(connectors),
           "CLOUDPAY_LOG_LEVEL": "WARNING"}  # fmt: skip
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["recon", "run", "--date", day.isoformat()], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    # The outcome is the indented JSON on stdout; a log line from the run may come before it.
    outcome = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert outcome == {bank_channel_key(BANK): "reconciled"}
