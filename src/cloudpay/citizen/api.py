"""Operator API of citizens: register (实名), read (masked), link wallet payer ids."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from cloudpay.citizen import service
from cloudpay.citizen.schemas import CitizenCreate, PayerIdCreate, citizen_view, payer_id_view
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.web.deps import Operator, TxRunner, Vault

router = APIRouter(prefix="/v1", tags=["citizens"])
CitizenId = Annotated[str, Path(pattern=r"^ctz_[0-9A-Z]{26}$")]
SCOPE = "operator"


@router.post("/citizens", status_code=201)
async def register_citizen(
    body: CitizenCreate, runner: TxRunner, vault: Vault, _: Operator
) -> JSONResponse:
    """A citizen with real-name identity; personal fields come back masked."""
    registration = body.to_registration()

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        citizen = service.register_citizen(uow, vault=vault, registration=registration)
        return 201, citizen_view(citizen)

    return await runner.write_idempotent(SCOPE, work)


@router.get("/citizens/{citizen_id}")
def get_citizen(citizen_id: CitizenId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    citizen = runner.read(lambda uow: service.get_citizen(uow, citizen_id, with_payer_ids=True))
    return citizen_view(citizen)


@router.post("/citizens/{citizen_id}/payer-ids", status_code=201)
async def link_payer_id(
    citizen_id: CitizenId, body: PayerIdCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    """Link a wallet identity (WeChat openid, Alipay buyer id) so vouchers follow the person."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        payer = service.link_payer_id(uow, citizen_id, channel=body.channel, payer_id=body.payer_id)
        return 201, payer_id_view(payer)

    return await runner.write_idempotent(SCOPE, work)
