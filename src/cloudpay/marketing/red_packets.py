"""Red packets (红包): a funder's money split into shares that citizens claim, once each.

Money moves only as ledger transfers with ids derived from the packet (`red_packet_transfer_id`),
so a retried request or job replays a transfer instead of repeating it:

- creation: funder account → the packet's account (`red_packet:<id>`), the whole total;
- claim: the packet's account → the citizen's wallet account, that citizen's share;
- return: whatever the packet still holds → the funder account, by the job
  `return_unclaimed_red_packets` once `return_due_at` has passed.

The funder account must be one that cannot be overdrawn (`debits_must_not_exceed_credits`: a
merchant's available balance, a citizen's wallet), so a packet is always paid with money held.
The citizen's wallet is a ledger account of code `citizen_wallet` owned by the citizen,
credit-normal like every liability of the chart (the chart has no purpose for it yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from random import Random, SystemRandom

from sqlalchemy.exc import IntegrityError

from cloudpay import citizen, ledger
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.ledger import NewAccount, Transfer
from cloudpay.marketing import abuse, repository
from cloudpay.marketing.errors import (
    ClaimRefused,
    FunderBalanceInsufficient,
    FunderNotFound,
    InvalidCampaign,
    RedPacketNotFound,
)
from cloudpay.marketing.model import (
    RedPacket,
    RedPacketShare,
    RedPacketStatus,
    SplitMode,
    check_currency,
    red_packet_transfer_id,
    split_red_packet,
)
from cloudpay.marketing.service import ConcurrentClaim

RED_PACKET_CODE = "red_packet"
CITIZEN_WALLET_CODE = "citizen_wallet"
MAX_CLAIM_WINDOW_HOURS = 24 * 7
MAX_RETURN_AFTER_HOURS = 24 * 30
MAX_RETURNS_PER_RUN = 100
_SYSTEM_RANDOM = SystemRandom()  # the split must not be predictable from the packet id


@dataclass(frozen=True)
class RedPacketDraft:
    funder_account_id: str
    total_fen: int
    count: int
    mode: SplitMode
    max_part_fen: int
    claim_window_hours: int = 24
    return_after_hours: int = 24
    currency: str = "CNY"


def create_red_packet(
    uow: UnitOfWork, draft: RedPacketDraft, *, rng: Random | None = None
) -> RedPacket:
    """Split the packet now and move its total from the funder into the packet's account."""
    check_currency(draft.currency)
    _check_hours(draft)
    parts = split_red_packet(
        draft.total_fen, draft.count, max_part_fen=draft.max_part_fen, mode=draft.mode,
        rng=rng or _SYSTEM_RANDOM,
    )  # fmt: skip
    funder = _funder_account(uow, draft)
    packet_id = new_id("rpk")
    account = ledger.open_account(
        uow,
        NewAccount(
            owner=f"red_packet:{packet_id}", code=RED_PACKET_CODE, ledger=draft.currency,
            flags=ledger.ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
        ),
    )  # fmt: skip
    fund = Transfer(
        red_packet_transfer_id(packet_id, "fund"), funder.id, account.id, draft.total_fen,
        draft.currency, "marketing.red_packet.fund", user_data=packet_id,
    )  # fmt: skip
    result = ledger.create_transfer(uow, fund)
    if result.result == "exceeds_credits":
        raise FunderBalanceInsufficient(
            "the funder account does not hold the packet's total", param="total_fen"
        )
    if not result.ok:
        raise RuntimeError(f"funding of red packet {packet_id} refused: {result.result}")
    now = uow.clock.now()
    packet = RedPacket(
        id=packet_id, funder_account_id=funder.id, account_id=account.id,
        currency=draft.currency, mode=draft.mode, total_fen=draft.total_fen, count=draft.count,
        max_part_fen=draft.max_part_fen, claimed_count=0, claimed_fen=0, returned_fen=0,
        status=RedPacketStatus.OPEN,
        claim_ends_at=now + timedelta(hours=draft.claim_window_hours),
        return_due_at=now + timedelta(hours=draft.return_after_hours), created_at=now,
    )  # fmt: skip
    repository.insert_red_packet(uow.connection, packet, parts)
    return packet


def _check_hours(draft: RedPacketDraft) -> None:
    if not 1 <= draft.claim_window_hours <= MAX_CLAIM_WINDOW_HOURS:
        raise InvalidCampaign(
            f"claim_window_hours is 1–{MAX_CLAIM_WINDOW_HOURS}", param="claim_window_hours"
        )
    if not draft.claim_window_hours <= draft.return_after_hours <= MAX_RETURN_AFTER_HOURS:
        raise InvalidCampaign(
            f"return_after_hours is claim_window_hours–{MAX_RETURN_AFTER_HOURS}",
            param="return_after_hours",
        )


def _funder_account(uow: UnitOfWork, draft: RedPacketDraft) -> ledger.Account:
    try:
        found = ledger.get_account(uow, draft.funder_account_id).account
    except NotFound:
        raise FunderNotFound(
            f"no ledger account {draft.funder_account_id}", param="funder_account_id"
        ) from None
    if found.ledger != draft.currency:
        raise InvalidCampaign("the funder account is in another currency", param="currency")
    if not found.flags & ledger.ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS or found.closed:
        raise InvalidCampaign(
            "the funder account must be an open account that cannot be overdrawn",
            param="funder_account_id",
        )
    return found


def get_red_packet(uow: UnitOfWork, red_packet_id: str, *, lock: bool = False) -> RedPacket:
    packet = repository.load_red_packet(uow.connection, red_packet_id, lock=lock)
    if packet is None:
        raise RedPacketNotFound(f"no red packet {red_packet_id}", param="red_packet_id")
    return packet


def list_shares(uow: UnitOfWork, red_packet_id: str) -> list[RedPacketShare]:
    """The claimed shares in claim order (at most `MAX_RED_PACKET_PARTS`)."""
    get_red_packet(uow, red_packet_id)
    return repository.list_shares(uow.connection, red_packet_id)


def claim_red_packet(uow: UnitOfWork, red_packet_id: str, *, citizen_id: str) -> RedPacketShare:
    """抢红包: the next share for the citizen; a second claim by the same citizen returns the
    share they already have (claims are idempotent per citizen, and each citizen gets one)."""
    packet = get_red_packet(uow, red_packet_id)
    citizen.get_citizen(uow, citizen_id)
    held = repository.find_share(uow.connection, red_packet_id, citizen_id)
    if held is not None:
        return held
    now = uow.clock.now()
    if packet.status is not RedPacketStatus.OPEN or now >= packet.claim_ends_at:
        raise ClaimRefused("the red packet's claim window has closed", code="red_packet_expired")
    free = repository.next_unclaimed_part(uow.connection, red_packet_id)
    if free is None:
        raise ClaimRefused("every share of this red packet is claimed", code="red_packet_empty")
    part_no, amount_fen = free
    try:
        taken = repository.take_part(uow.connection, red_packet_id, part_no, citizen_id, now)
    except IntegrityError as error:  # the same citizen's other request won: replay theirs
        raise ConcurrentClaim from error
    if not taken:  # another citizen took this share first: the retry takes the next one
        raise ConcurrentClaim
    _pay_share(uow, packet, citizen_id, part_no, amount_fen)
    repository.record_share_claimed(uow.connection, red_packet_id, amount_fen, now)
    abuse.evaluate_claim(uow, citizen_id)
    return RedPacketShare(red_packet_id, part_no, amount_fen, citizen_id, now)


def wallet_account_id(uow: UnitOfWork, citizen_id: str, currency: str) -> str:
    """The citizen's wallet balance account, opened on first use."""
    new = NewAccount(
        owner=ledger.citizen_owner(citizen_id), code=CITIZEN_WALLET_CODE, ledger=currency,
        flags=ledger.ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    )  # fmt: skip
    return ledger.open_account(uow, new).id


def _pay_share(
    uow: UnitOfWork, packet: RedPacket, citizen_id: str, part_no: int, amount_fen: int
) -> None:
    transfer = Transfer(
        red_packet_transfer_id(packet.id, f"part:{part_no}"), packet.account_id,
        wallet_account_id(uow, citizen_id, packet.currency), amount_fen, packet.currency,
        "marketing.red_packet.claim", user_data=citizen_id,
    )  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if not result.ok:  # the shares sum to what the packet holds: a refusal is a broken books
        raise RuntimeError(f"share {part_no} of {packet.id} refused: {result.result}")


def return_red_packet(uow: UnitOfWork, red_packet_id: str) -> RedPacket:
    """Give what a packet still holds back to its funder; the packet takes no more claims."""
    packet = get_red_packet(uow, red_packet_id, lock=True)
    if packet.status is RedPacketStatus.RETURNED:
        return packet
    # Balancing: "whatever the packet holds", computed by the ledger under its own lock.
    transfer = Transfer(
        red_packet_transfer_id(packet.id, "return"), packet.account_id,
        packet.funder_account_id, None, packet.currency, "marketing.red_packet.return",
        flags=ledger.BALANCING_DEBIT, user_data=packet.id,
    )  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if not result.ok:
        raise RuntimeError(f"return of red packet {packet.id} refused: {result.result}")
    returned = result.amount or 0
    now = uow.clock.now()
    repository.record_red_packet_return(uow.connection, packet.id, returned_fen=returned, now=now)
    return get_red_packet(uow, packet.id)


def return_unclaimed_red_packets(uow: UnitOfWork, *, limit: int = MAX_RETURNS_PER_RUN) -> int:
    """The scheduled job: return the unclaimed money of every packet past `return_due_at`
    (a bounded batch per run); the number of packets returned."""
    due = repository.red_packets_due_for_return(uow.connection, now=uow.clock.now(), limit=limit)
    for packet_id in due:
        return_red_packet(uow, packet_id)
    return len(due)
