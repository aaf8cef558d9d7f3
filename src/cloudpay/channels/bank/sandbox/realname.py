"""Real-name checks (实名核验) the sandbox bank runs before opening an e-account.

- Resident ID number: GB 11643-1999, 18 characters, ISO 7064 MOD 11-2 check character (may be
  `X`), a real birth date and an assigned region code; checked with python-stdnum's
  `stdnum.cn.ric` (2.x also checks the region code against its own table).
  https://search.r-project.org/CRAN/refmans/IDCard/html/is.id.html (GB11643-1999, MOD 11-2)
  https://github.com/arthurdejong/python-stdnum/blob/master/stdnum/cn/ric.py
- Age: a person may open a personal account alone from 16 (the bank's rule here; younger
  applicants need a guardian at the counter, which a remote e-account cannot do).
  http://www.7390.com.cn/f54caee9.html
- Mobile number: 11 digits, `1` then 3–9 (mainland numbering plan, 13x … 19x).
  https://oryoy.com/news/jie-mi-shou-ji-hao-zheng-ze-qing-song-zhang-wo-11-wei-hao-ma-pi-pei-ji-qiao.html
- Bound Class I card: 12–19 digits; the Luhn check (ISO/IEC 7812, `stdnum.luhn`) is only a
  warning, because some valid domestic cards (old passbook-linked numbers) fail it.
  https://github.com/arthurdejong/python-stdnum/blob/master/stdnum/luhn.py
"""

from __future__ import annotations

import re
from datetime import date

from stdnum import luhn
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

MIN_AGE_YEARS = 16
WARNING_CARD_LUHN = "bound_card_luhn_failed"
_PHONE = re.compile(r"1[3-9][0-9]{9}")
_CARD = re.compile(r"[0-9]{12,19}")


class RealNameRefused(Exception):
    """The bank will not open the account; `code` says which check failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def check_id_number(id_number: str, today: date) -> str:
    """The compact ID number, or `RealNameRefused` with the precise reason."""
    try:
        number: str = ric.validate(id_number)
    except InvalidChecksum:
        raise RealNameRefused("id_number_invalid", "居民身份证号校验位错误") from None
    except InvalidComponent:
        raise RealNameRefused("id_number_invalid", "居民身份证号出生日期或地区码无效") from None
    except ValidationError:
        raise RealNameRefused("id_number_invalid", "居民身份证号应为18位") from None
    birth: date = ric.get_birth_date(number)
    if birth > today:
        raise RealNameRefused("id_number_invalid", "居民身份证号出生日期在未来")
    if _age_on(birth, today) < MIN_AGE_YEARS:
        raise RealNameRefused("applicant_under_16", "未满16周岁不能线上开立电子账户")
    return number


def check_applicant(
    *, name: str, id_number: str, phone: str, bound_card_number: str, today: date
) -> tuple[str, ...]:
    """Run every check in order; return the warnings of an applicant who passes."""
    if not 2 <= len(name.strip()) <= 40 or any(ch.isdigit() for ch in name):
        raise RealNameRefused("name_invalid", "户名应为2至40个字符且不含数字")
    check_id_number(id_number, today)
    if not _PHONE.fullmatch(phone):
        raise RealNameRefused("phone_invalid", "手机号应为1开头的11位大陆手机号")
    if not _CARD.fullmatch(bound_card_number):
        raise RealNameRefused("bound_card_invalid", "绑定卡号应为12至19位数字")
    return () if luhn.is_valid(bound_card_number) else (WARNING_CARD_LUHN,)
