"""`GET /v1/apps/me`: the app whose key signed the request — the first call of an integration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cloudpay.web.merchant_auth import MerchantCaller, MerchantRoute

router = APIRouter(prefix="/v1/apps", tags=["apps"], route_class=MerchantRoute)


@router.get("/me")
def get_calling_app(caller: MerchantCaller) -> dict[str, Any]:
    """Which app, merchant and key CloudPay recognised in this request's signature."""
    return {
        "object": "app_identity",
        "app_id": caller.app_id,
        "merchant_id": caller.merchant_id,
        "serial_no": caller.serial_no,
        "algorithm": caller.algorithm,
    }
