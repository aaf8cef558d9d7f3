"""Citizens: real-name wallet identity (实名), and the wallet payer ids that point at a person.

Other contexts call only these functions, with their unit of work. `find_citizen_by_payer_id`
is what payments asks to learn whose vouchers apply to a payer.
"""

from cloudpay.citizen.errors import CitizenNotFound
from cloudpay.citizen.model import Citizen, PayerChannel, PayerId, Registration
from cloudpay.citizen.service import (
    citizens_with_many_payer_ids,
    find_citizen_by_payer_id,
    find_citizen_id_by_resident_id,
    get_citizen,
    link_payer_id,
    register_citizen,
)

__all__ = [
    "Citizen",
    "CitizenNotFound",
    "PayerChannel",
    "PayerId",
    "Registration",
    "citizens_with_many_payer_ids",
    "find_citizen_by_payer_id",
    "find_citizen_id_by_resident_id",
    "get_citizen",
    "link_payer_id",
    "register_citizen",
]
