"""The console's web plumbing: the session cookie, the signed-in actor, CSRF, rendering.

The console is its own ASGI app mounted at `/console` (sharing the API's state), so its
errors render as HTML pages while the API keeps its JSON error shape.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from cloudpay.config import Settings
from cloudpay.console import service
from cloudpay.console.i18n import pick_language, translate
from cloudpay.console.model import (
    Permission,
    Scope,
    format_basis_points,
    format_time,
    format_yuan,
)
from cloudpay.console.service import Actor
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.errors import PermissionDenied
from cloudpay.kernel.masking import mask_email
from cloudpay.kernel.vault import PersonalDataVault

T = TypeVar("T")
COOKIE_NAME = "cloudpay_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PREFIX = "/console"
TEMPLATES = Path(__file__).parent / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
)
environment.filters["yuan"] = format_yuan
environment.filters["shanghai"] = format_time
environment.filters["percent"] = format_basis_points
environment.filters["mask_email"] = mask_email


class NotSignedIn(Exception):
    """No live session: pages redirect to the login form."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token."""


def settings_of(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def vault_of(request: Request) -> PersonalDataVault:
    vault = request.app.state.vault
    assert isinstance(vault, PersonalDataVault)
    return vault


def read(request: Request, work: Callable[[UnitOfWork], T]) -> T:
    return run_in_transaction(request.app.state.engine, work, clock=request.app.state.clock,
                              read_only=True)  # fmt: skip


def write(request: Request, work: Callable[[UnitOfWork], T]) -> T:
    return run_in_transaction(request.app.state.engine, work, clock=request.app.state.clock)


def transact(request: Request) -> Callable[[Callable[[UnitOfWork], T]], T]:
    def run(work: Callable[[UnitOfWork], T], /) -> T:
        return write(request, work)

    return run


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _resolve(request: Request) -> Actor:
    token = request.cookies.get(COOKIE_NAME, "")
    ip, agent = client_ip(request), request.headers.get("user-agent")
    actor, touch = read(request, lambda uow: service.resolve_session(
        uow, token=token, ip=ip, user_agent=agent))  # fmt: skip
    if actor is None:
        raise NotSignedIn
    if touch:
        write(request, lambda uow: service.touch_session(uow, token=token))
    requested = request.query_params.get("lang")
    if requested and pick_language(requested, None) != actor.language:
        language = pick_language(requested, None)
        write(request, lambda uow: service.set_language(uow, token=token, language=language))
        actor = replace(actor, language=language)
    return actor


async def current_actor(request: Request) -> Actor:
    actor = await run_in_threadpool(_resolve, request)
    if request.method == "POST":
        await _check_csrf(request, actor)
    return actor


async def _check_csrf(request: Request, actor: Actor) -> None:
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not presented or not hmac.compare_digest(presented.encode(), actor.csrf_token.encode()):
        raise CsrfRejected


SignedIn = Annotated[Actor, Depends(current_actor)]


def scope(request: Request, actor: Actor) -> Scope:
    return read(request, lambda uow: service.scope_of(uow, actor))


def require_page(actor: Actor, permission: Permission) -> None:
    if not actor.can(permission):
        raise PermissionDenied(f"role {actor.role.value} may not {permission.value}",
                               code="role_not_permitted")  # fmt: skip


def render(
    request: Request, template: str, actor: Actor | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    language = actor.language if actor else pick_language(request.query_params.get("lang"), None)

    def t(key: str) -> str:
        return translate(key, language)

    page = environment.get_template(template).render(
        request=request, actor=actor, t=t, lang=language, prefix=PREFIX, Permission=Permission,
        csrf_field=_csrf_input(actor),
        form_nonce=secrets.token_urlsafe(24), **context,
    )  # fmt: skip
    return HTMLResponse(page, status_code=status_code)


def _csrf_input(actor: Actor | None) -> Markup:
    if actor is None:
        return Markup("")
    # The token is URL-safe base64 we minted: nothing in it needs escaping.
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{actor.csrf_token}">')  # noqa: S704


def redirect(path: str) -> Response:
    return RedirectResponse(PREFIX + path, status_code=303)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE_NAME, token, httponly=True, samesite="lax", path=PREFIX,
        secure=settings.env not in ("dev", "test"),
    )  # fmt: skip
