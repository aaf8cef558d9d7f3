"""Wire shapes of the citizen API. Views are built from model records, which hold personal
values only masked — so no view can leak them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from cloudpay.citizen.model import Citizen, PayerChannel, PayerId, Registration


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CitizenCreate(Strict):
    name: str = Field(min_length=1, max_length=64, examples=["张三"])
    resident_id: str = Field(min_length=1, max_length=32)
    phone: str = Field(min_length=1, max_length=32)
    resident: StrictBool = True
    district: str | None = Field(default=None, max_length=6, examples=["370702"])

    def to_registration(self) -> Registration:
        return Registration(self.name, self.resident_id, self.phone, self.resident, self.district)


class PayerIdCreate(Strict):
    channel: PayerChannel
    payer_id: str = Field(min_length=1, max_length=64, examples=["oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"])


def payer_id_view(payer: PayerId) -> dict[str, Any]:
    return {
        "object": "payer_id",
        "channel": payer.channel.value,
        "payer_id": payer.payer_id,
        "citizen_id": payer.citizen_id,
        "created_at": payer.created_at.isoformat(),
    }


def citizen_view(citizen: Citizen) -> dict[str, Any]:
    return {
        "object": "citizen",
        "id": citizen.id,
        "name": citizen.name_masked,
        "resident_id": citizen.resident_id_masked,
        "phone": citizen.phone_masked,
        "resident": citizen.resident,
        "district": citizen.district,
        "payer_ids": [payer_id_view(p) for p in citizen.payer_ids],
        "created_at": citizen.created_at.isoformat(),
    }
