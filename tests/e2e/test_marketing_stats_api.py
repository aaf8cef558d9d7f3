"""Campaign statistics over HTTP: the report as JSON and the CSV export, 404 for a campaign
that does not exist."""

from __future__ import annotations

import csv
import io

import httpx

from cloudpay.kernel.clock import FixedClock
from tests.e2e.api_helpers import assert_error, get
from tests.e2e.test_citizen_api import register
from tests.e2e.test_marketing_api import CAMPAIGNS, claim, create, fund


def test_the_report_and_its_csv(live_api: httpx.Client, clock: FixedClock) -> None:
    """A funded campaign with one claim: the JSON report and the CSV agree on the totals; the
    CSV is a download with its header row first."""
    campaign = create(live_api, clock)["id"]
    fund(live_api, campaign, 2_000)
    assert claim(live_api, campaign, register(live_api, 1)["id"]).status_code == 201
    report = get(live_api, f"{CAMPAIGNS}/{campaign}/report").json()
    assert (report["object"], report["claims_by_status"]) == ("campaign_report", {"claimed": 1})
    assert (report["by_place"], report["by_day"]) == ([], [])
    exported = get(live_api, f"{CAMPAIGNS}/{campaign}/stats.csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert f"{campaign}-stats.csv" in exported.headers["content-disposition"]
    [total] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (total["dimension"], total["issued"], total["claimed"]) == ("total", "1", "1")
    assert (total["subsidy_fen"], total["leverage"]) == ("0", "")


def test_an_unknown_campaign_has_no_report(live_api: httpx.Client) -> None:
    """Both the report and the CSV of a campaign that does not exist are 404."""
    missing = f"{CAMPAIGNS}/cmp_{'0' * 26}"
    assert_error(get(live_api, f"{missing}/report"), 404, "campaign_not_found")
    assert_error(get(live_api, f"{missing}/stats.csv"), 404, "campaign_not_found")
