"""The console in a real browser (headless chromium): each role logs in through the form and
sees only its pages; the main journey (approve a merchant, find an order, refund it) is done
by clicking; core actions also work with JavaScript off. Screenshots of the main pages go to
test-output/screenshots/ for review."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloudpay.console import Role, create_user
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.main import vault_for
from tests.browser.console_world import PASSWORD, City, build_city
from tests.e2e.gateway import Gateway, eventually

NAV = {  # role: the navigation links it must see / must not see
    Role.PLATFORM_ADMIN: ({"users", "audit", "ledger", "merchants/review"}, set()),
    Role.BANK: ({"ledger", "merchants"}, {"users", "audit", "merchants/review"}),
    Role.AGENT: ({"merchants", "orders"}, {"users", "audit", "ledger", "merchants/review"}),
    Role.MERCHANT: ({"orders"}, {"users", "audit", "ledger", "merchants/review"}),
    Role.RISK_OFFICER: ({"merchants/review", "ledger"}, {"users", "audit"}),
    Role.AUDITOR: ({"audit", "ledger"}, {"users", "merchants/review"}),
}


def _login(browser: Any, base_url: str, email: str, *, javascript: bool = True) -> Any:
    context = browser.new_context(base_url=base_url, java_script_enabled=javascript,
                                  viewport={"width": 1280, "height": 900})  # fmt: skip
    page = context.new_page()
    page.goto("/console/dashboard")  # not signed in: the login form
    assert page.url.endswith("/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/console/login" not in page.url, page.content()[:500]
    return page


def _gateway_merchant_user(gateway: Gateway) -> str:
    email = "owner@browser.test"
    vault = vault_for(gateway.settings)
    run_in_transaction(gateway.engine, lambda uow: create_user(
        uow, vault=vault, email=email, password=PASSWORD, role=Role.MERCHANT,
        merchant_id=gateway.merchant.merchant_id), clock=gateway.clock)  # fmt: skip
    return email


def _city(gateway: Gateway) -> City:
    return build_city(gateway.http, gateway.engine, gateway.settings, gateway.clock)


def test_each_role_sees_its_own_navigation_and_data(
    browser: Any, browser_gateway: Gateway, screenshots: Path
) -> None:
    """Each role's menu matches its permissions; forbidden pages and others' merchants are
    refused even when the URL is typed in."""
    city = _city(browser_gateway)
    for role, (shown, hidden) in NAV.items():
        page = _login(browser, browser_gateway.base_url, city.emails[role])
        links = {href.removeprefix("/console/") for href in page.eval_on_selector_all(
            "header nav a", "links => links.map(a => a.getAttribute('href'))")}  # fmt: skip
        assert shown <= links, (role, links)
        assert not hidden & links, (role, links)
        page.screenshot(path=str(screenshots / f"dashboard-{role.value}.png"), full_page=True)
        other = page.goto(f"/console/merchants/{city.other_merchant_id}")
        assert other is not None
        assert other.status == (404 if role in (Role.AGENT, Role.MERCHANT) else 200), role
        users = page.goto("/console/users")
        assert users is not None
        assert users.status == (200 if role is Role.PLATFORM_ADMIN else 403)
        page.context.close()


def test_main_journey_approve_find_refund(
    browser: Any, browser_gateway: Gateway, screenshots: Path
) -> None:
    """A risk officer approves from the review queue; the merchant finds its paid order with
    the search box (an HTMX swap), refunds ¥5.00 by the form; the admin sees it audited."""
    gateway = browser_gateway
    city = _city(gateway)
    risk = _login(browser, gateway.base_url, city.emails[Role.RISK_OFFICER])
    risk.goto("/console/merchants/review")
    risk.screenshot(path=str(screenshots / "review-queue.png"), full_page=True)
    risk.click(f"a[href='/console/merchants/{city.merchant_id}']")
    risk.click("#approve")
    risk.wait_for_selector("#merchant-status.status-approved")
    risk.screenshot(path=str(screenshots / "merchant-detail.png"), full_page=True)
    risk.context.close()

    order = gateway.client.create_order(out_trade_no="BROWSER-1", amount=1_800,
                                        subject="杨家埠年画", method="wechat_native")  # fmt: skip
    gateway.pay(order["id"], "success")
    gateway.wait_for_order(order["id"], "succeeded")
    shop = _login(browser, gateway.base_url, _gateway_merchant_user(gateway))
    shop.goto("/console/orders")
    shop.fill("input[name=q]", "BROWSER-1")
    shop.click("form.filters button")
    shop.wait_for_selector(f"#results a[href='/console/orders/{order['id']}']")
    assert shop.url.endswith("/console/orders")  # swapped in place, no navigation
    shop.screenshot(path=str(screenshots / "order-search.png"), full_page=True)
    shop.click(f"#results a[href='/console/orders/{order['id']}']")
    shop.fill("#refund-amount", "5.00")
    shop.fill("input[name=reason]", "破损")
    with shop.expect_navigation():  # a plain form post: reload only once it has landed
        shop.click("#refund")

    def refunded() -> bool:
        shop.reload()
        status: str = shop.inner_text("#order-status")
        return status == "partially_refunded"

    eventually(refunded, 15, "the refund to settle")
    assert shop.inner_text("#order-refunded") == "¥5.00"
    shop.screenshot(path=str(screenshots / "order-detail.png"), full_page=True)
    shop.context.close()

    admin = _login(browser, gateway.base_url, city.emails[Role.PLATFORM_ADMIN])
    for name in ("dashboard", "audit", "ledger", "ledger/check", "merchants", "users"):
        admin.goto(f"/console/{name}")
        admin.screenshot(path=str(screenshots / f"{name.replace('/', '-')}.png"), full_page=True)
    admin.goto("/console/audit")
    audit = admin.inner_text("#audit")
    assert "merchant.approve" in audit
    assert "order.refund" in audit
    admin.goto("/console/ledger/check")
    assert admin.get_attribute("#books-verdict", "class") == "ok"
    admin.context.close()


def test_core_actions_work_without_javascript(
    browser: Any, browser_gateway: Gateway, screenshots: Path
) -> None:
    """With JavaScript off, search is a plain GET form and approving is a plain POST form."""
    city = _city(browser_gateway)
    page = _login(browser, browser_gateway.base_url, city.emails[Role.PLATFORM_ADMIN],
                  javascript=False)  # fmt: skip
    page.goto(f"/console/merchants/{city.other_merchant_id}")
    page.click("#approve")
    page.wait_for_load_state()
    assert page.inner_text("#merchant-status") == "approved"
    page.goto("/console/orders")
    page.fill("input[name=q]", "no-such-order")
    page.click("form.filters button")
    page.wait_for_load_state()
    assert "q=no-such-order" in page.url
    page.goto("/console/dashboard?lang=en")
    assert "Dashboard" in page.inner_text("h1")
    page.screenshot(path=str(screenshots / "dashboard-en-nojs.png"), full_page=True)
    page.context.close()
