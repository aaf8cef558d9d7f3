"""Red packets on SQLite and PostgreSQL: the funder pays the total into the packet, each citizen
claims one share once, the job returns what is left after the return time, and every movement is
a ledger transfer with an id derived from the packet."""

from __future__ import annotations

from random import Random

import pytest
from sqlalchemy import Engine

from cloudpay import ledger
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger import Purpose, Transfer
from cloudpay.marketing import (
    RedPacketDraft,
    claim_red_packet,
    create_red_packet,
    get_red_packet,
    return_unclaimed_red_packets,
)
from cloudpay.marketing.model import RedPacketStatus, SplitMode, red_packet_transfer_id
from cloudpay.marketing.red_packets import list_shares, wallet_account_id
from cloudpay.worker.jobs import WorkerContext, run_due_jobs
from tests.integration.test_marketing_claims import START, in_tx, refusal, register

FUNDER = "merchant:mch_red_packet_funder"


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START)


def funder_account(engine: Engine, clock: FixedClock, balance_fen: int) -> str:
    """A merchant's available balance (it cannot be overdrawn) holding `balance_fen`."""

    def open_and_fill(uow: UnitOfWork) -> str:
        account = ledger.open_chart_account(uow, Purpose.MERCHANT_AVAILABLE, FUNDER)
        if balance_fen:
            source = ledger.open_chart_account(uow, Purpose.FUNDING, ledger.PLATFORM)
            fill = Transfer(
                f"fill:{account.id}", source.id, account.id, balance_fen, "CNY", "test.fill"
            )
            assert ledger.create_transfer(uow, fill).ok
        return account.id

    return in_tx(engine, clock, open_and_fill)


def balance(engine: Engine, clock: FixedClock, account_id: str) -> int:
    return in_tx(engine, clock, lambda uow: ledger.get_account(uow, account_id).balance.net_credit)


def wallet_of(engine: Engine, clock: FixedClock, citizen_id: str) -> str:
    return in_tx(engine, clock, lambda uow: wallet_account_id(uow, citizen_id, "CNY"))


def new_packet(engine: Engine, clock: FixedClock, funder: str, **changes: object) -> str:
    fields: dict[str, object] = {
        "funder_account_id": funder, "total_fen": 1_000, "count": 3,
        "mode": SplitMode.RANDOM, "max_part_fen": 600,
    }  # fmt: skip
    fields.update(changes)
    draft = RedPacketDraft(**fields)  # type: ignore[arg-type]
    return in_tx(engine, clock, lambda uow: create_red_packet(uow, draft, rng=Random(5))).id


def claim(engine: Engine, clock: FixedClock, packet_id: str, citizen_id: str) -> int:
    share = in_tx(
        engine, clock, lambda uow: claim_red_packet(uow, packet_id, citizen_id=citizen_id)
    )
    return share.amount_fen


def test_creation_moves_the_total_from_the_funder_into_the_packet(
    engine: Engine, world_clock: FixedClock
) -> None:
    """The funder's balance pays the whole total at creation, into the packet's own account."""
    funder = funder_account(engine, world_clock, 5_000)
    packet_id = new_packet(engine, world_clock, funder)
    packet = in_tx(engine, world_clock, lambda uow: get_red_packet(uow, packet_id))
    assert (packet.status, packet.total_fen, packet.claimed_count) == (
        RedPacketStatus.OPEN,
        1_000,
        0,
    )
    assert balance(engine, world_clock, funder) == 4_000
    assert balance(engine, world_clock, packet.account_id) == 1_000
    fund = in_tx(
        engine, world_clock,
        lambda uow: ledger.get_transfer(uow, red_packet_transfer_id(packet_id, "fund")),
    )  # fmt: skip
    assert (fund.debit_account_id, fund.amount) == (funder, 1_000)


def test_a_funder_cannot_pay_more_than_it_holds(engine: Engine, world_clock: FixedClock) -> None:
    """A packet larger than the funder's balance: 402, and no packet or money moved."""
    funder = funder_account(engine, world_clock, 999)
    code = refusal(lambda: new_packet(engine, world_clock, funder))
    assert code == "funder_balance_insufficient"
    assert balance(engine, world_clock, funder) == 999


def test_a_funder_account_must_exist_and_be_unable_to_overdraw(
    engine: Engine, world_clock: FixedClock
) -> None:
    """An unknown account is 404; an account without an overdraft limit is refused (400)."""
    assert refusal(lambda: new_packet(engine, world_clock, "acc_nope")) == "funder_not_found"
    unlimited = in_tx(
        engine, world_clock,
        lambda uow: ledger.open_chart_account(uow, Purpose.FUNDING, "government:weifang").id,
    )  # fmt: skip
    assert refusal(lambda: new_packet(engine, world_clock, unlimited)) == "campaign_invalid"


def test_each_citizen_claims_one_share_once_and_is_paid(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Three citizens take the three shares, which add up to the total and land in their
    wallets; a citizen claiming again gets the same share back; a fourth finds it empty."""
    funder = funder_account(engine, world_clock, 1_000)
    packet_id = new_packet(engine, world_clock, funder)
    people = [register(engine, world_clock, n) for n in range(4)]
    shares = [claim(engine, world_clock, packet_id, person) for person in people[:3]]
    assert sum(shares) == 1_000
    assert all(1 <= s <= 600 for s in shares)
    assert claim(engine, world_clock, packet_id, people[0]) == shares[0]
    assert refusal(lambda: claim(engine, world_clock, packet_id, people[3])) == "red_packet_empty"
    for person, share in zip(people, shares, strict=False):
        assert balance(engine, world_clock, wallet_of(engine, world_clock, person)) == share
    packet = in_tx(engine, world_clock, lambda uow: get_red_packet(uow, packet_id))
    assert (packet.claimed_count, packet.claimed_fen) == (3, 1_000)
    listed = in_tx(engine, world_clock, lambda uow: list_shares(uow, packet_id))
    assert [s.citizen_id for s in listed] == people[:3]


def test_claims_close_with_the_window_and_the_job_returns_the_rest(
    engine: Engine, world_clock: FixedClock
) -> None:
    """After the claim window nobody may claim; once the return time has passed the job sends
    what is left back to the funder, once, and the packet is `returned`."""
    funder = funder_account(engine, world_clock, 1_000)
    packet_id = new_packet(engine, world_clock, funder, claim_window_hours=2, return_after_hours=24)
    first, late = register(engine, world_clock, 1), register(engine, world_clock, 2)
    share = claim(engine, world_clock, packet_id, first)
    world_clock.advance(hours=2)
    assert refusal(lambda: claim(engine, world_clock, packet_id, late)) == "red_packet_expired"
    assert in_tx(engine, world_clock, return_unclaimed_red_packets) == 0  # not due yet
    world_clock.advance(hours=22)
    assert in_tx(engine, world_clock, return_unclaimed_red_packets) == 1
    assert in_tx(engine, world_clock, return_unclaimed_red_packets) == 0  # done once
    packet = in_tx(engine, world_clock, lambda uow: get_red_packet(uow, packet_id))
    assert (packet.status, packet.returned_fen) == (RedPacketStatus.RETURNED, 1_000 - share)
    assert balance(engine, world_clock, funder) == 1_000 - share
    assert balance(engine, world_clock, packet.account_id) == 0
    assert claim(engine, world_clock, packet_id, first) == share  # their share stays theirs


def test_a_fully_claimed_packet_returns_nothing(engine: Engine, world_clock: FixedClock) -> None:
    """A fixed packet claimed to the last share is closed by the job with nothing to return."""
    funder = funder_account(engine, world_clock, 600)
    packet_id = new_packet(
        engine, world_clock, funder, total_fen=600, count=2, mode=SplitMode.FIXED,
        max_part_fen=300,
    )  # fmt: skip
    for n in range(2):
        assert claim(engine, world_clock, packet_id, register(engine, world_clock, n)) == 300
    world_clock.advance(hours=24)
    assert in_tx(engine, world_clock, return_unclaimed_red_packets) == 1
    packet = in_tx(engine, world_clock, lambda uow: get_red_packet(uow, packet_id))
    assert (packet.status, packet.returned_fen) == (RedPacketStatus.RETURNED, 0)
    assert balance(engine, world_clock, funder) == 0


def test_bad_windows_and_unknown_packets_are_refused(
    engine: Engine, world_clock: FixedClock
) -> None:
    """A return before the claim window ends is refused; an unknown packet is 404."""
    funder = funder_account(engine, world_clock, 1_000)
    code = refusal(
        lambda: new_packet(
            engine, world_clock, funder, claim_window_hours=48, return_after_hours=24
        )
    )
    assert code == "campaign_invalid"
    person = register(engine, world_clock, 1)
    missing = "rpk_" + "0" * 26
    assert refusal(lambda: claim(engine, world_clock, missing, person)) == "red_packet_not_found"


def test_the_worker_runs_the_return_job(engine: Engine, world_clock: FixedClock) -> None:
    """The return is one of the worker's periodic jobs: a pass after the due time returns it."""
    funder = funder_account(engine, world_clock, 1_000)
    packet_id = new_packet(engine, world_clock, funder)
    world_clock.advance(hours=24)
    done = run_due_jobs(WorkerContext(engine, world_clock), {})
    assert done["marketing.return_red_packets"] == 1
    packet = in_tx(engine, world_clock, lambda uow: get_red_packet(uow, packet_id))
    assert (packet.status, packet.returned_fen) == (RedPacketStatus.RETURNED, 1_000)
