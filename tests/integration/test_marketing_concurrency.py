"""The claim hot path under burst traffic on PostgreSQL: 50 threads claim for 600 people (and
some claim twice at once) from a campaign of 500 vouchers — exactly 500 are issued, nobody gets
more than the cap, the committed budget never exceeds the funded one, and a retried request
(same Idempotency-Key) never issues a second voucher.

Passes at READ COMMITTED (each claim's one statement takes a stock shard under its row lock,
skipping shards other claims hold, and re-checks `issued < capacity` there) and with
`--pg-isolation SERIALIZABLE` (conflicts become retried 40001s).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cloudpay import ledger
from cloudpay.citizen import Registration, register_citizen
from cloudpay.db.engine import make_engine
from cloudpay.db.idempotency import execute_idempotently
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.ledger import Purpose
from cloudpay.marketing import (
    MerchantFacts,
    claim_instrument,
    end_campaign,
    fund_campaign,
    get_campaign,
    redeem,
)
from cloudpay.marketing.model import Caps
from cloudpay.marketing.tables import marketing_claims
from tests.integration.test_marketing_claims import START, VAULT, open_campaign, resident_id

pytestmark = pytest.mark.postgres_only

THREADS = 50
PEOPLE = 600
STOCK = 500
DOUBLE_CLAIMERS = 100  # people who fire a second claim at the same time as their first
VALUE_FEN = 1_000
MAX_ATTEMPTS = 500  # SERIALIZABLE turns every collision on the campaign row into a retry


@pytest.fixture
def wide_engine(database_url: str, pg_isolation: str) -> Iterator[Engine]:
    """An engine with a connection for every thread."""
    the_engine = make_engine(database_url, isolation_level=pg_isolation, pool_size=THREADS + 5)
    yield the_engine
    the_engine.dispose()


def _register_people(engine: Engine, clock: FixedClock, count: int) -> list[str]:
    def one(n: int) -> str:
        registration = Registration("赵六", resident_id(n), f"137{n:08d}", True, "370702")
        return run_in_transaction(
            engine, lambda uow: register_citizen(uow, vault=VAULT, registration=registration).id,
            clock=clock,
        )  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def _burst(jobs: list[Callable[[], str]]) -> Counter[str]:
    """Run every job on `THREADS` threads released together; count outcomes by kind."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)
    queue = iter(jobs)
    queue_lock = threading.Lock()

    def worker() -> None:
        start.wait()
        while True:
            with queue_lock:
                job = next(queue, None)
            if job is None:
                return
            try:
                outcome = job()
            except CloudPayError as refused:
                outcome = refused.code
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _claim_job(
    engine: Engine, clock: FixedClock, campaign_id: str, citizen_id: str
) -> Callable[[], str]:
    def work(uow: UnitOfWork) -> str:
        claim_instrument(uow, campaign_id, citizen_id=citizen_id)
        return "issued"

    return lambda: run_in_transaction(engine, work, clock=clock, max_attempts=MAX_ATTEMPTS)


def _claims_per_person(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(select(marketing_claims.c.citizen_id)).scalars().all()
    return Counter(rows)


def test_a_burst_issues_exactly_the_stock_and_nobody_twice(wide_engine: Engine) -> None:
    """600 people + 100 simultaneous second tries, 50 threads, 500 vouchers: 500 issued."""
    clock = FixedClock(START + timedelta(hours=1))
    people = _register_people(wide_engine, clock, PEOPLE)
    campaign_id = open_campaign(wide_engine, clock, stock=STOCK, fund_fen=STOCK * VALUE_FEN)
    claimants = people + random.Random(8).sample(people, DOUBLE_CLAIMERS)
    random.Random(3).shuffle(claimants)
    outcomes = _burst([_claim_job(wide_engine, clock, campaign_id, p) for p in claimants])
    assert outcomes["issued"] == STOCK, outcomes
    assert set(outcomes) <= {"issued", "out_of_stock", "cap_reached"}, outcomes
    per_person = _claims_per_person(wide_engine)
    assert sum(per_person.values()) == STOCK
    assert max(per_person.values()) == 1
    campaign = run_in_transaction(wide_engine, lambda uow: get_campaign(uow, campaign_id))
    assert (campaign.issued, campaign.committed_fen) == (STOCK, STOCK * VALUE_FEN)
    assert campaign.committed_fen <= campaign.funded_fen


def test_a_burst_stops_at_the_budget_before_the_stock(wide_engine: Engine) -> None:
    """Funded for 300 of 500 vouchers: exactly 300 issued, the rest `budget_exhausted`, and the
    budget account is untouched by claims (it only pays at redemption) and never negative."""
    clock = FixedClock(START + timedelta(hours=1))
    people = _register_people(wide_engine, clock, 400)
    campaign_id = open_campaign(wide_engine, clock, stock=STOCK, fund_fen=300 * VALUE_FEN)
    outcomes = _burst([_claim_job(wide_engine, clock, campaign_id, p) for p in people])
    assert outcomes == Counter({"issued": 300, "budget_exhausted": 100})

    def budget(uow: UnitOfWork) -> int:
        account = ledger.open_chart_account(
            uow, Purpose.MARKETING_BUDGET, ledger.campaign_owner(campaign_id)
        )
        return ledger.get_account(uow, account.id).balance.net_credit

    assert run_in_transaction(wide_engine, budget) == 300 * VALUE_FEN


def test_retried_requests_with_one_key_issue_one_voucher(wide_engine: Engine) -> None:
    """Each of 20 people sends the same claim 5 times at once under one Idempotency-Key (and a
    cap of 3): each gets one voucher and every retry the same answer."""
    clock = FixedClock(START + timedelta(hours=1))
    people = _register_people(wide_engine, clock, 20)
    campaign_id = open_campaign(
        wide_engine, clock, stock=STOCK, caps=Caps(per_person_per_day=3, per_person_total=3)
    )
    answers: dict[str, set[str]] = {p: set() for p in people}
    answers_lock = threading.Lock()

    def job(person: str) -> Callable[[], str]:
        def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
            claim = claim_instrument(uow, campaign_id, citizen_id=person)
            return 201, {"id": claim.id}

        def run() -> str:
            stored = execute_idempotently(
                wide_engine, scope="test", key=f"claim-{person}", request_hash=person,
                work=work, clock=clock,
            )  # fmt: skip
            with answers_lock:
                answers[person].add(stored.body["id"])
            return "replayed" if stored.replayed else "issued"

        return run

    outcomes = _burst([job(p) for p in people for _ in range(5)])
    assert outcomes["issued"] == len(people), outcomes
    assert all(len(ids) == 1 for ids in answers.values())
    assert max(_claims_per_person(wide_engine).values()) == 1
    with wide_engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(marketing_claims))
        assert count.scalar_one() == len(people)


def test_two_orders_racing_for_one_voucher_use_it_once(wide_engine: Engine) -> None:
    """20 orders of one payer race for their single voucher: one order gets the discount, the
    others none, and the budget pays the subsidy exactly once."""
    clock = FixedClock(START + timedelta(hours=1))
    [person] = _register_people(wide_engine, clock, 1)
    campaign_id = open_campaign(wide_engine, clock, stock=5)
    run_in_transaction(
        wide_engine, lambda uow: claim_instrument(uow, campaign_id, citizen_id=person), clock=clock
    )
    shop = MerchantFacts("mch_race", "5812", "370702")

    def order(n: int) -> Callable[[], str]:
        def work(uow: UnitOfWork) -> str:
            redemption = redeem(uow, order_id=f"ord_RACE{n:022d}", citizen_id=person,
                                merchant=shop, amount_fen=5_000)  # fmt: skip
            return "discounted" if redemption.lines else "full_price"

        return lambda: run_in_transaction(wide_engine, work, clock=clock, max_attempts=MAX_ATTEMPTS)

    outcomes = _burst([order(n) for n in range(20)])
    assert (outcomes["discounted"], outcomes["full_price"]) == (1, 19), outcomes

    def budget(uow: UnitOfWork) -> int:
        account = ledger.open_chart_account(
            uow, Purpose.MARKETING_BUDGET, ledger.campaign_owner(campaign_id)
        )
        balance = ledger.get_account(uow, account.id).balance
        return balance.net_credit - balance.debits_pending  # the open order holds its subsidy

    assert run_in_transaction(wide_engine, budget) == 5 * VALUE_FEN - VALUE_FEN


def test_a_top_up_and_an_end_mid_burst_keep_the_counts_exact(wide_engine: Engine) -> None:
    """Funded for 100 of 500 (cap 2 a person): a top-up to 250 lands mid-burst, then the
    campaign ends mid-burst — the shards' sum equals the claim rows, nobody holds 3, committed
    never passes funded, and no claim is left usable in the ended campaign."""
    clock = FixedClock(START + timedelta(hours=1))
    people = _register_people(wide_engine, clock, 200)
    campaign_id = open_campaign(
        wide_engine, clock, stock=STOCK, fund_fen=100 * VALUE_FEN,
        caps=Caps(per_person_per_day=2, per_person_total=2),
    )  # fmt: skip
    claimants = people * 3  # the third try of each person must hit the cap
    random.Random(5).shuffle(claimants)
    jobs = [_claim_job(wide_engine, clock, campaign_id, p) for p in claimants]

    def operator(action: Callable[[UnitOfWork], object]) -> Callable[[], str]:
        return lambda: (run_in_transaction(wide_engine, action, clock=clock), "operator")[1]

    jobs.insert(150, operator(lambda uow: fund_campaign(
        uow, campaign_id, amount_fen=150 * VALUE_FEN, currency="CNY")))  # fmt: skip
    jobs.insert(400, operator(lambda uow: end_campaign(uow, campaign_id)))
    outcomes = _burst(jobs)
    assert outcomes["operator"] == 2, outcomes
    assert set(outcomes) <= {
        "issued", "operator", "budget_exhausted", "cap_reached", "campaign_expired",
        "campaign_not_active",
    }, outcomes  # fmt: skip
    per_person = _claims_per_person(wide_engine)
    assert sum(per_person.values()) == outcomes["issued"] <= 250
    assert max(per_person.values()) <= 2
    campaign = run_in_transaction(wide_engine, lambda uow: get_campaign(uow, campaign_id))
    assert campaign.issued == outcomes["issued"]
    assert campaign.committed_fen == campaign.issued * VALUE_FEN <= campaign.funded_fen
    with wide_engine.connect() as connection:
        usable = connection.execute(
            select(func.count()).select_from(marketing_claims).where(
                marketing_claims.c.campaign_id == campaign_id,
                marketing_claims.c.status.in_(["claimed", "restored"]),
            )
        )  # fmt: skip
        assert usable.scalar_one() == 0
