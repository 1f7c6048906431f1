"""The spool's operator actions (spool/admin.py, queue.cancel) on SQLite and PostgreSQL:
API keys listed, revoked and expiring, accounts disabled and deleted, messages listed and
cancelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from hub.errors import Conflict, NotFound
from hub.model import Account, Status, Transition
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


def test_api_key_expiry_is_stored_listed_changed_and_cleared(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    make_account("acme")
    spool.add_api_key("acme", "k1", b"d1", expires_at=NOW + timedelta(days=90))
    spool.add_api_key("acme", "k2", b"d2")
    assert spool.api_key("k1").expires_at == NOW + timedelta(days=90)  # type: ignore[union-attr]
    assert spool.api_key("k2").expires_at is None  # type: ignore[union-attr]
    changed = spool.set_api_key_expiry("acme", "k2", NOW)
    assert changed.expires_at == NOW
    assert spool.set_api_key_expiry("acme", "k1", None).expires_at is None
    assert [(k.key_id, k.expires_at) for k in spool.api_keys("acme")] == [
        ("k1", None), ("k2", NOW)]
    with pytest.raises(NotFound):
        spool.set_api_key_expiry("acme", "nosuchkey", NOW)


def test_account_with_unsent_messages_is_not_deleted_and_nothing_changes(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account("acme", credits="10", price="1")
    spool.add_api_key("acme", "k1", b"d1")
    queued, scheduled = new_message(account, cost="1"), new_message(account, cost="1",
                                                                       due_in=3600)
    spool.accept([queued, scheduled])
    refused = spool.delete_account("acme", False, NOW)
    assert not refused.deleted and (refused.unsent, refused.sending) == (2, 0)
    assert refused.account.deleted_at is None and refused.account.enabled
    assert spool.api_key("k1") is not None
    assert spool.get_message(queued.id).status is Status.ACCEPTED  # type: ignore[union-attr]


def test_account_being_sent_to_a_carrier_is_not_deleted_even_cancelling(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account("acme", credits="10", price="1")
    sending, queued = new_message(account, cost="1"), new_message(account, cost="1")
    spool.accept([sending])
    spool.claim("node", 1, 60, NOW)
    spool.accept([queued])
    refused = spool.delete_account("acme", True, NOW)
    assert not refused.deleted and (refused.unsent, refused.sending) == (0, 1)
    # All or nothing: the cancellation went back with the refusal.
    assert spool.get_message(queued.id).status is Status.ACCEPTED  # type: ignore[union-attr]
    assert spool.get_account("acme").balance == Decimal(8)


def test_deleted_account_is_a_tombstone_with_its_history_and_no_way_in(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account("acme", credits="10", price="1")
    spool.set_password_hash("acme", "$argon2id$fake")
    spool.add_api_key("acme", "k1", b"d1")
    spool.add_api_key("acme", "k2", b"d2")
    spool.revoke_api_key("acme", "k2", NOW - timedelta(days=1))
    settings = spool.get_mail_settings(account.id)
    spool.save_mail_settings(replace(settings, allowed_senders=("ops@acme.example",)))
    sent, queued = new_message(account, cost="1"), new_message(account, cost="1")
    spool.accept([sent])
    token = spool.claim("node", 1, 60, NOW).token
    spool.record(token, [Transition(sent.id, Status.SUBMITTED, "sim", carrier="sim",
                                    carrier_message_id="c1")], NOW)
    spool.accept([queued])

    done = spool.delete_account("acme", True, NOW)
    assert done.deleted and (done.keys_revoked, done.cancelled) == (1, 1)
    assert done.refunded == Decimal(1) and done.account.balance == Decimal(9)
    tomb = spool.get_account("acme")
    assert tomb.deleted_at == NOW and not tomb.enabled and not tomb.has_password
    assert spool.api_key("k1") is None and spool.password_hash("acme") is None
    assert spool.mail_sender_account("ops@acme.example") is None
    assert spool.get_message(sent.id) is not None  # history kept
    assert spool.events(queued.id)[-1].detail.endswith("the account was deleted")
    # Nothing gives a tombstone access again, and its name stays taken.
    for revive in (lambda: spool.add_api_key("acme", "k3", b"d3"),
                   lambda: spool.set_password_hash("acme", "$argon2id$fake"),
                   lambda: spool.set_enabled("acme", True),
                   lambda: spool.delete_account("acme", True, NOW),
                   lambda: make_account("acme")):
        with pytest.raises(Conflict):
            revive()


def test_messages_of_an_account_disabled_after_intake_read_it_are_refused(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    """Intake may hold the account from a credential cache: the commit checks again."""
    account = make_account("acme")
    other = make_account("other")
    spool.set_enabled("acme", False)
    late, fine = new_message(account), new_message(other)
    results = spool.accept([late, fine])
    assert results[0].account_disabled and results[0].message is None
    assert results[1].message is not None
    assert spool.get_message(late.id) is None
