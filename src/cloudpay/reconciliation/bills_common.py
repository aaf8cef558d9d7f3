"""What every channel's bill reader shares: the error it raises and a few column checks."""

from __future__ import annotations

import io
import zipfile

import polars as pl

from cloudpay.kernel.errors import InvalidRequest
from cloudpay.reconciliation.model import UTC_INSTANT

MAX_BILL_BYTES = 512 * 1024 * 1024


class BillRejected(InvalidRequest):
    """The file is not a well-formed bill of the channel it was given for."""

    default_code = "bill_rejected"


def count_bad(valid: pl.Expr) -> pl.Expr:
    """How many rows fail `valid`; a missing value (a short row) fails."""
    return valid.not_().fill_null(True).sum()


def reject_bad_columns(frame: pl.DataFrame, checks: dict[str, pl.Expr]) -> None:
    """Reject the file naming every column (check name) in which some row fails its check."""
    bad = frame.select(count_bad(check).alias(name) for name, check in checks.items())
    wrong = [name for name, count in bad.row(0, named=True).items() if count != 0]
    if wrong:
        raise BillRejected(f"malformed or missing values in column(s) {wrong}")


def beijing_to_utc(wall_time: pl.Expr) -> pl.Expr:
    """A naive Beijing wall time as a UTC instant. Asia/Shanghai is UTC+8 all year (no daylight
    saving since 1991), so a fixed shift is exact and cheaper than a zone conversion."""
    return (wall_time - pl.duration(hours=8)).dt.replace_time_zone("UTC").cast(UTC_INSTANT)


def zip_members(data: bytes) -> dict[str, bytes]:
    """Every file of a bill zip by name (GBK names without the UTF-8 flag decoded as GBK);
    a truncated or corrupt archive, or members too large, is rejected."""
    if len(data) > MAX_BILL_BYTES:
        raise BillRejected(f"bill larger than {MAX_BILL_BYTES} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            infos = bundle.infolist()
            if sum(info.file_size for info in infos) > MAX_BILL_BYTES:
                raise BillRejected(f"bill files larger than {MAX_BILL_BYTES} bytes")
            return {_member_name(info): bundle.read(info) for info in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise BillRejected(f"bill is not a complete zip archive: {error}") from error


def _member_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:  # the name is flagged UTF-8
        return info.filename
    try:  # Chinese channels write GBK names without the flag; zipfile read them as cp437
        return info.filename.encode("cp437").decode("gbk")
    except UnicodeError:
        return info.filename
