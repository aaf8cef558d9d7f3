"""Citizens' use cases. Each takes the unit of work; none commits (the boundary does).

Personal values arrive plain, are checked, and leave for the database only as what the
`PersonalDataVault` makes of them. Uniqueness (one resident ID, one owner per payer id) is
the database's: a concurrent registration that wins the race surfaces as an IntegrityError,
which the boundary retries, and the retry then sees the winner and answers 409.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from cloudpay.citizen import repository
from cloudpay.citizen.errors import CitizenAlreadyRegistered, CitizenNotFound, PayerIdTaken
from cloudpay.citizen.model import (
    MAX_PAYER_IDS_PER_CITIZEN,
    NAME,
    PHONE,
    RESIDENT_ID,
    Citizen,
    PayerChannel,
    PayerId,
    Registration,
    check_district,
    check_mobile_phone,
    check_name,
    check_payer_id,
    check_resident_id,
)
from cloudpay.db.retry import RetryableConflict
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.vault import PersonalDataVault


class ConcurrentInsertError(RetryableConflict):
    """A resident ID or payer id was taken by a transaction that committed after we looked."""


def register_citizen(
    uow: UnitOfWork, *, vault: PersonalDataVault, registration: Registration
) -> Citizen:
    """实名登记: check, seal and store a citizen; a second registration of an ID is a 409."""
    name = vault.seal(NAME, check_name(registration.name))
    resident_id = vault.seal(RESIDENT_ID, check_resident_id(registration.resident_id))
    phone = vault.seal(PHONE, check_mobile_phone(registration.phone))
    district = check_district(registration.district)
    existing = repository.citizen_id_by_resident_index(uow.connection, resident_id.blind_index)
    if existing is not None:
        raise CitizenAlreadyRegistered(
            f"this resident ID is already citizen {existing}",
            param="resident_id",
            details={"citizen_id": existing},
        )
    citizen = Citizen(
        id=new_id("ctz"),
        name_masked=name.masked,
        resident_id_masked=resident_id.masked,
        phone_masked=phone.masked,
        resident=registration.resident,
        district=district,
        created_at=uow.clock.now(),
    )
    try:
        repository.insert_citizen(
            uow.connection, citizen, name=name, resident_id=resident_id, phone=phone
        )
    except IntegrityError as error:
        raise ConcurrentInsertError from error
    return citizen


def get_citizen(uow: UnitOfWork, citizen_id: str, *, with_payer_ids: bool = False) -> Citizen:
    citizen = repository.load_citizen(uow.connection, citizen_id, with_payer_ids=with_payer_ids)
    if citizen is None:
        raise CitizenNotFound(f"no citizen {citizen_id}", param="citizen_id")
    return citizen


def find_citizen_id_by_resident_id(
    uow: UnitOfWork, *, vault: PersonalDataVault, resident_id: str
) -> str | None:
    blind_index = vault.index(RESIDENT_ID, check_resident_id(resident_id))
    return repository.citizen_id_by_resident_index(uow.connection, blind_index)


def find_citizen_by_payer_id(
    uow: UnitOfWork, *, channel: PayerChannel, payer_id: str
) -> Citizen | None:
    """The person behind a wallet (the payer of an order), or None if never linked."""
    found = repository.find_payer_id(uow.connection, channel, payer_id)
    if found is None:
        return None
    return get_citizen(uow, found.citizen_id)


def link_payer_id(
    uow: UnitOfWork, citizen_id: str, *, channel: PayerChannel, payer_id: str
) -> PayerId:
    """Attach a wallet's payer id to the citizen; linking it again to them changes nothing."""
    checked = check_payer_id(payer_id)
    citizen = get_citizen(uow, citizen_id, with_payer_ids=True)
    found = repository.find_payer_id(uow.connection, channel, checked)
    if found is not None:
        if found.citizen_id == citizen_id:
            return found
        raise PayerIdTaken("this wallet payer id belongs to another citizen", param="payer_id")
    if len(citizen.payer_ids) >= MAX_PAYER_IDS_PER_CITIZEN:
        raise PayerIdTaken(
            f"a citizen links at most {MAX_PAYER_IDS_PER_CITIZEN} wallet payer ids",
            code="payer_id_limit_reached",
            param="payer_id",
        )
    payer = PayerId(channel, checked, citizen_id, uow.clock.now())
    try:
        repository.insert_payer_id(uow.connection, payer)
    except IntegrityError as error:
        raise ConcurrentInsertError from error
    return payer


def citizens_with_many_payer_ids(
    uow: UnitOfWork, *, at_least: int, limit: int = 1_000
) -> list[tuple[str, int]]:
    """One person with many wallets (the resident ID's blind index makes them one citizen):
    citizens linked to at least `at_least` payer ids, with the count (a bounded batch)."""
    return repository.citizens_with_many_payer_ids(uow.connection, at_least=at_least, limit=limit)
