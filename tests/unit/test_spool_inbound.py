"""Inbound messages and the outbox in the spool, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ulid import ULID

from hub.model import (
    Account,
    InboundKind,
    InboundMessage,
    NewInbound,
    NewMessage,
    NewOutboxItem,
    OutboxResult,
    OutboxStatus,
)
from spool import SqlSpool
from tests.factories import NOW, make_account, new_message


def mo(sender: str = "+27821234567", text: str = "yes please", ref: str | None = "mo-1",
       minutes: int = 5) -> InboundMessage:
    return InboundMessage("simulator", sender, "31337", text, NOW + timedelta(minutes=minutes),
                          carrier_message_id=ref)


def new(message: InboundMessage, opt_out: bool = False) -> NewInbound:
    return NewInbound(str(ULID()), message, opt_out)


def test_a_reply_is_linked_to_the_latest_message_sent_to_its_sender(spool: SqlSpool) -> None:
    account = make_account(spool)
    older = new_message(account, accepted_at=NOW - timedelta(hours=1))
    latest = new_message(account, accepted_at=NOW)
    other = new_message(account, accepted_at=NOW, recipient="+27831234567")
    spool.accept([older, latest, other])
    [stored] = spool.store_inbound([new(mo())])
    assert stored.kind is InboundKind.REPLY
    assert (stored.in_reply_to, stored.account_id) == (latest.id, account.id)
    assert spool.get_inbound(stored.id) == stored
    assert spool.list_inbound(account.id, None, 10) == [stored]


def test_a_message_from_a_stranger_is_unsolicited(spool: SqlSpool) -> None:
    [stored] = spool.store_inbound([new(mo(sender="+27839999999"))])
    assert stored.kind is InboundKind.UNSOLICITED and stored.in_reply_to is None


def test_an_opt_out_is_kept_as_such(spool: SqlSpool) -> None:
    account = make_account(spool)
    spool.accept([new_message(account)])
    [stored] = spool.store_inbound([new(mo(text="STOP"), opt_out=True)])
    assert stored.kind is InboundKind.OPT_OUT and stored.account_id == account.id


def test_a_redelivered_message_is_stored_once(spool: SqlSpool) -> None:
    first = spool.store_inbound([new(mo(ref="dup"))])[0]
    again = spool.store_inbound([new(mo(ref="dup"))])[0]
    assert again == first
    assert len(spool.unrouted_inbound(10)) == 1


def test_routing_is_atomic_and_happens_once(spool: SqlSpool) -> None:
    [stored] = spool.store_inbound([new(mo())])
    item = NewOutboxItem(str(ULID()), "email", None, "a@example.com", inbound_id=stored.id)
    spool.route_inbound([stored.id], [item], NOW)
    assert spool.unrouted_inbound(10) == []
    twin = NewOutboxItem(str(ULID()), "email", None, "a@example.com", inbound_id=stored.id)
    spool.route_inbound([stored.id], [twin], NOW)  # a second router lost the race
    assert spool.get_outbox(twin.id) is None
    claimed = spool.claim_outbox("email", 10, 60, NOW)
    assert [c.id for c in claimed] == [item.id]


def test_outbox_items_retry_and_a_stale_lease_cannot_record(spool: SqlSpool) -> None:
    [stored] = spool.store_inbound([new(mo())])
    item = NewOutboxItem(str(ULID()), "email", None, "a@example.com", inbound_id=stored.id)
    spool.route_inbound([stored.id], [item], NOW)
    [first] = spool.claim_outbox("email", 10, 1, NOW)
    assert first.attempts == 1 and spool.claim_outbox("email", 10, 1, NOW) == []
    # The lease runs out; another runner takes it over; the first can no longer record.
    [second] = spool.claim_outbox("email", 10, 60, NOW + timedelta(seconds=2))
    assert second.attempts == 2
    assert spool.record_outbox(first.lease_token or "", [
        OutboxResult(item.id, OutboxStatus.SENT)], NOW) == []
    later = NOW + timedelta(minutes=1)
    retry = OutboxResult(item.id, OutboxStatus.PENDING, due_at=later)
    assert spool.record_outbox(second.lease_token or "", [retry], NOW) == [item.id]
    assert spool.claim_outbox("email", 10, 60, NOW + timedelta(seconds=30)) == []
    [third] = spool.claim_outbox("email", 10, 60, later)
    spool.record_outbox(third.lease_token or "", [OutboxResult(item.id, OutboxStatus.SENT)], NOW)
    done = spool.get_outbox(item.id)
    assert done is not None and done.status is OutboxStatus.SENT and done.attempts == 3


def sent_from(account: Account, sender: str | None, minutes: int = 0) -> NewMessage:
    return replace(new_message(account, accepted_at=NOW + timedelta(minutes=minutes)),
                   sender=sender)


def to(number: str, text: str, minutes: int = 5) -> InboundMessage:
    return InboundMessage("simulator", "+27821234567", number, text,
                          NOW + timedelta(minutes=minutes))


def test_each_account_gets_the_replies_to_the_number_it_sent_from(spool: SqlSpool) -> None:
    # B texted the handset last, but the handset answers A's number.
    a, b = make_account(spool), make_account(spool)
    from_a, from_b = sent_from(a, "+27830000001"), sent_from(b, "27830000002", minutes=1)
    spool.accept([from_a, from_b])
    [for_a, for_b] = spool.store_inbound([new(to("27830000001", "yes A")),
                                          new(to("+27830000002", "yes B"))])
    assert (for_a.account_id, for_a.in_reply_to) == (a.id, from_a.id)
    assert (for_b.account_id, for_b.in_reply_to) == (b.id, from_b.id)
    assert [m.text for m in spool.list_inbound(a.id, None, 10)] == ["yes A"]
    assert [m.text for m in spool.list_inbound(b.id, None, 10)] == ["yes B"]


def test_a_reply_to_a_number_two_accounts_sent_from_is_stored_unlinked(
    spool: SqlSpool,
) -> None:
    a, b = make_account(spool), make_account(spool)
    spool.accept([sent_from(a, "31337"), sent_from(b, None, minutes=1)])
    [stored] = spool.store_inbound([new(to("31337", "which of you?"))])
    assert stored.kind is InboundKind.REPLY
    assert (stored.account_id, stored.in_reply_to) == (None, None)
    assert spool.list_inbound(a.id, None, 10) == spool.list_inbound(b.id, None, 10) == []


def test_a_reply_links_to_no_message_sent_from_another_number_or_long_ago(
    spool: SqlSpool,
) -> None:
    a = make_account(spool)
    spool.accept([sent_from(a, "+27830000001"), sent_from(a, None, minutes=-8 * 24 * 60)])
    [stored] = spool.store_inbound([new(to("31337", "hello?"))])
    assert stored.kind is InboundKind.UNSOLICITED and stored.account_id is None
