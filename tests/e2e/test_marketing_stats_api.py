"""Campaign statistics over HTTP: the report as JSON and the CSV export, 404 for a campaign
that does not exist."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import create_app
from cloudpay.marketing import MerchantFacts, confirm_redemption, redeem
from tests.conftest import serving
from tests.e2e.api_helpers import assert_error, get
from tests.e2e.test_citizen_api import register
from tests.e2e.test_marketing_api import CAMPAIGNS, claim, create, fund
from tests.integration.test_marketing_claims import in_tx
from tests.integration.test_marketing_redemption import onboard_merchant
from tests.integration.test_marketing_stats import FakeSpend


def test_the_report_and_its_csv(live_api: httpx.Client, clock: FixedClock) -> None:
    """A funded campaign with one claim: the JSON report and the CSV agree on the totals; the
    CSV is a download with its header row first."""
    campaign = create(live_api, clock)["id"]
    fund(live_api, campaign, 2_000)
    assert claim(live_api, campaign, register(live_api, 1)["id"]).status_code == 201
    report = get(live_api, f"{CAMPAIGNS}/{campaign}/report").json()
    assert (report["object"], report["claims_by_status"]) == ("campaign_report", {"claimed": 1})
    assert (report["by_place"], report["by_day"]) == ([], [])
    # The app reads payments' paid spend: nobody has paid yet, so there is nothing to lever.
    incremental = report["incremental"]
    assert (incremental["campaign_spend_fen"], incremental["incremental_leverage"]) == (0, None)
    exported = get(live_api, f"{CAMPAIGNS}/{campaign}/stats.csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert f"{campaign}-stats.csv" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    [total] = [row for row in rows if row["dimension"] == "total"]
    assert {row["dimension"] for row in rows} == {"total", "incremental_total"}
    assert (total["dimension"], total["issued"], total["claimed"]) == ("total", "1", "1")
    assert (total["subsidy_fen"], total["leverage"]) == ("0", "")


def test_an_unknown_campaign_has_no_report(live_api: httpx.Client) -> None:
    """Both the report and the CSV of a campaign that does not exist are 404."""
    missing = f"{CAMPAIGNS}/cmp_{'0' * 26}"
    assert_error(get(live_api, f"{missing}/report"), 404, "campaign_not_found")
    assert_error(get(live_api, f"{missing}/stats.csv"), 404, "campaign_not_found")


def test_the_incremental_view_over_http(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    """With a spend source on the app: a shop selling 56,000 fen in the 28 days before (2,000
    a day) sells 9,000 on the campaign's first day with 1,000 of subsidy: +7,000, 7.00, in the
    JSON and the CSV; `baseline_days=0` is a 400."""
    app = create_app(settings, engine=engine, clock=clock)
    start = clock.now()
    shop = onboard_merchant(engine, clock)
    spend = FakeSpend({
        (shop, start - timedelta(days=28), start): 56_000,
        (shop, start, start + timedelta(days=1)): 9_000,
    })  # fmt: skip
    app.state.merchant_spend = spend
    with serving(app) as client:
        campaign = create(client, clock)["id"]
        fund(client, campaign, 2_000)
        person = register(client, 1)["id"]
        assert claim(client, campaign, person).status_code == 201
        facts = MerchantFacts(shop, "5812", "370702")
        in_tx(
            engine,
            clock,
            lambda uow: redeem(
                uow, order_id="ord_http_inc", citizen_id=person, merchant=facts, amount_fen=5_000
            ),
        )
        in_tx(engine, clock, lambda uow: confirm_redemption(uow, order_id="ord_http_inc"))
        clock.advance(days=1)
        stats = get(client, f"{CAMPAIGNS}/{campaign}/stats").json()["incremental"]
        assert (stats["baseline_fen"], stats["campaign_spend_fen"]) == (2_000, 9_000)
        assert (stats["incremental_fen"], stats["incremental_leverage"]) == (7_000, "7.00")
        assert [m["merchant_id"] for m in stats["by_merchant"]] == [shop]
        exported = get(client, f"{CAMPAIGNS}/{campaign}/stats.csv").text
        [row] = [r for r in csv.DictReader(io.StringIO(exported))
                 if r["dimension"] == "incremental_total"]  # fmt: skip
        assert row["incremental_leverage"] == "7.00"
        refused = get(client, f"{CAMPAIGNS}/{campaign}/report", baseline_days=0)
        assert refused.status_code == 400, refused.text
