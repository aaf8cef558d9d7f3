"""Citizens' wallet identity on SQLite and PostgreSQL: one person = one resident ID, and each
wallet payer id leads to exactly one person."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from cloudpay.citizen import (
    PayerChannel,
    Registration,
    find_citizen_by_payer_id,
    find_citizen_id_by_resident_id,
    get_citizen,
    link_payer_id,
    register_citizen,
)
from cloudpay.citizen.errors import CitizenAlreadyRegistered
from cloudpay.citizen.tables import citizens
from cloudpay.kernel.clock import FixedClock
from tests.integration.test_marketing_claims import START, VAULT, in_tx, refusal, resident_id

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
BUYER_ID = "2088102146225135"


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START + timedelta(hours=1))


def _register(engine: Engine, clock: FixedClock, id_number: str) -> str:
    registration = Registration("王小明", id_number, "+86 139 0000 1111", True, "370702")
    return in_tx(
        engine, clock, lambda uow: register_citizen(uow, vault=VAULT, registration=registration)
    ).id


def test_a_citizen_is_stored_encrypted_and_shown_masked(
    engine: Engine, world_clock: FixedClock
) -> None:
    """No column holds the plain name, ID or phone; the record shows only masks."""
    id_number = resident_id(7)
    citizen_id = _register(engine, world_clock, id_number)
    citizen = in_tx(engine, world_clock, lambda uow: get_citizen(uow, citizen_id))
    assert citizen.name_masked == "王**"
    assert citizen.phone_masked == "139****1111"
    assert citizen.resident_id_masked == id_number[:3] + "*" * 11 + id_number[-4:]
    with engine.connect() as connection:
        row = connection.execute(select(citizens)).one()
    stored = " ".join(str(value) for value in row)
    for plain in (id_number, "13900001111", "王小明"):
        assert plain not in stored


def test_one_resident_id_is_one_citizen_however_it_is_written(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Registering the same ID again (spaced, lower-case) is a 409 naming the first citizen."""
    id_number = "11010519491231002X"
    first = _register(engine, world_clock, id_number)
    with pytest.raises(CitizenAlreadyRegistered) as refused:
        _register(engine, world_clock, "110105 19491231 002x")
    assert refused.value.details == {"citizen_id": first}
    found = in_tx(engine, world_clock, lambda uow: find_citizen_id_by_resident_id(
        uow, vault=VAULT, resident_id=id_number))  # fmt: skip
    assert found == first


def test_wallet_payer_ids_lead_to_one_person(engine: Engine, world_clock: FixedClock) -> None:
    """WeChat and Alipay identities both find the citizen; another person cannot take one;
    linking the same one twice is harmless."""
    me = _register(engine, world_clock, resident_id(1))
    other = _register(engine, world_clock, resident_id(2))
    for channel, payer_id in ((PayerChannel.WECHAT, OPENID), (PayerChannel.ALIPAY, BUYER_ID)):
        in_tx(engine, world_clock, lambda uow, c=channel, p=payer_id: link_payer_id(
            uow, me, channel=c, payer_id=p))  # fmt: skip
    in_tx(engine, world_clock, lambda uow: link_payer_id(
        uow, me, channel=PayerChannel.WECHAT, payer_id=OPENID))  # fmt: skip
    code = refusal(lambda: in_tx(engine, world_clock, lambda uow: link_payer_id(
        uow, other, channel=PayerChannel.WECHAT, payer_id=OPENID)))  # fmt: skip
    assert code == "payer_id_taken"
    for channel, payer_id in ((PayerChannel.WECHAT, OPENID), (PayerChannel.ALIPAY, BUYER_ID)):
        found = in_tx(engine, world_clock, lambda uow, c=channel, p=payer_id:
                      find_citizen_by_payer_id(uow, channel=c, payer_id=p))  # fmt: skip
        assert found is not None
        assert found.id == me
    unknown = in_tx(engine, world_clock, lambda uow: find_citizen_by_payer_id(
        uow, channel=PayerChannel.UNIONPAY, payer_id="nobody123"))  # fmt: skip
    assert unknown is None
    linked = in_tx(engine, world_clock, lambda uow: get_citizen(uow, me, with_payer_ids=True))
    assert len(linked.payer_ids) == 2
