"""`cloudpay settle run`: the partner banks come from the connectors file; without one the
command says so and exits non-zero; with two it pays each merchant through its own bank."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cloudpay.channels.bank import PartnerBankClient
from cloudpay.channels.bank.protocol import AccountClass as BankClass
from cloudpay.channels.bank.protocol import OwnerKind
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant
from cloudpay.cli import app
from cloudpay.config import get_settings
from cloudpay.kernel.clock import FixedClock
from cloudpay.settlement import FeePlan
from cloudpay.settlement.payouts import mirror_custody_opening
from tests.integration.test_settlement_journal import MONDAY, World

BANKS = ("WFCB", "WFRCB")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC))


@pytest.fixture
def banks() -> Iterator[dict[str, BankSandbox]]:
    with (
        start_bank_sandbox(bank_code=BANKS[0], time_scale=0.001) as first,
        start_bank_sandbox(bank_code=BANKS[1], time_scale=0.001) as second,
    ):
        yield {BANKS[0]: first, BANKS[1]: second}


def _connectors_file(
    tmp_path: Path, banks: dict[str, BankSandbox], not_local: tuple[str, ...] = ()
) -> Path:
    tmp_path.mkdir(exist_ok=True)
    entries = []
    for code, sandbox in banks.items():
        config = sandbox.adapter_config()
        (tmp_path / f"{code}-client.pem").write_text(config.client_private_key_pem.reveal())
        (tmp_path / f"{code}-bank.pem").write_text(config.bank_public_key_pem)
        entries.append({
            "key": code, "channel": "bank", "client_id": config.client_id,
            "client_private_key_file": f"{code}-client.pem",
            "client_serial_no": config.client_serial_no,
            "bank_public_key_file": f"{code}-bank.pem", "bank_serial_no": config.bank_serial_no,
            "custody_account_no": config.custody_account_no, "base_url": config.base_url,
            "local": code not in not_local,
        })  # fmt: skip
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps({"connectors": entries}))
    return path


def _settle(database_url: str, connectors: Path | None, *args: str) -> tuple[int, str]:
    env = {"CLOUDPAY_DATABASE_URL": database_url, "CLOUDPAY_LOG_LEVEL": "WARNING"}
    env["CLOUDPAY_CONNECTORS_FILE"] = str(connectors) if connectors else ""
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["settle", *args], env=env)
    finally:
        get_settings.cache_clear()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    # `output` has stdout and stderr interleaved (Click 8.2+); the summary is the indented JSON.
    return result.exit_code, result.output


def test_without_a_partner_bank_the_run_refuses_clearly(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """No connectors file, or one without a bank: exit 2 and a message naming the fix;
    settling without paying out needs no bank."""
    day = (MONDAY + timedelta(days=1)).isoformat()
    code, output = _settle(database_url, None, "run", "--date", day)
    assert code == 2
    assert "no partner bank configured" in output
    no_bank = tmp_path / "connectors.json"
    no_bank.write_text(json.dumps({"connectors": []}))
    code, output = _settle(database_url, no_bank, "run", "--date", day)
    assert code == 2
    assert "no partner bank configured" in output
    assert str(no_bank) in output.replace("\n", "")  # rich wraps long paths
    code, output = _settle(database_url, None, "run", "--date", day, "--no-pay-out")
    assert code == 0, output
    assert json.loads(output[output.index("{\n") :])["settled"] == 0


def test_a_bad_connectors_file_names_the_bank_and_the_field(
    engine: Engine, database_url: str, tmp_path: Path, banks: dict[str, BankSandbox]
) -> None:
    """A bank entry missing its custody account is refused with the bank and field named."""
    path = _connectors_file(tmp_path, banks)
    document = json.loads(path.read_text())
    del document["connectors"][1]["custody_account_no"]
    path.write_text(json.dumps(document))
    code, output = _settle(database_url, path, "run", "--date", "2026-03-03")
    assert code == 2
    assert "connector WFRCB: custody_account_no is required" in " ".join(output.split())


def test_the_run_pays_each_merchant_through_its_bank_from_the_file(
    engine: Engine,
    database_url: str,
    clock: FixedClock,
    tmp_path: Path,
    banks: dict[str, BankSandbox],
) -> None:
    """Two merchants at two banks of the connectors file: one run pays both, each into its
    e-account at its own bank; running again pays nothing twice."""
    world = World(engine, clock)
    accounts = {}
    for code, amount_fen in zip(BANKS, (123_400, 56_700), strict=True):
        with PartnerBankClient(banks[code].adapter_config()) as client:
            custody = client.balance(client.custody_account_no).balance_fen
            world.transact(lambda uow, c=code, b=custody: mirror_custody_opening(
                uow, bank_code=c, balance_fen=b
            ))  # fmt: skip
            person = applicant()
            shop = world.merchant()
            opened = client.open_account(person.open_request(
                BankClass.CLASS_II, owner_reference=shop, owner_kind=OwnerKind.MERCHANT
            ))  # fmt: skip
        world.fee_plan(shop, FeePlan.percent(0))
        world.profile(shop, bank_code=code, account_no=opened.account_no)
        world.at(MONDAY, 10)
        world.order(shop, amount_fen)
        accounts[code] = (opened.account_no, amount_fen)
    connectors = _connectors_file(tmp_path, banks)
    day = (MONDAY + timedelta(days=1)).isoformat()
    code, output = _settle(database_url, connectors, "run", "--date", day)
    assert code == 0, output
    summary = json.loads(output[output.index("{\n") :])
    assert (summary["settled"], summary["payouts"]) == (2, {"succeeded": 2})
    for bank_code, (account_no, amount_fen) in accounts.items():
        with PartnerBankClient(banks[bank_code].adapter_config()) as client:
            assert client.balance(account_no).balance_fen == amount_fen
    code, output = _settle(database_url, connectors, "run", "--date", day)
    assert code == 0, output
    assert json.loads(output[output.index("{\n") :])["payouts"] == {}
    _the_report_counts_the_other_bank_as_leaving(database_url, tmp_path, banks, day)


def _the_report_counts_the_other_bank_as_leaving(
    database_url: str, tmp_path: Path, banks: dict[str, BankSandbox], day: str
) -> None:
    """`settle report`: with WFRCB marked not local, its payout counts as leaving the region."""
    connectors = _connectors_file(tmp_path / "report", banks, not_local=("WFRCB",))
    window = ("--from", MONDAY.isoformat(), "--to", day)
    code, output = _settle(database_url, connectors, "report", *window)
    assert code == 0, output
    report = json.loads(output[output.index("{\n") :])
    by_bank = {b["bank_code"]: b for b in report["banks"]}
    assert (by_bank["WFCB"]["local"], by_bank["WFCB"]["settled_fen"]) == (True, 123_400)
    assert (by_bank["WFRCB"]["local"], by_bank["WFRCB"]["left_fen"]) == (False, 56_700)
    assert (by_bank["WFCB"]["receipts_fen"], by_bank["WFRCB"]["receipts_fen"]) == (123_400, 56_700)
    assert (report["kept_fen"], report["left_fen"]) == (123_400, 56_700)
    assert report["local_share_bp"] == 6_852  # 123,400 / 180,100, half-up
    code, output = _settle(database_url, connectors, "report", *window, "--period", "week", "--csv")
    assert code == 0, output
    assert "week,2026-03-02,123400,56700,6852" in output
    code, output = _settle(database_url, connectors, "report", "--from", day, "--to", "2026-03-01")
    assert code == 2
    assert "before" in output
