"""Issue #9's journey "… resolve a reconciliation break" in headless chromium: the admin opens
the reconciliation page, follows an open break, resolves it with an action and a note, and sees
it resolved. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.console import Role
from cloudpay.kernel.clock import FixedClock
from tests.browser.console_world import PASSWORD, open_world
from tests.e2e.test_console_money import audit_entries, break_status, raise_breaks


def test_admin_resolves_a_reconciliation_break(
    browser: Any, settings: Settings, engine: Engine, clock: FixedClock, screenshots: Path
) -> None:
    """The open break is listed with its age; the resolve form moves it to resolved, the page
    shows the action and the trail, and the console's audit log has the entry."""
    with open_world(settings, engine, clock) as world:
        breaks = raise_breaks(engine, clock)
        context = browser.new_context(base_url=str(world.http.base_url),
                                      viewport={"width": 1440, "height": 900})  # fmt: skip
        page = context.new_page()
        page.goto("/console/login?lang=en")
        page.fill("input[name=email]", world.city.emails[Role.PLATFORM_ADMIN])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.click("nav >> text=Reconciliation")
        page.wait_for_load_state()
        assert page.locator(f"#break-{breaks.missing}").count() == 1
        page.screenshot(path=str(screenshots / "console-reconciliation.png"), full_page=True)
        page.click(f"#break-{breaks.missing} a")
        page.wait_for_load_state()
        page.select_option("#resolve-action", "write_off")
        page.fill("#resolve-note", "customer tip kept by the channel")
        page.click("#resolve")
        page.wait_for_load_state()
        assert page.locator("#break-status").inner_text() == "resolved"
        assert "Write off — customer tip kept by the channel" in page.locator(
            "#break-resolution").inner_text()  # fmt: skip
        assert "open → resolved" in page.locator("#break-history").inner_text()
        page.screenshot(path=str(screenshots / "console-break-resolved.png"), full_page=True)
        context.close()
    assert break_status(engine, breaks.missing) == "resolved"
    [entry] = audit_entries(engine)
    assert (entry["action"], entry["after"]["resolution"]) == (
        "reconciliation_break.resolve", "write_off")  # fmt: skip
