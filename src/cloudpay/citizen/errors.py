"""Errors of the citizen context, each with one HTTP status and a stable code.

| code                          | status | when |
|-------------------------------|--------|------|
| `resident_id_invalid`         | 400 | resident ID fails `stdnum.cn.ric` |
| `phone_invalid`               | 400 | not a mainland mobile number (11 digits, 1[3-9]…) |
| `name_invalid`                | 400 | empty, too long, or with control characters |
| `district_invalid`            | 400 | not a 6-digit administrative division code |
| `payer_id_invalid`            | 400 | unknown channel or malformed wallet payer id |
| `citizen_not_found`           | 404 | |
| `citizen_already_registered` | 409 | this resident ID is already a citizen (one person, one ID) |
| `payer_id_taken`              | 409 | the wallet payer id belongs to another citizen |
"""

from __future__ import annotations

from cloudpay.kernel.errors import Conflict, InvalidRequest, NotFound


class InvalidCitizenField(InvalidRequest):
    default_code = "parameter_invalid"


class CitizenNotFound(NotFound):
    default_code = "citizen_not_found"


class CitizenAlreadyRegistered(Conflict):
    default_code = "citizen_already_registered"


class PayerIdTaken(Conflict):
    default_code = "payer_id_taken"
