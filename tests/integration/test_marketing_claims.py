"""Campaigns, funding, claims and the end of a campaign, on SQLite and PostgreSQL: every
refusal has its reason code and writes nothing; money moves only as ledger transfers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select
from stdnum.cn import ric

from cloudpay import ledger
from cloudpay.citizen import Registration, register_citizen
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.kernel.vault import PersonalDataVault
from cloudpay.ledger import Purpose
from cloudpay.marketing import (
    CampaignDraft,
    CampaignKind,
    CampaignStatus,
    ClaimStatus,
    DiscountRule,
    RuleKind,
    claim_instrument,
    create_campaign,
    end_campaign,
    end_due_campaigns,
    fund_campaign,
    get_campaign,
    wallet,
)
from cloudpay.marketing.model import Audience, Caps, FunderKind, MerchantScope, Windows
from cloudpay.marketing.tables import marketing_claims

T = TypeVar("T")
START = datetime(2026, 3, 1, 2, tzinfo=UTC)  # 10:00 in Shanghai
VOUCHER_10_OFF_40 = DiscountRule(RuleKind.THRESHOLD, discount_fen=1_000, threshold_fen=4_000)
VAULT = PersonalDataVault.from_hex("44" * 32, "55" * 32)


# --- a small world, shared by the marketing tests ---------------------------------------
def resident_id(n: int) -> str:
    """A valid 18-character resident ID, different for every `n` below 9,000,000."""
    birth = datetime(1990, 1, 1) + timedelta(days=n // 1_000)
    body = f"370702{birth:%Y%m%d}{n % 1_000:03d}"
    return body + ric.calc_check_digit(body + "0")  # it reads the digits before the last


def in_tx(engine: Engine, clock: FixedClock, work: Callable[[UnitOfWork], T]) -> T:
    return run_in_transaction(engine, work, clock=clock)


def register(
    engine: Engine, clock: FixedClock, n: int, *, resident: bool = True, district: str = "370702"
) -> str:
    registration = Registration("张三丰", resident_id(n), f"138{n:08d}", resident, district)
    return in_tx(
        engine, clock, lambda uow: register_citizen(uow, vault=VAULT, registration=registration)
    ).id


def draft(**changes: Any) -> CampaignDraft:
    fields: dict[str, Any] = {
        "name": "潍坊消费券", "funder_kind": FunderKind.GOVERNMENT, "funder_id": "weifang",
        "kind": CampaignKind.VOUCHER, "currency": "CNY", "rule": VOUCHER_10_OFF_40,
        "stock": 10,
        "windows": Windows(START, START + timedelta(days=1), START, START + timedelta(days=7)),
    }  # fmt: skip
    fields.update(changes)
    return CampaignDraft(**fields)


def open_campaign(
    engine: Engine, clock: FixedClock, *, fund_fen: int | None = None, **changes: Any
) -> str:
    """A created campaign, funded with `fund_fen` (stock × value by default)."""
    the_draft = draft(**changes)
    campaign_id = in_tx(engine, clock, lambda uow: create_campaign(uow, the_draft)).id
    amount = fund_fen if fund_fen is not None else the_draft.stock * the_draft.rule.max_value_fen
    in_tx(
        engine, clock,
        lambda uow: fund_campaign(uow, campaign_id, amount_fen=amount, currency="CNY"),
    )  # fmt: skip
    return campaign_id


def claim(engine: Engine, clock: FixedClock, campaign_id: str, citizen_id: str) -> str:
    return in_tx(
        engine, clock, lambda uow: claim_instrument(uow, campaign_id, citizen_id=citizen_id)
    ).id


def refusal(work: Callable[[], object]) -> str:
    with pytest.raises(CloudPayError) as refused:
        work()
    return refused.value.code


def balance_of(engine: Engine, clock: FixedClock, purpose: Purpose, owner: str) -> int:
    def read(uow: UnitOfWork) -> int:
        account = ledger.open_chart_account(uow, purpose, owner)
        return ledger.get_account(uow, account.id).balance.net_credit

    return in_tx(engine, clock, read)


def claim_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(marketing_claims)).scalar_one()
        )


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START + timedelta(hours=1))


# --- tests ------------------------------------------------------------------------------
def test_funding_moves_money_from_the_funder_into_the_budget(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Funding is one ledger transfer funder → `campaign:<id>`, and it opens the campaign."""
    campaign_id = open_campaign(engine, world_clock, fund_fen=10_000)
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert (campaign.status, campaign.funded_fen) == (CampaignStatus.ACTIVE, 10_000)
    owner = ledger.campaign_owner(campaign_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 10_000
    assert balance_of(engine, world_clock, Purpose.FUNDING, "government:weifang") == -10_000


def test_a_merchant_cannot_fund_beyond_its_available_balance(
    engine: Engine, world_clock: FixedClock
) -> None:
    """A merchant funder with no available money: 402, the campaign stays a draft."""
    from tests.integration.test_marketing_redemption import onboard_merchant

    merchant_id = onboard_merchant(engine, world_clock)
    the_draft = draft(funder_kind=FunderKind.MERCHANT, funder_id=merchant_id,
                      kind=CampaignKind.COUPON)  # fmt: skip
    campaign_id = in_tx(engine, world_clock, lambda uow: create_campaign(uow, the_draft)).id
    code = refusal(lambda: in_tx(engine, world_clock, lambda uow: fund_campaign(
        uow, campaign_id, amount_fen=5_000, currency="CNY")))  # fmt: skip
    assert code == "funder_balance_insufficient"
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert (campaign.status, campaign.funded_fen) == (CampaignStatus.DRAFT, 0)
    owner = ledger.campaign_owner(campaign_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 0


def test_a_claim_issues_one_instrument_into_the_wallet(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Claimed: stock and committed budget move by one instrument; the wallet shows it."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim_id = claim(engine, world_clock, campaign_id, citizen_id)
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert (campaign.issued, campaign.committed_fen) == (1, 1_000)
    entries = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert [(e.claim.id, e.claim.status) for e in entries] == [(claim_id, ClaimStatus.CLAIMED)]


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"stock": 1}, "out_of_stock"),
        ({"fund_fen": 1_500}, "budget_exhausted"),
    ],
)
def test_stock_and_budget_refusals_write_nothing(
    engine: Engine, world_clock: FixedClock, setup: dict[str, Any], code: str
) -> None:
    """When the one instrument left (by stock or by budget) is gone, the next claim is refused
    and leaves no claim row and no change on the campaign."""
    campaign_id = open_campaign(engine, world_clock, **setup)
    claim(engine, world_clock, campaign_id, register(engine, world_clock, 1))
    second = register(engine, world_clock, 2)
    assert refusal(lambda: claim(engine, world_clock, campaign_id, second)) == code
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert (campaign.issued, claim_rows(engine)) == (1, 1)


def test_caps_per_campaign_and_per_day(engine: Engine, world_clock: FixedClock) -> None:
    """Two per person, one a day: the second claim today is refused, tomorrow's is not, and
    a third is refused for good."""
    campaign_id = open_campaign(
        engine, world_clock, caps=Caps(per_person_per_day=1, per_person_total=2),
        windows=Windows(START, START + timedelta(days=5), START, START + timedelta(days=7)),
    )  # fmt: skip
    citizen_id = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, citizen_id)
    assert refusal(lambda: claim(engine, world_clock, campaign_id, citizen_id)) == "cap_reached"
    world_clock.advance(days=1)
    claim(engine, world_clock, campaign_id, citizen_id)
    world_clock.advance(days=1)
    assert refusal(lambda: claim(engine, world_clock, campaign_id, citizen_id)) == "cap_reached"
    assert claim_rows(engine) == 2


def test_audience_residents_and_lists(engine: Engine, world_clock: FixedClock) -> None:
    """A residents-only campaign refuses a visitor; a list campaign only those listed."""
    visitor = register(engine, world_clock, 1, resident=False)
    listed = register(engine, world_clock, 2)
    residents_only = open_campaign(engine, world_clock, audience=Audience.RESIDENTS)
    assert refusal(lambda: claim(engine, world_clock, residents_only, visitor)) == "not_eligible"
    listed_only = open_campaign(engine, world_clock, audience=Audience.LIST, people=[listed])
    assert refusal(lambda: claim(engine, world_clock, listed_only, visitor)) == "not_eligible"
    claim(engine, world_clock, listed_only, listed)
    assert claim_rows(engine) == 1


def test_claim_windows_refuse_early_and_late_claims(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Before the window: claim_window_not_open; after it: campaign_expired."""
    later = Windows(START + timedelta(days=1), START + timedelta(days=2), START,
                    START + timedelta(days=7))  # fmt: skip
    campaign_id = open_campaign(engine, world_clock, windows=later)
    citizen_id = register(engine, world_clock, 1)
    code = refusal(lambda: claim(engine, world_clock, campaign_id, citizen_id))
    assert code == "claim_window_not_open"
    world_clock.advance(days=3)
    assert refusal(lambda: claim(engine, world_clock, campaign_id, citizen_id)) == (
        "campaign_expired"
    )


def test_a_draft_campaign_refuses_claims(engine: Engine, world_clock: FixedClock) -> None:
    """Nobody claims an instrument the budget has not been funded for."""
    the_draft = draft()
    campaign_id = in_tx(engine, world_clock, lambda uow: create_campaign(uow, the_draft)).id
    citizen_id = register(engine, world_clock, 1)
    code = refusal(lambda: claim(engine, world_clock, campaign_id, citizen_id))
    assert code == "campaign_not_active"


def test_ending_returns_the_unused_budget_and_expires_claims(
    engine: Engine, world_clock: FixedClock
) -> None:
    """The job ends a campaign past its validity: claims expire, the whole unused budget goes
    back to the funder, and the books still balance."""
    campaign_id = open_campaign(engine, world_clock, fund_fen=12_345,
                                scope=MerchantScope(mccs=frozenset({"5812"})))  # fmt: skip
    claim(engine, world_clock, campaign_id, register(engine, world_clock, 1))
    assert in_tx(engine, world_clock, end_due_campaigns) == []
    world_clock.advance(days=8)
    assert in_tx(engine, world_clock, end_due_campaigns) == [campaign_id]
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert (campaign.status, campaign.returned_fen) == (CampaignStatus.ENDED, 12_345)
    owner = ledger.campaign_owner(campaign_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 0
    assert balance_of(engine, world_clock, Purpose.FUNDING, "government:weifang") == 0
    with engine.connect() as connection:
        statuses = connection.execute(select(marketing_claims.c.status)).scalars().all()
    assert statuses == [ClaimStatus.EXPIRED.value]
    again = in_tx(engine, world_clock, lambda uow: end_campaign(uow, campaign_id))
    assert again.returned_fen == 12_345
    assert in_tx(engine, world_clock, ledger.check_books).ok
