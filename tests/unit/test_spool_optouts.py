"""Opt-out lists in the spool, on SQLite and PostgreSQL: a STOP joins its account's list
in the transaction that stores it, intake's commit refuses what the lists forbid, and
the lists are added to, paged and removed from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ulid import ULID

from hub.model import Account, InboundMessage, MessageClass, NewInbound, NewMessage, Source
from hub.optouts import NewOptOut, OptOutMethod, OptOutScope, OptOutSettings
from spool import SqlSpool
from tests.factories import NOW, make_account, new_message

HANDSET = "+27821234567"


def stop(spool: SqlSpool, text: str = "STOP", carrier_id: str | None = "mo-1") -> str:
    item = NewInbound(str(ULID()), InboundMessage("sim", HANDSET, "31337", text,
                                                  NOW + timedelta(minutes=1), carrier_id),
                      opt_out=text == "STOP")
    return spool.store_inbound([item])[0].id


# A Wednesday noon in the hub's zone: inside CPA marketing hours (NOW is a Saturday
# afternoon, when the spool would hold them; tests/unit/test_spool_cpa.py tests that).
IN_HOURS = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)


def marketing(account: Account, **kwargs: object) -> NewMessage:
    kwargs.setdefault("accepted_at", IN_HOURS)
    return replace(new_message(account, recipient=HANDSET, **kwargs),  # type: ignore[arg-type]
                   message_class=MessageClass.MARKETING)


def codes(spool: SqlSpool, *group: NewMessage) -> list[str | None]:
    return [None if c.message is not None else c.barred for c in spool.accept(list(group))]


def test_a_stop_puts_the_number_on_its_accounts_list_once(spool: SqlSpool) -> None:
    account = make_account(spool)
    spool.accept([new_message(account, recipient=HANDSET)])
    inbound_id = stop(spool)
    assert stop(spool) == inbound_id  # redelivered by the carrier: stored once
    [optout] = spool.list_optouts(account.id, 0, 10)
    assert (optout.number, optout.method, optout.inbound_id) == (
        HANDSET, OptOutMethod.REPLY, inbound_id)
    assert spool.list_optouts(None, 0, 10) == []  # the global list is the operator's


def test_a_stop_answering_no_message_joins_no_list(spool: SqlSpool) -> None:
    account = make_account(spool)
    stop(spool)
    assert spool.list_optouts(account.id, 0, 10) == []


def test_a_stop_to_an_accounts_own_number_stops_it_without_a_recent_message(
    spool: SqlSpool,
) -> None:
    account = make_account(spool, sender_ids=("31337",))
    inbound_id = stop(spool)
    [optout] = spool.list_optouts(account.id, 0, 10)
    assert optout.inbound_id == inbound_id
    stored = spool.get_inbound(inbound_id)
    assert stored is not None and (stored.account_id, stored.in_reply_to) == (account.id, None)


def test_a_stop_to_a_number_several_accounts_send_from_stops_none(spool: SqlSpool) -> None:
    first = make_account(spool, sender_ids=("31337",))
    second = make_account(spool, sender_ids=("+31337",))
    inbound_id = stop(spool)
    assert spool.list_optouts(first.id, 0, 10) == spool.list_optouts(second.id, 0, 10) == []
    stored = spool.get_inbound(inbound_id)
    assert stored is not None and stored.account_id is None


def test_marketing_to_an_opted_out_number_is_refused_and_transactional_passes(
    spool: SqlSpool,
) -> None:
    account, other = make_account(spool), make_account(spool)
    spool.add_optout(NewOptOut(account.id, HANDSET, OptOutMethod.API, NOW))
    elsewhere = replace(marketing(account), recipient="+27831234567")
    assert codes(spool, marketing(account), new_message(account, recipient=HANDSET),
                 marketing(other), elsewhere) == ["opted_out", None, None, None]
    cost = new_message(account).cost
    # Nothing is charged for the refused message.
    assert spool.get_account_by_id(account.id).balance == account.balance - 2 * cost


def test_scope_all_refuses_transactional_too_but_not_the_hubs_confirmation(
    spool: SqlSpool,
) -> None:
    account = make_account(spool)
    spool.add_optout(NewOptOut(account.id, HANDSET, OptOutMethod.CLI, NOW))
    spool.save_optout_settings(OptOutSettings(account.id, OptOutScope.ALL))
    assert spool.optout_settings(account.id).scope is OptOutScope.ALL
    confirmation = new_message(account, recipient=HANDSET, source=Source.HUB)
    assert codes(spool, new_message(account, recipient=HANDSET), confirmation) == [
        "opted_out", None]


def test_the_global_block_list_refuses_every_class_of_every_account(spool: SqlSpool) -> None:
    account = make_account(spool)
    spool.add_optout(NewOptOut(None, HANDSET, OptOutMethod.CLI, NOW, "fraud"))
    assert codes(spool, new_message(account, recipient=HANDSET), marketing(account),
                 new_message(account, recipient=HANDSET, source=Source.HUB)) == [
        "blocked", "blocked", "blocked"]


def test_a_duplicate_client_ref_is_answered_before_the_list(spool: SqlSpool) -> None:
    account = make_account(spool)
    first = marketing(account, client_ref="r1")
    spool.accept([first])
    spool.add_optout(NewOptOut(account.id, HANDSET, OptOutMethod.API, NOW))
    [again] = spool.accept([marketing(account, client_ref="r1")])
    assert again.duplicate_of is not None and again.duplicate_of.id == first.id


def test_lists_are_added_to_once_paged_and_removed_from(spool: SqlSpool) -> None:
    account = make_account(spool)
    numbers = [f"+2782000000{i}" for i in range(5)]
    for number in numbers:
        spool.add_optout(NewOptOut(account.id, number, OptOutMethod.IMPORT, NOW, "list"))
    entry, created = spool.add_optout(NewOptOut(account.id, numbers[0], OptOutMethod.API, NOW))
    assert not created and entry.method is OptOutMethod.IMPORT  # the first one stays
    first = spool.list_optouts(account.id, 0, 3)
    rest = spool.list_optouts(account.id, first[-1].id, 3)
    assert [o.number for o in first + rest] == numbers
    assert spool.remove_optout(account.id, numbers[1])
    assert not spool.remove_optout(account.id, numbers[1])
    assert not spool.remove_optout(None, numbers[2])  # not on the global list
    assert spool.get_optout(account.id, numbers[1]) is None
    assert spool.get_optout(account.id, numbers[2]) is not None


def test_a_new_opt_out_cancels_what_it_would_refuse_that_is_not_sent_yet(
    spool: SqlSpool,
) -> None:
    account, other = make_account(spool), make_account(spool)
    campaign = marketing(account, due_in=3600)  # scheduled for later
    queued = marketing(account)
    receipt = new_message(account, recipient=HANDSET)  # transactional: still goes
    theirs = marketing(other)
    spool.accept([campaign, queued, receipt, theirs])
    balance = spool.get_account_by_id(account.id).balance
    spool.add_optout(NewOptOut(account.id, HANDSET, OptOutMethod.API, NOW + timedelta(1)))
    assert [ending(spool, nm) for nm in (campaign, queued, receipt, theirs)] == [
        ("cancelled", "opted_out"), ("cancelled", "opted_out"), ("accepted", None),
        ("accepted", None)]
    refunded = spool.get_account_by_id(account.id).balance - balance
    assert refunded == campaign.cost + queued.cost
    spool.add_optout(NewOptOut(None, HANDSET, OptOutMethod.CLI, NOW + timedelta(1)))
    assert [ending(spool, nm) for nm in (receipt, theirs)] == [("cancelled", "blocked")] * 2


def ending(spool: SqlSpool, nm: NewMessage) -> tuple[str, str | None]:
    found = spool.get_message(nm.id)
    assert found is not None
    return found.status.value, None if found.error is None else found.error.code


def test_an_import_adds_only_the_numbers_not_listed_yet(spool: SqlSpool) -> None:
    account = make_account(spool)
    spool.add_optout(NewOptOut(account.id, "+27820000001", OptOutMethod.API, NOW))
    entries = [NewOptOut(account.id, f"+2782000000{i}", OptOutMethod.IMPORT, NOW, "registry")
               for i in range(5)]
    assert spool.add_optouts(entries) == 4
    assert spool.add_optouts(entries) == 0
    methods = [o.method for o in spool.list_optouts(account.id, 0, 10)]
    assert methods == [OptOutMethod.API] + [OptOutMethod.IMPORT] * 4


def test_confirmations_are_due_only_for_accounts_that_want_them(spool: SqlSpool) -> None:
    account = make_account(spool)
    spool.accept([new_message(account, recipient=HANDSET)])
    inbound_id = stop(spool)
    assert spool.optout_confirmations_due([inbound_id]) == []
    spool.save_optout_settings(OptOutSettings(account.id, confirm=True))
    [due] = spool.optout_confirmations_due([inbound_id])
    assert due.inbound_id == inbound_id and due.account_id == account.id


def test_inbound_pages_follow_the_order_received(spool: SqlSpool) -> None:
    account = make_account(spool)
    spool.accept([new_message(account, recipient=HANDSET)])
    for i in range(5):
        spool.store_inbound([NewInbound(str(ULID()), InboundMessage(
            "sim", HANDSET, "31337", f"r{i}", NOW + timedelta(minutes=1, seconds=i // 2)),
            False)])
    first = spool.inbound_page(account.id, None, None, 2)
    after = (first[-1].received_at, first[-1].id)
    rest = spool.inbound_page(account.id, None, after, 10)
    assert [m.text for m in first + rest] == [f"r{i}" for i in range(5)]
    since = spool.inbound_page(account.id, NOW + timedelta(minutes=1, seconds=1), None, 10)
    assert [m.text for m in since] == ["r2", "r3", "r4"]
