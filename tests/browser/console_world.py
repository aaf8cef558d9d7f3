"""A small city for console tests: two agents (one nested), merchants under each, one user per
role, and an HTTP session helper that logs in and posts forms with the CSRF token.

Merchants are onboarded through the operator API of the server under test; users are created
with `cloudpay.console.create_user`, as `cloudpay user create` does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, text
from stdnum.cn import uscc

from cloudpay.config import Settings
from cloudpay.console import Role, create_user
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock, FixedClock
from cloudpay.main import create_app, vault_for
from tests.conftest import OPERATOR_HEADERS, serving

PASSWORD = "correct-horse-battery-staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_numbers = itertools.count(1)


def operator(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = http.post(path, json=body, headers=OPERATOR_HEADERS)
    assert response.status_code in (200, 201), response.text
    return response.json()


def onboard_merchant(http: httpx.Client, name: str, *, agent_id: str | None,
                     submit: bool = True) -> str:  # fmt: skip
    """A merchant with a store and an app, submitted for review (not approved)."""
    body = f"91370786{next(_numbers) + 500:09d}"
    merchant = operator(http, "/v1/merchants", {
        "legal_name": name, "unified_social_credit_code": body + uscc.calc_check_digit(body),
        "legal_person_name": "李四", "legal_person_id_number": "11010519491231002X",
        "contact_phone": "13912345678", "mcc": "5812", "agent_id": agent_id,
    })  # fmt: skip
    operator(http, f"/v1/merchants/{merchant['id']}/stores", {"name": f"{name} 一号店"})
    if submit:
        operator(http, f"/v1/merchants/{merchant['id']}/submit")
    return str(merchant["id"])


@dataclass
class City:
    agent_id: str
    sub_agent_id: str
    other_agent_id: str
    merchant_id: str  # under sub_agent (so inside agent's subtree)
    other_merchant_id: str  # under other_agent
    emails: dict[Role, str] = field(default_factory=dict)


def build_city(http: httpx.Client, engine: Engine, settings: Settings, clock: Clock) -> City:
    agent = operator(http, "/v1/agents", {"name": "潍城区代理"})["id"]
    sub_agent = operator(http, "/v1/agents", {"name": "二级代理", "parent_agent_id": agent})["id"]
    other_agent = operator(http, "/v1/agents", {"name": "奎文区代理"})["id"]
    city = City(
        agent, sub_agent, other_agent,
        onboard_merchant(http, "潍坊市风筝坊", agent_id=sub_agent),
        onboard_merchant(http, "寒亭区萝卜店", agent_id=other_agent),
    )  # fmt: skip
    vault = vault_for(settings)
    city.emails = {role: f"{role.value}.{next(_numbers)}@test.cloudpay.local" for role in Role}

    def add_users(uow: UnitOfWork) -> None:
        for role, email in city.emails.items():
            create_user(
                uow, vault=vault, email=email, password=PASSWORD, role=role,
                merchant_id=city.merchant_id if role is Role.MERCHANT else None,
                agent_id=agent if role is Role.AGENT else None,
            )  # fmt: skip

    run_in_transaction(engine, add_users, clock=clock)
    return city


class ConsoleSession:
    """One browser's worth of cookies against the server, with form posts that carry CSRF."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def login(self, email: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
        return self.http.post("/console/login", data={"email": email, "password": password,
                                                      **extra})  # fmt: skip

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params)

    def csrf(self) -> str:
        page = self.http.get("/console/dashboard", follow_redirects=True)
        found = CSRF.search(page.text)
        assert found, "no CSRF token on the page: not signed in?"
        return found.group(1)

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf()
        return self.http.post(path, data=form)


def signed_in(base_url: str, email: str) -> ConsoleSession:
    session = ConsoleSession(base_url)
    response = session.login(email)
    assert response.status_code == 303, response.text
    return session


@dataclass
class World:
    """The console served over HTTP with a `FixedClock`, and the city in its database."""

    http: httpx.Client
    city: City
    clock: FixedClock
    engine: Engine
    settings: Settings

    def session(self, role: Role) -> ConsoleSession:
        return signed_in(str(self.http.base_url), self.city.emails[role])

    def merchant_status(self, merchant_id: str) -> str:
        with self.engine.connect() as connection:
            query = text("SELECT status FROM merchants WHERE id = :id")
            return str(connection.execute(query, {"id": merchant_id}).scalar_one())


@contextmanager
def open_world(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[World]:
    with serving(create_app(settings, engine=engine, clock=clock)) as http:
        yield World(http, build_city(http, engine, settings, clock), clock, engine, settings)
