"""The spool's operator actions (spool/admin.py, queue.cancel) on SQLite and PostgreSQL:
API keys listed and revoked, accounts disabled, messages listed and cancelled."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from hub.errors import NotFound
from hub.model import Account, Status
from hub.ports import MessageFilter
from spool import SqlSpool
from tests.factories import NOW, new_message


def test_revoked_api_key_no_longer_authenticates_and_lists_as_revoked(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    make_account("acme")
    spool.add_api_key("acme", "k1", b"d1")
    spool.add_api_key("acme", "k2", b"d2")
    first = spool.revoke_api_key("acme", "k1", NOW)
    assert first.revoked_at == NOW
    assert spool.revoke_api_key("acme", "k1", NOW + timedelta(hours=1)).revoked_at == NOW
    assert spool.api_key("k1") is None and spool.api_key("k2") is not None
    assert [(k.key_id, k.revoked_at) for k in spool.api_keys("acme")] == [
        ("k1", NOW), ("k2", None)]
    make_account("other")
    with pytest.raises(NotFound):
        spool.revoke_api_key("other", "k2", NOW)  # not its key


def test_disabled_account_is_stored_disabled_and_enabled_again(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    make_account("acme")
    assert spool.set_enabled("acme", False).enabled is False
    assert spool.get_account("acme").enabled is False
    assert spool.set_enabled("acme", True).enabled is True


def test_cancel_ends_unsent_messages_refunded_and_leaves_one_being_sent(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account("acme", credits="10", price="1")
    sending, queued, scheduled = (new_message(account, cost="1", due_in=d)
                                  for d in (0, 0, 3600))
    spool.accept([sending])
    spool.claim("node", 1, 60, NOW)  # `sending` is leased now
    spool.accept([queued, scheduled])
    assert spool.get_account("acme").balance == Decimal(7)
    assert spool.cancel([sending.id, queued.id, scheduled.id], None, NOW) == 2
    statuses = {i: spool.get_message(i).status  # type: ignore[union-attr]
                for i in (sending.id, queued.id, scheduled.id)}
    assert statuses == {sending.id: Status.SENDING, queued.id: Status.CANCELLED,
                        scheduled.id: Status.CANCELLED}
    assert spool.get_account("acme").balance == Decimal(9)
    assert spool.events(queued.id)[-1].status is Status.CANCELLED


def test_cancel_by_account_takes_only_that_accounts_messages(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    acme, other = make_account("acme"), make_account("other")
    mine, theirs = new_message(acme), new_message(other)
    spool.accept([mine, theirs])
    assert spool.cancel([], acme.id, NOW) == 1
    assert spool.get_message(theirs.id).status is Status.ACCEPTED  # type: ignore[union-attr]


def test_message_list_filters_by_account_status_and_time_newest_first(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    acme, other = make_account("acme"), make_account("other")
    old = new_message(acme, accepted_at=NOW - timedelta(days=2))
    new, later = new_message(acme), new_message(acme, due_in=3600)
    spool.accept([old, new, later, new_message(other)])

    def ids(**query: object) -> list[str]:
        return [m.id for m in spool.list_messages(MessageFilter(**query))]  # type: ignore[arg-type]

    assert set(ids(account_id=acme.id)) == {old.id, new.id, later.id}
    assert ids(account_id=acme.id, status=Status.SCHEDULED) == [later.id]
    assert set(ids(account_id=acme.id, since=NOW - timedelta(hours=1))) == {new.id, later.id}
    assert ids(account_id=acme.id, limit=1) != [old.id]  # newest first
    assert len(ids()) == 4
