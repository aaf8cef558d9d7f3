"""A simulated week over HTTP with two partner banks: orders every day (one paid across
midnight), the 清明 holiday (4–6 April 2026), a settlement run each morning; T+1 merchants
are paid Friday-to-Monday's takings on Tuesday, a T+3 merchant later, every fen exactly once,
and both banks' custody balances equal the ledger's at the end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine

from cloudpay.channels.bank import PartnerBankClient
from cloudpay.channels.bank.sandbox import start_bank_sandbox
from cloudpay.config import Settings
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import create_app
from cloudpay.settlement.flows import SettlementContext
from cloudpay.settlement.payouts import mirror_custody_opening
from tests.conftest import serving
from tests.e2e.api_helpers import get, post
from tests.integration.test_settlement_journal import World
from tests.integration.test_settlement_payouts import _shop

FIRST_DAY = date(2026, 3, 30)  # Monday; Friday 3 April is the last workday before 清明
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(8)]  # Mon 30 March … Mon 6 April
HOLIDAY_TUESDAY = date(2026, 4, 7)


@pytest.fixture
def week(
    settings: Settings, engine: Engine
) -> Iterator[tuple[httpx.Client, World, dict[str, PartnerBankClient]]]:
    clock = FixedClock(datetime(2026, 3, 29, 2, tzinfo=UTC))
    with (
        start_bank_sandbox(bank_code="WFCB", time_scale=0.001, clock=clock) as first,
        start_bank_sandbox(bank_code="WFRCB", time_scale=0.001, clock=clock) as second,
        PartnerBankClient(first.adapter_config(), clock=clock) as bank_a,
        PartnerBankClient(second.adapter_config(), clock=clock) as bank_b,
    ):
        banks = {"WFCB": bank_a, "WFRCB": bank_b}
        world = World(engine, clock)
        for code, bank in banks.items():
            custody = bank.balance(bank.custody_account_no).balance_fen
            world.transact(lambda uow, c=code, b=custody: mirror_custody_opening(  # type: ignore[misc]
                uow, bank_code=c, balance_fen=b))  # fmt: skip
        app = create_app(settings, engine=engine, clock=clock)
        app.state.settlement_context = SettlementContext(banks=banks)
        with serving(app) as http:
            yield http, world, banks


def test_a_week_with_a_holiday_and_two_banks(
    week: tuple[httpx.Client, World, dict[str, PartnerBankClient]],
) -> None:
    """Each morning's run settles what falls due: nothing on the holiday mornings, four
    trade days on the Tuesday after; the payment made across Thursday's midnight counts for
    Friday; the e-accounts end with exactly the nets and the custody checks pass."""
    http, world, banks = week
    daily, account_a, _ = _shop(world, banks["WFCB"], bank_code="WFCB")
    slow, account_b, _ = _shop(world, banks["WFRCB"], bank_code="WFRCB", cycle="T+3")
    settled_by_morning: dict[date, int] = {}
    for day in DAYS:
        world.at(day, 2)
        run = post(http, "/v1/settlement_runs", {"business_date": day.isoformat()})
        assert run.status_code == 200, run.text
        settled_by_morning[day] = run.json()["settled"]
        world.at(day, 12)
        world.order(daily, 1_000 + day.day)
        world.order(slow, 2_000 + day.day)
        if day == date(2026, 4, 2):
            world.at(day, 23, 59)
            world.order(daily, 777, pay_after_s=90)  # paid at 00:00:30 on Friday
    for day in (HOLIDAY_TUESDAY, date(2026, 4, 8), date(2026, 4, 9), date(2026, 4, 10)):
        world.at(day, 2)
        run = post(http, "/v1/settlement_runs", {"business_date": day.isoformat()})
        settled_by_morning[day] = run.json()["settled"]
    assert [
        settled_by_morning[d] for d in (date(2026, 4, 4), date(2026, 4, 5), date(2026, 4, 6))
    ] == [0, 0, 0]
    # Fri–Mon of the T+1 merchant, and Wednesday's trades of the T+3 one (Thu, Fri, Tue).
    assert settled_by_morning[HOLIDAY_TUESDAY] == 4 + 1
    lines = get(http, "/v1/settlements", merchant_id=daily, limit=100).json()["data"]
    friday = next(line for line in lines if line["trade_date"] == "2026-04-03")
    assert friday["gross_fen"] == 1_000 + 3 + 777
    daily_total = sum(line["net_fen"] for line in lines)
    slow_lines = get(http, "/v1/settlements", merchant_id=slow, limit=100).json()["data"]
    assert len(lines) == len(DAYS)
    assert banks["WFCB"].balance(account_a).balance_fen == daily_total
    assert banks["WFRCB"].balance(account_b).balance_fen == sum(
        line["net_fen"] for line in slow_lines
    )
    balance = get(http, f"/v1/merchants/{daily}/balance").json()
    assert (balance["available"], balance["in_transit"], balance["pending"]) == (0, 0, 0)
    custody = get(http, "/v1/settlement/custody_check").json()
    assert custody["ok"]
    assert {row["bank_code"] for row in custody["data"]} == {"WFCB", "WFRCB"}
    assert world.books_ok()
