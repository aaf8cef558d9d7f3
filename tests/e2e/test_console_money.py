"""The console's reconciliation and settlement pages over real HTTP on both databases: who reads
them, who may investigate and resolve a break (CSRF, audited with before/after, plain forms),
bad input as a 4xx page that writes nothing, and settlements limited to the viewer's scope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from cloudpay.config import Settings
from cloudpay.console import Role
from cloudpay.console.tables import console_audit_log
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.ids import new_id
from cloudpay.reconciliation import repository as recon_repository
from cloudpay.settlement.tables import settlement_lines
from tests.browser.console_world import World, open_world

RESOLVERS = (Role.PLATFORM_ADMIN, Role.RISK_OFFICER)
READ_ONLY = (Role.AUDITOR, Role.BANK)
OUTSIDERS = (Role.AGENT, Role.MERCHANT)


@dataclass
class Breaks:
    run_id: str
    missing: str  # missing_in_platform, ¥12.34 at the channel, bill two days ago
    amount: str  # amount_mismatch, ¥50.00 at the channel and ¥49.00 with us


def raise_breaks(engine: Engine, clock: FixedClock) -> Breaks:
    """A completed WeChat run with two open breaks, written through reconciliation's repository
    as its run would write them."""
    now = clock.now()
    bill_date = business_date(now) - timedelta(days=2)
    run_id, missing, amount = new_id("rcr"), new_id("rcb"), new_id("rcb")

    def write(uow: UnitOfWork) -> None:
        recon_repository.insert_run(uow.connection, {
            "id": run_id, "channel": "wechat", "bill_date": bill_date, "file_id": None,
            "bill_format": "wechat", "status": "completed", "error": None, "channel_rows": 3,
            "matched_count": 1, "matched_amount_fen": 10_000, "break_count": 2,
            "breaks_by_type": json.dumps({"missing_in_platform": 1, "amount_mismatch": 1}),
            "carried_over_count": 0, "carry_in_count": 0, "actor": "test",
            "started_at": now, "finished_at": now,
        })  # fmt: skip
        recon_repository.insert_breaks(uow.connection, [
            _break(missing, run_id, bill_date, "missing_in_platform", 1234, None, now),
            _break(amount, run_id, bill_date, "amount_mismatch", 5000, 4900, now),
        ])  # fmt: skip

    run_in_transaction(engine, write, clock=clock)
    return Breaks(run_id, missing, amount)


def _break(
    break_id: str, run_id: str, bill_date: date, type_: str, channel_fen: int,
    platform_fen: int | None, now: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": break_id, "run_id": run_id, "channel": "wechat", "bill_date": bill_date,
        "type": type_, "kind": "payment", "match_key": f"ord_{break_id[4:]}",
        "order_id": f"ord_{break_id[4:]}", "refund_id": None, "channel_txn_id": "4200001",
        "channel_amount_fen": channel_fen, "platform_amount_fen": platform_fen,
        "channel_fee_fen": None, "platform_fee_fen": None, "channel_status": "SUCCESS",
        "platform_status": None, "occurred_at": now, "status": "open", "resolution": None,
        "resolution_note": None, "ledger_transfer_id": None, "resolved_by": None,
        "resolved_at": None, "created_at": now, "updated_at": now,
    }  # fmt: skip


@pytest.fixture
def world(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[World]:
    with open_world(settings, engine, clock) as opened:
        yield opened


@pytest.fixture
def breaks(world: World) -> Breaks:
    return raise_breaks(world.engine, world.clock)


def audit_entries(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = [
            dict(row._mapping)
            for row in connection.execute(
                select(console_audit_log).order_by(console_audit_log.c.id)
            )
        ]
    return [row | {"before": json.loads(row["before"]), "after": json.loads(row["after"])}
            for row in rows]  # fmt: skip


def audit_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(console_audit_log))
                   .scalar_one())  # fmt: skip


def break_status(engine: Engine, break_id: str) -> str:
    with engine.connect() as connection:
        found = recon_repository.get_break(connection, break_id)
    assert found is not None
    return str(found["status"])


def test_reconciliation_is_read_by_four_roles_and_refused_to_agent_and_merchant(
    world: World, breaks: Breaks
) -> None:
    """Admin, risk, auditor and bank see the run and both breaks with their age; only admin and
    risk get the resolve form; agent and merchant get a 403 and no menu entry."""
    for role in RESOLVERS + READ_ONLY:
        session = world.session(role)
        page = session.get("/console/reconciliation", lang="en")
        assert page.status_code == 200, role
        assert 'href="/console/reconciliation"' in page.text
        row = page.text.split(f'id="break-{breaks.missing}"', 1)[1].split("</tr>", 1)[0]
        assert "missing_in_platform" in row
        assert "¥12.34" in row
        assert "<td>2</td>" in row  # two days since the bill date
        run = page.text.split(f'id="run-{breaks.run_id}"', 1)[1].split("</tr>", 1)[0]
        assert "¥100.00" in run
        assert "amount_mismatch: 1, missing_in_platform: 1" in run
        detail = session.get(f"/console/reconciliation/breaks/{breaks.amount}", lang="en")
        assert detail.status_code == 200, role
        assert "¥49.00" in detail.text
        assert ('id="resolve-form"' in detail.text) is (role in RESOLVERS), role
    for role in OUTSIDERS:
        session = world.session(role)
        assert session.get("/console/reconciliation").status_code == 403, role
        path = f"/console/reconciliation/breaks/{breaks.missing}"
        assert session.get(path).status_code == 403, role
        assert 'href="/console/reconciliation"' not in session.get("/console/orders").text


def test_risk_investigates_then_resolves_with_an_audit_entry_each(
    world: World, breaks: Breaks
) -> None:
    """Investigate then write off: the break's trail and the console's log both record it."""
    risk = world.session(Role.RISK_OFFICER)
    base = f"/console/reconciliation/breaks/{breaks.missing}"
    looked = risk.post(base + "/investigate", {"note": "asked the bank for the slip"})
    assert (looked.status_code, looked.headers["location"]) == (303, base)
    assert break_status(world.engine, breaks.missing) == "investigating"
    done = risk.post(base + "/resolve", {"action": "write_off", "note": "customer gift, ¥12.34"})
    assert (done.status_code, done.headers["location"]) == (303, base)
    assert break_status(world.engine, breaks.missing) == "resolved"
    investigated, resolved = audit_entries(world.engine)
    assert investigated["action"] == "reconciliation_break.investigate"
    assert (investigated["before"]["status"], investigated["after"]["status"]) == (
        "open", "investigating")  # fmt: skip
    assert (resolved["action"], resolved["object_id"]) == (
        "reconciliation_break.resolve", breaks.missing)  # fmt: skip
    assert resolved["before"]["resolution"] is None
    after = resolved["after"]
    assert (after["status"], after["resolution"], after["resolution_note"]) == (
        "resolved", "write_off", "customer gift, ¥12.34")  # fmt: skip
    page = risk.get(base, lang="en").text
    assert "Write off — customer gift, ¥12.34" in page
    assert "investigating → resolved" in page
    assert 'id="resolve-form"' not in page
    listed = risk.get("/console/reconciliation").text
    assert f'id="break-{breaks.missing}"' not in listed
    assert f'id="break-{breaks.amount}"' in listed


def test_read_only_roles_and_a_missing_csrf_token_change_nothing(
    world: World, breaks: Breaks
) -> None:
    """Auditor, bank, agent and merchant get 403; the admin without the token gets 403."""
    path = f"/console/reconciliation/breaks/{breaks.amount}/resolve"
    form = {"action": "refund", "note": "paid back"}
    for role in READ_ONLY + OUTSIDERS:
        assert world.session(role).post(path, form).status_code == 403, role
    admin = world.session(Role.PLATFORM_ADMIN)
    refused = admin.post(path, form, csrf=False)
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text
    assert break_status(world.engine, breaks.amount) == "open"
    assert audit_count(world.engine) == 0


@pytest.mark.parametrize(
    ("path", "form", "status", "code"),
    [
        ("/console/reconciliation/breaks/rcb_00000000000000000000000000/resolve",
         {"action": "refund", "note": "x"}, 404, "resource_missing"),
        ("/console/reconciliation/breaks/not-a-break/resolve",
         {"action": "refund", "note": "x"}, 400, "parameter_invalid"),
        ("/console/reconciliation/breaks/{amount}/resolve",
         {"action": "shrug", "note": "x"}, 400, "parameter_invalid"),
        ("/console/reconciliation/breaks/{amount}/resolve", {"action": "refund"}, 400,
         "parameter_invalid"),
        ("/console/reconciliation/breaks/{amount}/resolve",
         {"action": "refund", "note": "   "}, 400, "note_invalid"),
        ("/console/reconciliation/breaks/{amount}/resolve",
         {"action": "adjust", "note": "books"}, 400, "ledger_transfer_required"),
        ("/console/reconciliation/breaks/{amount}/resolve",
         {"action": "refund", "note": "x", "ledger_transfer_id": "trf_1"}, 400,
         "invalid_request"),
        ("/console/reconciliation/breaks/{amount}/resolve",
         {"action": "adjust", "note": "x", "ledger_transfer_id": "trf_nothing"}, 404,
         "resource_missing"),
        ("/console/reconciliation/breaks/{amount}/investigate", {"note": "x" * 513}, 400,
         "parameter_invalid"),
        ("/console/reconciliation/breaks/{amount}/resolve",
         {"action": "repair_order", "note": "x"}, 409, "break_not_repairable"),
        ("/console/reconciliation/breaks/{missing}/resolve",
         {"action": "repair_order", "note": "x"}, 409, "repair_order_unknown"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_page_and_writes_nothing(
    world: World, breaks: Breaks, path: str, form: dict[str, str], status: int, code: str
) -> None:
    """Unknown or malformed ids, actions and notes are answered with the error page."""
    admin = world.session(Role.PLATFORM_ADMIN)
    response = admin.post(path.format(amount=breaks.amount, missing=breaks.missing), form)
    assert response.status_code == status, response.text
    assert 'class="error"' in response.text
    assert code in response.text
    assert break_status(world.engine, breaks.amount) == "open"
    assert break_status(world.engine, breaks.missing) == "open"
    assert audit_count(world.engine) == 0


def test_a_resolved_break_cannot_be_resolved_again(world: World, breaks: Breaks) -> None:
    """The second resolve is a 409 and adds no audit entry."""
    admin = world.session(Role.PLATFORM_ADMIN)
    path = f"/console/reconciliation/breaks/{breaks.amount}/resolve"
    assert admin.post(path, {"action": "refund", "note": "paid back"}).status_code == 303
    again = admin.post(path, {"action": "write_off", "note": "again"})
    assert again.status_code == 409
    assert "break_resolved" in again.text
    assert audit_count(world.engine) == 1


def _settle(engine: Engine, clock: FixedClock, merchant_id: str, net_fen: int) -> str:
    """One settlement line, as settlement's run writes it (test setup)."""
    line_id, now = new_id("stl"), clock.now()
    day = business_date(now)
    values = {
        "id": line_id, "run_id": new_id("srn"), "merchant_id": merchant_id, "trade_date": day,
        "business_date": day, "currency": "CNY", "orders_count": 3, "unpriced_orders": 0,
        "gross_fen": net_fen + 60, "refunds_fen": 0, "fees_fen": 60, "fee_returns_fen": 0,
        "channel_cost_fen": 30, "commissions_fen": 0, "commissions": "{}",
        "fee_plan_ids": "[]", "splits_fen": 0, "split_returns_fen": 0, "reserve_held_fen": 0,
        "reserve_release_on": None, "reserve_released_on": None, "net_fen": net_fen,
        "status": "settled", "refusal": None, "created_at": now,
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(settlement_lines).values(values))
    return line_id


def test_settlements_are_limited_to_the_viewers_scope(world: World) -> None:
    """The merchant and its agent see its line only; the platform sees both; a line outside
    the scope is a 404 like an unknown one."""
    city = world.city
    mine = _settle(world.engine, world.clock, city.merchant_id, 98_765)
    theirs = _settle(world.engine, world.clock, city.other_merchant_id, 4_321)
    for role in (Role.MERCHANT, Role.AGENT):
        session = world.session(role)
        listed = session.get("/console/settlements", lang="en")
        assert listed.status_code == 200, role
        assert f'id="settlement-{mine}"' in listed.text
        assert "¥987.65" in listed.text
        assert f'id="settlement-{theirs}"' not in listed.text, role
        assert session.get(f"/console/settlements/{theirs}").status_code == 404, role
        detail = session.get(f"/console/settlements/{mine}", lang="en")
        assert detail.status_code == 200, role
        assert "¥988.25" in detail.text  # gross
    admin = world.session(Role.PLATFORM_ADMIN).get("/console/settlements").text
    assert f'id="settlement-{mine}"' in admin
    assert f'id="settlement-{theirs}"' in admin
    admin_session = world.session(Role.PLATFORM_ADMIN)
    assert admin_session.get("/console/settlements/stl_00000000000").status_code == 404
    assert admin_session.get("/console/settlements/nope").status_code == 400


def test_the_merchant_page_shows_its_balance_in_scope_only(world: World) -> None:
    """Pending, available, in transit and reserved show on the merchant's own page (all zero
    before any payment); another merchant's page stays a 404 for the merchant user."""
    session = world.session(Role.MERCHANT)
    page = session.get(f"/console/merchants/{world.city.merchant_id}", lang="en")
    assert page.status_code == 200
    section = page.text.split('id="merchant-balance"', 1)[1].split("</section>", 1)[0]
    for label in ("Pending", "Available", "In transit", "Reserved"):
        row = section.split(f"<th>{label}</th>", 1)[1].split("</tr>", 1)[0]
        assert "<td>¥0.00</td>" in row, label
    other = session.get(f"/console/merchants/{world.city.other_merchant_id}")
    assert other.status_code == 404
