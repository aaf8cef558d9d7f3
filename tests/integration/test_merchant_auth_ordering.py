"""The signature is checked before FastAPI parses a merchant route's body."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from cloudpay.config import Settings
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.main import create_app
from cloudpay.web.errors import install_error_handlers
from cloudpay.web.merchant_auth import (
    AppKeyDirectory,
    MerchantCaller,
    MerchantRoute,
    authenticate_merchant,
)
from cloudpay.web.middleware import RequestContextMiddleware
from cloudpay.web.response_signing import route_depends_on
from tests.conftest import serving


class Order(BaseModel):
    amount: int


def _never(uow: UnitOfWork, *args: object, **kwargs: object) -> None:
    raise AssertionError("an unsigned request must not reach the key directory")


def _app(*, merchant_route: bool) -> FastAPI:
    app = FastAPI()
    app.state.app_keys = AppKeyDirectory(find_app_key=_never, get_app=_never)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    router = APIRouter(route_class=MerchantRoute) if merchant_route else APIRouter()

    @router.post("/v1/things")
    def create_thing(body: Order, caller: MerchantCaller) -> dict[str, Any]:
        return {"amount": body.amount, "app_id": caller.app_id}

    app.include_router(router)
    return app


def test_unsigned_bad_json_is_401_not_400() -> None:
    """An unsigned request with broken JSON learns only that it is unsigned."""
    with serving(_app(merchant_route=True)) as client:
        response = client.post("/v1/things", content=b'{"amount": ', headers={
            "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_missing"


def test_unsigned_invalid_fields_are_401_too() -> None:
    """Field validation waits for authentication, with or without `MerchantRoute`."""
    for merchant_route in (True, False):
        with serving(_app(merchant_route=merchant_route)) as client:
            response = client.post("/v1/things", json={"amount": "lots"})
        assert response.status_code == 401, merchant_route
        assert response.json()["error"]["code"] == "signature_missing"


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_every_merchant_route_authenticates_before_parsing(tmp_path: Path) -> None:
    """Each route that depends on `MerchantCaller` is a `MerchantRoute`, whoever wrote it."""
    app = create_app(Settings(env="test", database_url=f"sqlite:///{tmp_path}/x.db"))
    merchant_routes = [
        r for r in _api_routes(app.routes) if route_depends_on(r, authenticate_merchant)
    ]
    assert "/v1/apps/me" in {r.path for r in merchant_routes}
    plain = [r.path for r in merchant_routes if not isinstance(r, MerchantRoute)]
    assert plain == [], "build merchant routers with APIRouter(route_class=MerchantRoute)"
