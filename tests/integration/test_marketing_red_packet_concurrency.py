"""Red packet claims under burst traffic on PostgreSQL: 30 threads, 120 people (40 of them
claiming twice at once) for a packet of 100 shares — every share goes to exactly one person,
nobody gets two, the wallets add up to the total and the packet's account ends empty."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from random import Random

import pytest
from sqlalchemy import Engine, select

from cloudpay import ledger
from cloudpay.db.engine import make_engine
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.marketing import RedPacketDraft, claim_red_packet, create_red_packet, get_red_packet
from cloudpay.marketing.model import SplitMode
from cloudpay.marketing.red_packets import wallet_account_id
from cloudpay.marketing.tables import marketing_red_packet_parts
from tests.integration.test_marketing_claims import START
from tests.integration.test_marketing_concurrency import _burst, _register_people
from tests.integration.test_marketing_red_packets import funder_account

pytestmark = pytest.mark.postgres_only

THREADS = 50  # what `_burst` releases together
PEOPLE = 120
SHARES = 100
DOUBLE_CLAIMERS = 40
TOTAL_FEN = 50_000
MAX_ATTEMPTS = 500


@pytest.fixture
def wide_engine(database_url: str, pg_isolation: str) -> Iterator[Engine]:
    the_engine = make_engine(database_url, isolation_level=pg_isolation, pool_size=THREADS + 5)
    yield the_engine
    the_engine.dispose()


def _claim_job(engine: Engine, clock: FixedClock, packet_id: str, person: str) -> Callable[[], str]:
    def work(uow: UnitOfWork) -> str:
        share = claim_red_packet(uow, packet_id, citizen_id=person)
        return f"share:{share.part_no}"

    return lambda: run_in_transaction(engine, work, clock=clock, max_attempts=MAX_ATTEMPTS)


def test_a_burst_gives_every_share_once_and_nobody_two(wide_engine: Engine) -> None:
    """100 shares, 120 people and 40 simultaneous second tries: 100 people paid one share each,
    20 told the packet is empty, and a second try answers the first try's share."""
    clock = FixedClock(START)
    people = _register_people(wide_engine, clock, PEOPLE)
    funder = funder_account(wide_engine, clock, TOTAL_FEN)
    draft = RedPacketDraft(funder, TOTAL_FEN, SHARES, SplitMode.RANDOM, max_part_fen=2_000)
    packet = run_in_transaction(
        wide_engine, lambda uow: create_red_packet(uow, draft, rng=Random(1)), clock=clock
    )
    claimants = people + random.Random(8).sample(people, DOUBLE_CLAIMERS)
    random.Random(3).shuffle(claimants)
    outcomes = _burst([_claim_job(wide_engine, clock, packet.id, p) for p in claimants])
    shares = Counter({k: v for k, v in outcomes.items() if k.startswith("share:")})
    assert len(shares) == SHARES, outcomes
    assert set(outcomes) - set(shares) == {"red_packet_empty"}, outcomes
    with wide_engine.connect() as connection:
        rows = connection.execute(
            select(marketing_red_packet_parts.c.citizen_id, marketing_red_packet_parts.c.amount_fen)
        ).all()
    holders = [row.citizen_id for row in rows if row.citizen_id is not None]
    assert len(holders) == len(set(holders)) == SHARES

    def paid(uow: UnitOfWork) -> tuple[int, int]:
        wallets = sum(
            ledger.get_account(uow, wallet_account_id(uow, p, "CNY")).balance.net_credit
            for p in holders
        )
        left = ledger.get_account(uow, packet.account_id).balance.net_credit
        return wallets, left

    assert run_in_transaction(wide_engine, paid, clock=clock) == (TOTAL_FEN, 0)
    final = run_in_transaction(wide_engine, lambda uow: get_red_packet(uow, packet.id))
    assert (final.claimed_count, final.claimed_fen) == (SHARES, TOTAL_FEN)
