"""The console app: login, dashboard, users, audit log; the business pages are in `pages.py`.

`create_console(state)` builds the ASGI app `main.create_app` mounts at `/console`.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloudpay.console import charts, dashboard, money_pages, pages, routing_pages, service
from cloudpay.console.i18n import pick_language
from cloudpay.console.model import Permission, Role
from cloudpay.console.web import (
    COOKIE_NAME,
    PREFIX,
    CsrfRejected,
    NotSignedIn,
    SignedIn,
    client_ip,
    read,
    redirect,
    render,
    scope,
    set_session_cookie,
    settings_of,
    vault_of,
    write,
)
from cloudpay.kernel.errors import CloudPayError

STATIC = __file__.rsplit("/", 1)[0] + "/static"


def create_console(state: State) -> FastAPI:
    """The console, reading the engine, clock, vault and channels from the API's `state`."""
    console = FastAPI(title="CloudPay Console", docs_url=None, redoc_url=None, openapi_url=None)
    console.state = state
    console.mount("/static", StaticFiles(directory=STATIC), name="static")
    console.add_exception_handler(NotSignedIn, _to_login)
    console.add_exception_handler(CsrfRejected, _csrf_rejected)
    console.add_exception_handler(CloudPayError, _error_page)
    console.add_exception_handler(RequestValidationError, _invalid_form)
    console.add_exception_handler(StarletteHTTPException, _http_error)
    _routes(console)
    pages.install(console)
    routing_pages.install(console)
    money_pages.install(console)
    return console


# --- errors as pages ---------------------------------------------------------------------
async def _to_login(request: Request, _: Exception) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": PREFIX + "/login"})
    return redirect("/login")


async def _csrf_rejected(request: Request, _: Exception) -> Response:
    return render(request, "error.html", None, status_code=403, code="csrf_failed",
                  message="CSRF token missing or wrong: reload the page and try again")  # fmt: skip


async def _error_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, CloudPayError)
    return render(request, "error.html", None, status_code=error.http_status, code=error.code,
                  message=error.message)  # fmt: skip


async def _invalid_form(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())[1:])
    return render(request, "error.html", None, status_code=400, code="parameter_invalid",
                  message=f"{field}: {first.get('msg')}")  # fmt: skip


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return render(request, "error.html", None, status_code=error.status_code,
                  code="http_error", message=str(error.detail))  # fmt: skip


# --- routes ------------------------------------------------------------------------------
def _routes(console: FastAPI) -> None:
    console.get("/", response_class=HTMLResponse)(_home)
    console.get("/login", response_class=HTMLResponse)(_login_form)
    console.post("/login")(_login)
    console.post("/logout")(_logout)
    console.get("/dashboard", response_class=HTMLResponse)(_dashboard)
    console.get("/users", response_class=HTMLResponse)(_users)
    console.post("/users")(_create_user)
    console.get("/audit", response_class=HTMLResponse)(_audit)
    console.get("/audit/export")(_audit_export)


async def _home(actor: SignedIn) -> Response:
    return redirect("/dashboard" if actor.can(Permission.VIEW_DASHBOARD) else "/orders")


async def _login_form(request: Request) -> Response:
    return render(request, "login.html", None, failure=None)


_FAILURE_STATUS = {"invalid": 401, "throttled": 429, "totp_required": 401}


def _login(
    request: Request, email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=256)],
    totp_code: Annotated[str | None, Form(max_length=12)] = None,
) -> Response:  # fmt: skip
    language = pick_language(request.query_params.get("lang"), None)
    outcome = write(request, lambda uow: service.login(
        uow, vault=vault_of(request), email=email, password=password, totp_code=totp_code,
        ip=client_ip(request), user_agent=request.headers.get("user-agent"), language=language,
    ))  # fmt: skip
    if outcome.token is None:
        failure = outcome.failure or "invalid"
        return render(request, "login.html", None, status_code=_FAILURE_STATUS[failure],
                      failure=failure, email=email)  # fmt: skip
    response = redirect("/")
    set_session_cookie(response, outcome.token, settings_of(request))
    return response


def _logout(request: Request, actor: SignedIn) -> Response:
    token = request.cookies.get(COOKIE_NAME, "")
    write(request, lambda uow: service.logout(uow, token=token))
    response = redirect("/login")
    response.delete_cookie(COOKIE_NAME, path=PREFIX)
    return response


def _dashboard(request: Request, actor: SignedIn) -> Response:
    the_scope = scope(request, actor)
    if the_scope.unrestricted:
        due = read(request, dashboard.days_to_cache)
        if due:
            write(request, lambda uow: dashboard.cache_days(uow, due))
    board = read(request, lambda uow: dashboard.dashboard(uow, actor, the_scope))
    trend = charts.bar_chart(
        [point.succeeded_amount for point in board.trend],
        [f"{point.day.isoformat()} ¥{point.succeeded_amount // 100:,}" for point in board.trend],
        title="30-day volume",
    )
    by_channel = charts.bar_chart(
        [row.succeeded_amount for row in board.channels],
        [f"{row.channel} ¥{row.succeeded_amount // 100:,}" for row in board.channels],
        title="today by channel",
    )
    # Safe markup: charts.py writes numbers and escapes every label itself.
    trend_markup, channel_markup = Markup(trend), Markup(by_channel)  # noqa: S704
    return render(request, "dashboard.html", actor, board=board, trend_svg=trend_markup,
                  channel_svg=channel_markup)  # fmt: skip


def _users(request: Request, actor: SignedIn) -> Response:
    users = read(request, lambda uow: service.list_users(uow, actor))
    return render(request, "users.html", actor, users=users, roles=list(Role), created=None)


def _create_user(
    request: Request, actor: SignedIn, email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=256)], role: Annotated[Role, Form()],
    merchant_id: Annotated[str, Form(max_length=32)] = "",
    agent_id: Annotated[str, Form(max_length=32)] = "",
    with_totp: Annotated[bool, Form()] = False,
) -> Response:  # fmt: skip
    user, secret = write(request, lambda uow: service.add_user(
        uow, actor, vault=vault_of(request), email=email, password=password, role=role,
        merchant_id=merchant_id or None, agent_id=agent_id or None, with_totp=with_totp,
    ))  # fmt: skip
    users = read(request, lambda uow: service.list_users(uow, actor))
    return render(request, "users.html", actor, status_code=201, users=users, roles=list(Role),
                  created=user, totp_secret=secret)  # fmt: skip


def _audit(request: Request, actor: SignedIn, after: str | None = None,
           object_id: str | None = None) -> Response:  # fmt: skip
    entries = read(request, lambda uow: service.list_audit(
        uow, actor, starting_after=after, object_id=object_id))  # fmt: skip
    more = len(entries) > service.MAX_AUDIT_PAGE - 1
    return render(request, "audit.html", actor, entries=entries[: service.MAX_AUDIT_PAGE - 1],
                  next_after=entries[-2]["id"] if more else None)  # fmt: skip


async def _audit_export(request: Request, actor: SignedIn) -> Response:
    """The whole log as CSV (before/after as JSON cells), for the auditor's own tools."""
    entries = await run_in_threadpool(read, request, lambda uow: service.export_audit(uow, actor))
    buffer = io.StringIO()
    columns = ["id", "created_at", "actor_email", "actor_role", "action", "object_type",
               "object_id", "before", "after", "ip", "user_agent"]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for entry in entries:
        writer.writerow({**entry, "before": _json(entry["before"]), "after": _json(entry["after"]),
                         "created_at": entry["created_at"].isoformat()})  # fmt: skip
    return StreamingResponse(
        iter([buffer.getvalue()]), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cloudpay-audit.csv"'},
    )  # fmt: skip


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
