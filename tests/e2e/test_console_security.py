"""Console security over real HTTP on both databases: login required everywhere, CSRF on every
form, role and data scope enforced on the server, sessions that expire, login throttling, TOTP,
and an audit entry (with before/after, actor and origin) for every write."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.console import Role, create_demo_users, create_user
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import vault_for
from tests.browser.console_world import PASSWORD, ConsoleSession, World, open_world

PAGES = (
    "/console/", "/console/dashboard", "/console/merchants", "/console/merchants/review",
    "/console/orders", "/console/orders/ord_01JD0000000000000000000000", "/console/ledger",
    "/console/ledger/check", "/console/users", "/console/audit", "/console/audit/export",
)  # fmt: skip


@pytest.fixture
def world(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[World]:
    with open_world(settings, engine, clock) as opened:
        yield opened


def _with_cookie(world: World, token: str) -> httpx.Response:
    """The dashboard fetched by a client holding just this session cookie."""
    with httpx.Client(base_url=str(world.http.base_url), cookies={"cloudpay_console": token},
                      follow_redirects=False) as client:  # fmt: skip
        return client.get("/console/dashboard")


def test_no_page_or_action_is_reachable_without_a_session(world: World) -> None:
    """Every page redirects to the login form, and a form post changes nothing."""
    for path in PAGES:
        response = world.http.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/console/login"), path
    review = f"/console/merchants/{world.city.merchant_id}/review"
    refused = world.http.post(review, data={"action": "approve"}, follow_redirects=False)
    assert refused.status_code == 303
    assert _with_cookie(world, "forged-token").status_code == 303
    assert world.merchant_status(world.city.merchant_id) == "submitted"


def test_session_cookie_is_http_only_same_site_and_scoped_to_the_console(world: World) -> None:
    """The session cookie cannot be read by scripts nor sent cross-site with a POST."""
    session = ConsoleSession(str(world.http.base_url))
    response = session.login(world.city.emails[Role.AUDITOR])
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/console" in cookie


def test_every_form_needs_the_session_csrf_token(world: World) -> None:
    """Without the token, or with another session's token, a review is refused with 403."""
    admin = world.session(Role.PLATFORM_ADMIN)
    other = world.session(Role.RISK_OFFICER)
    review = f"/console/merchants/{world.city.merchant_id}/review"
    assert admin.post(review, {"action": "approve"}, csrf=False).status_code == 403
    stolen = {"action": "approve", "csrf_token": other.csrf()}
    assert admin.http.post(review, data=stolen).status_code == 403
    assert admin.post("/console/logout", csrf=False).status_code == 403
    assert world.merchant_status(world.city.merchant_id) == "submitted"
    header = admin.http.post(review, data={"action": "approve"},
                             headers={"X-CSRF-Token": admin.csrf()})  # fmt: skip
    assert header.status_code == 303
    assert world.merchant_status(world.city.merchant_id) == "approved"


def test_sessions_expire_when_idle_and_at_their_absolute_lifetime(world: World) -> None:
    """31 idle minutes end a session; a session kept busy still ends after 12 hours."""
    idle = world.session(Role.AUDITOR)
    world.clock.advance(minutes=29)
    assert idle.get("/console/dashboard").status_code == 200
    world.clock.advance(minutes=31)
    assert idle.get("/console/dashboard").headers.get("location") == "/console/login"
    busy = world.session(Role.AUDITOR)
    for _ in range(35):  # 35 × 20 min = 11 h 40 min, each view within the idle timeout
        world.clock.advance(minutes=20)
        assert busy.get("/console/dashboard").status_code == 200
    world.clock.advance(minutes=21)
    assert busy.get("/console/dashboard").headers.get("location") == "/console/login"


def test_logout_revokes_the_session_on_the_server(world: World) -> None:
    """A copied cookie stops working once its owner signs out."""
    session = world.session(Role.BANK)
    copied = session.http.cookies.get("cloudpay_console")
    assert session.post("/console/logout").status_code == 303
    assert copied
    assert _with_cookie(world, copied).status_code == 303


def test_login_is_throttled_per_email_after_five_failures(world: World) -> None:
    """Five wrong passwords in 15 minutes lock the e-mail, even for the right password."""
    email = world.city.emails[Role.BANK]
    session = ConsoleSession(str(world.http.base_url))
    for _ in range(5):
        assert session.login(email, "wrong-password-xyz").status_code == 401
    assert session.login(email).status_code == 429
    world.clock.advance(minutes=16)
    assert session.login(email).status_code == 303


def test_an_admin_with_totp_needs_the_current_code(world: World) -> None:
    """Password alone is not enough for a TOTP admin; a wrong code fails, the right one works."""
    vault = vault_for(world.settings)
    _, secret = run_in_transaction(world.engine, lambda uow: create_user(
        uow, vault=vault, email="root@totp.test", password=PASSWORD, role=Role.PLATFORM_ADMIN,
        with_totp=True), clock=world.clock)  # fmt: skip
    assert secret is not None
    session = ConsoleSession(str(world.http.base_url))
    assert session.login("root@totp.test").status_code == 401
    totp, now = pyotp.TOTP(secret), world.clock.now()
    accepted = {totp.at(now + timedelta(seconds=step)) for step in (-30, 0, 30)}
    wrong = next(f"{n:06d}" for n in range(10) if f"{n:06d}" not in accepted)
    assert session.login("root@totp.test", totp_code=wrong).status_code == 401
    code = totp.at(now)
    assert session.login("root@totp.test", totp_code=code).status_code == 303


def _visible(session: ConsoleSession, path: str) -> int:
    return session.get(path).status_code


def test_roles_see_only_their_pages_and_their_own_data(world: World) -> None:
    """The role matrix and the data scope, checked on the server for each role."""
    mine, theirs = world.city.merchant_id, world.city.other_merchant_id
    expected = {  # role: (users, audit, ledger, my merchant, their merchant)
        Role.PLATFORM_ADMIN: (200, 200, 200, 200, 200),
        Role.BANK: (403, 403, 200, 200, 200),
        Role.AGENT: (403, 403, 403, 200, 404),
        Role.MERCHANT: (403, 403, 403, 200, 404),
        Role.RISK_OFFICER: (403, 403, 200, 200, 200),
        Role.AUDITOR: (403, 200, 200, 200, 200),
    }
    for role, codes in expected.items():
        session = world.session(role)
        seen = tuple(_visible(session, path) for path in (
            "/console/users", "/console/audit", "/console/ledger",
            f"/console/merchants/{mine}", f"/console/merchants/{theirs}"))  # fmt: skip
        assert seen == codes, role
        listing = session.get("/console/merchants").text
        assert mine in listing
        assert (theirs in listing) is (role not in (Role.AGENT, Role.MERCHANT)), role


def test_only_reviewers_may_approve_and_the_scope_binds_them(world: World) -> None:
    """Auditors, banks, agents and merchants get 403 for a review; the merchant stays put."""
    review = f"/console/merchants/{world.city.merchant_id}/review"
    for role in (Role.AUDITOR, Role.BANK, Role.AGENT, Role.MERCHANT):
        assert world.session(role).post(review, {"action": "approve"}).status_code == 403, role
    assert world.merchant_status(world.city.merchant_id) == "submitted"
    risk = world.session(Role.RISK_OFFICER)
    assert risk.post(review, {"action": "reject"}).status_code == 400  # a reason is required
    assert risk.post(review, {"action": "reject", "reason": "执照模糊"}).status_code == 303
    assert world.merchant_status(world.city.merchant_id) == "rejected"


def test_every_write_leaves_an_audit_entry_with_before_after_and_origin(world: World) -> None:
    """Approve and create-user writes are in the log and its CSV export, personal data masked."""
    admin = world.session(Role.PLATFORM_ADMIN)
    review = f"/console/merchants/{world.city.merchant_id}/review"
    assert admin.post(review, {"action": "approve"}).status_code == 303
    created = admin.post("/console/users", {"email": "new.auditor@test.cloudpay.local",
                                            "password": PASSWORD, "role": "auditor"})  # fmt: skip
    assert created.status_code == 201
    auditor = world.session(Role.AUDITOR)
    export = auditor.get("/console/audit/export")
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    approve = next(row for row in rows if row["action"] == "merchant.approve")
    assert approve["object_id"] == world.city.merchant_id
    assert '"status": "submitted"' in approve["before"]
    assert '"status": "approved"' in approve["after"]
    assert approve["actor_email"] == world.city.emails[Role.PLATFORM_ADMIN]
    assert approve["ip"] == "127.0.0.1"
    assert approve["user_agent"].startswith("python-httpx")
    assert "13912345678" not in export.text
    assert "139****5678" in export.text
    assert any(row["action"] == "user.create" for row in rows)
    assert "new.auditor@test.cloudpay.local" not in export.text  # e-mails masked in the entry
    assert auditor.get("/console/audit").status_code == 200
    assert world.session(Role.BANK).get("/console/audit/export").status_code == 403


def test_bad_form_input_is_a_clear_4xx_page_never_a_500(world: World) -> None:
    """Unknown statuses, review actions and roles are 400s rendered as pages."""
    admin = world.session(Role.PLATFORM_ADMIN)
    assert admin.get("/console/orders", status="bogus").status_code == 400
    assert admin.get("/console/merchants", status="bogus").status_code == 400
    review = f"/console/merchants/{world.city.merchant_id}/review"
    assert admin.post(review, {"action": "explode"}).status_code == 400
    bad_role = admin.post("/console/users", {"email": "x@y.cn", "password": PASSWORD,
                                             "role": "emperor"})  # fmt: skip
    assert bad_role.status_code == 400
    short = admin.post("/console/users", {"email": "x@y.cn", "password": "short",
                                          "role": "auditor"})  # fmt: skip
    assert short.status_code == 400
    assert admin.get("/console/orders/ord_missing").status_code == 404


def test_demo_users_cover_every_role_and_can_be_created_twice(world: World) -> None:
    """`create_demo_users` gives one working login per role, and a second run changes nothing."""

    def demo_users(uow: UnitOfWork) -> list[tuple[str, str, str]]:
        return create_demo_users(
            uow, merchant_id=world.city.merchant_id, agent_id=world.city.agent_id
        )

    first = run_in_transaction(world.engine, demo_users, clock=world.clock)
    assert run_in_transaction(world.engine, demo_users, clock=world.clock) == first
    assert {role for role, _, _ in first} == {role.value for role in Role}
    for role, email, password in first:
        session = ConsoleSession(str(world.http.base_url))
        assert session.login(email, password).status_code == 303, role
        session.close()


def test_merchant_search_uses_blind_indexes_within_the_scope(world: World) -> None:
    """Search by mobile number or ID number finds merchants, an agent only its own ones."""
    mine, theirs = world.city.merchant_id, world.city.other_merchant_id
    admin = world.session(Role.PLATFORM_ADMIN).get("/console/merchants", q="13912345678").text
    assert mine in admin
    assert theirs in admin
    agent = world.session(Role.AGENT)
    by_id_number = agent.get("/console/merchants", q="11010519491231002X").text
    assert mine in by_id_number
    assert theirs not in by_id_number
    assert (
        f'href="/console/merchants/{theirs}"' not in agent.get("/console/merchants", q=theirs).text
    )
    assert f'href="/console/merchants/{mine}"' in agent.get("/console/merchants", q=mine).text
    assert agent.get("/console/merchants", q="not a key").status_code == 400
    detail = world.session(Role.BANK).get(f"/console/merchants/{mine}").text
    assert "139****5678" in detail
    assert "13912345678" not in detail
