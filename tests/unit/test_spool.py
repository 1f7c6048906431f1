"""Behaviour of the SQL spool on SQLite and PostgreSQL: schema, accounts, intake,
the dispatch queue, delivery reports and the maintenance sweeps."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hub.errors import Conflict, NotFound, Rejected, TemporaryFailure
from hub.model import (
    Accepted,
    Claim,
    DeliveryReport,
    ErrorInfo,
    NewMessage,
    Source,
    Status,
    Transition,
    UnknownOutcome,
)
from hub.ports import SchemaState
from spool import SqlSpool, migrate, open_spool, queue
from spool.tables import metadata
from tests.factories import NOW, make_account, new_message

LATER = NOW + timedelta(minutes=5)


def claim_all(spool: SqlSpool, now=NOW, owner="node-a", limit=100):
    return spool.claim(owner, limit, 60, now)


def submitted(message_id: str, carrier_id: str | None = None) -> Transition:
    return Transition(
        message_id, Status.SUBMITTED, carrier="sim", carrier_message_id=carrier_id or message_id
    )


# --- schema -----------------------------------------------------------------------


def test_new_database_is_empty_until_upgraded_then_current(spool_url: str) -> None:
    store = open_spool(spool_url)
    try:
        assert store.schema_state() is SchemaState.EMPTY
        store.upgrade()
        assert store.schema_state() is SchemaState.CURRENT
        store.upgrade()  # a second upgrade is a no-op
        assert store.schema_state() is SchemaState.CURRENT
    finally:
        store.close()


def test_head_names_the_newest_migration() -> None:
    """spool.migrate.HEAD answers for a current database without Alembic: a migration
    added without updating it fails here."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [migrate.HEAD]


def test_a_current_spool_is_placed_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spool.db'}"
    store = open_spool(url)
    store.upgrade()
    store.close()
    code = ("import sys; from spool import open_spool; s = open_spool(sys.argv[1]); "
            "print(s.schema_state().name, 'alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["CURRENT", "False"]


def test_database_stamped_by_an_older_revision_is_reported_outdated(spool: SqlSpool) -> None:
    with spool.db.write() as conn:
        conn.execute(sqlalchemy.text(
            "UPDATE alembic_version SET version_num = '0025_idempotency_location'"))
    assert spool.schema_state() is SchemaState.OUTDATED


def test_database_stamped_by_unknown_revision_is_reported_newer(spool: SqlSpool) -> None:
    with spool.db.write() as conn:
        conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    assert spool.schema_state() is SchemaState.NEWER


def test_migration_creates_exactly_the_tables_the_code_uses(spool: SqlSpool) -> None:
    with spool.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    if spool.db.is_sqlite:  # SQLite reflection drops the DESC of the claim index
        diffs = [d for d in diffs if d[1].name != "ix_messages_claim"]
    else:  # PostgreSQL drops the messages -> accounts key on purpose (migration 0008)
        assert [(d[0], d[1].parent.name, d[1].referred_table.name) for d in diffs
                if d[0] == "add_fk"] == [("add_fk", "messages", "accounts")]
        diffs = [d for d in diffs if d[0] != "add_fk"]
    assert diffs == []


def test_sqlite_spool_runs_in_wal_mode_with_full_sync_and_foreign_keys(sqlite_url: str) -> None:
    store = open_spool(sqlite_url, busy_timeout=2.5)
    try:
        with store.db.read() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        store.close()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 2500,
                       "foreign_keys": 1}


def test_sqlite_write_lock_held_elsewhere_is_a_temporary_failure(sqlite_url: str) -> None:
    store = open_spool(sqlite_url, busy_timeout=0.1)
    store.upgrade()
    make_account(store, "acme")
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(TemporaryFailure):
            store.add_credits("acme", Decimal(1))
        assert store.get_account("acme").balance == 100  # reads still work under WAL
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()


def test_unreachable_postgres_is_a_temporary_failure() -> None:
    store = open_spool("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    try:
        with pytest.raises(TemporaryFailure):
            store.ping()
    finally:
        store.close()


def test_ping_succeeds_on_a_reachable_spool(spool: SqlSpool) -> None:
    spool.ping()


# --- accounts ---------------------------------------------------------------------


def test_account_is_created_found_and_listed(spool: SqlSpool) -> None:
    made = spool.create_account("zeta", Decimal("12.5"), Decimal("0.0375"), ["ZED", "ACME"])
    spool.create_account("alpha", Decimal(0), Decimal("0.05"), [])
    assert made.balance == Decimal("12.5")
    assert made.price_per_segment == Decimal("0.0375")
    assert made.sender_ids == ("ACME", "ZED")
    assert made.enabled and not made.has_password
    assert spool.get_account("zeta") == made
    assert spool.get_account_by_id(made.id) == made
    assert [a.name for a in spool.list_accounts()] == ["alpha", "zeta"]


def test_account_name_taken_is_a_conflict_and_unknown_names_are_not_found(
    spool: SqlSpool,
) -> None:
    make_account(spool, "acme")
    with pytest.raises(Conflict):
        make_account(spool, "acme")
    with pytest.raises(NotFound):
        spool.get_account("nobody")
    with pytest.raises(NotFound):
        spool.get_account_by_id(999)
    with pytest.raises(NotFound):
        spool.add_credits("nobody", Decimal(1))
    with pytest.raises(NotFound):
        spool.set_password_hash("nobody", "x")
    with pytest.raises(NotFound):
        spool.add_api_key("nobody", "k", b"d")


def test_credits_may_be_taken_back_but_never_below_zero(spool: SqlSpool) -> None:
    make_account(spool, "acme", credits="10")
    assert spool.add_credits("acme", Decimal("2.5")).balance == Decimal("12.5")
    assert spool.add_credits("acme", Decimal("-12.5")).balance == 0
    with pytest.raises(Rejected) as refused:
        spool.add_credits("acme", Decimal("-0.0001"))
    assert refused.value.code == "insufficient_credit"
    assert spool.get_account("acme").balance == 0


def test_amounts_finer_than_a_ten_thousandth_are_refused(spool: SqlSpool) -> None:
    with pytest.raises(ValueError, match="4 decimal places"):
        spool.create_account("acme", Decimal("1.00001"), Decimal("0.05"), [])
    make_account(spool, "acme")
    with pytest.raises(ValueError):
        spool.add_credits("acme", Decimal("0.00005"))
    with pytest.raises(ValueError):
        spool.accept([new_message(spool.get_account("acme"), cost="0.12345")])


def test_password_hash_is_stored_and_returned_with_its_account(spool: SqlSpool) -> None:
    make_account(spool, "acme")
    assert spool.password_hash("acme") is None
    assert spool.password_hash("nobody") is None
    spool.set_password_hash("acme", "$argon2id$v=19$abc")
    account, hashed = spool.password_hash("acme") or (None, None)
    assert hashed == "$argon2id$v=19$abc"
    assert account is not None and account.has_password


def test_api_key_is_found_by_its_id_with_its_account(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    spool.add_api_key("acme", "key1", b"\x00digest\xff")
    record = spool.api_key("key1")
    assert record is not None
    assert record.account == acme and record.digest == b"\x00digest\xff"
    assert spool.api_key("unknown") is None
    with pytest.raises(Conflict):
        spool.add_api_key("acme", "key1", b"other")


# --- intake -----------------------------------------------------------------------


def test_accepted_group_is_stored_with_events_and_its_credit_reserved(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="1")
    now_msg = new_message(acme, cost="0.25", client_ref="a", batch_id="b1")
    later_msg = new_message(acme, cost="0.5", due_in=600)
    results = spool.accept([now_msg, later_msg])
    assert [r.message for r in results] == [now_msg, later_msg]
    assert spool.get_account("acme").balance == Decimal("0.25")
    stored = spool.get_message(now_msg.id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.cost) == (Status.ACCEPTED, 0, Decimal("0.25"))
    assert (stored.client_ref, stored.batch_id, stored.updated_at) == ("a", "b1", NOW)
    assert spool.get_message(later_msg.id).status is Status.SCHEDULED  # type: ignore[union-attr]
    assert [(e.status, e.detail) for e in spool.events(now_msg.id)] == [
        (Status.ACCEPTED, "accepted via rest"),
    ]
    [scheduled] = spool.events(later_msg.id)
    assert scheduled.status is Status.SCHEDULED and "scheduled for" in scheduled.detail
    assert scheduled.detail == f"accepted via rest; scheduled for {later_msg.due_at.isoformat()}"
    assert all(e.at == NOW for e in spool.events(later_msg.id))


def test_batch_outcomes_are_the_stored_messages_of_the_batch_after_a_line(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme", credits="10")
    made = [new_message(acme, batch_id="b1", batch_line=line, cost="0.5",
                        recipient=f"+2782123456{line}") for line in (2, 3, 5)]
    spool.accept([*made, new_message(acme, batch_id="b2", batch_line=4),
                  new_message(acme, batch_id="b1")])
    found = spool.batch_outcomes("b1", 2)
    assert sorted(found) == [3, 5]
    assert found[5] == Accepted(made[2].id, Status.ACCEPTED, 1, Decimal("0.5"),
                                recipient="+27821234565")
    assert spool.batch_outcomes("b1", 5) == {}


def test_duplicate_client_ref_returns_the_original_and_takes_no_credit(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="1")
    other = make_account(spool, "other")
    first = new_message(acme, client_ref="ref-1", cost="0.1")
    spool.accept([first])
    again = new_message(acme, client_ref="ref-1", cost="0.1", text="changed")
    twin_a = new_message(acme, client_ref="ref-2", cost="0.1")
    twin_b = new_message(acme, client_ref="ref-2", cost="0.1")
    elsewhere = new_message(other, client_ref="ref-1", cost="0.1")
    results = spool.accept([again, twin_a, twin_b, elsewhere])
    assert results[0].duplicate_of == spool.get_message(first.id)
    assert results[1].message == twin_a
    assert results[2].duplicate_of == spool.get_message(twin_a.id)
    assert results[3].message == elsewhere  # refs are per account
    assert spool.get_message(again.id) is None and spool.get_message(twin_b.id) is None
    assert spool.get_account("acme").balance == Decimal("0.8")


def test_insufficient_credit_refuses_only_the_messages_that_would_overdraw(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme", credits="1")
    group = [new_message(acme, cost=c) for c in ("0.6", "0.5", "0.4", "0.1")]
    results = spool.accept(group)
    assert results[0].message == group[0]
    assert results[1].insufficient_credit == Decimal("0.4")
    assert results[2].message == group[2]
    assert results[3].insufficient_credit == Decimal(0)
    assert spool.get_message(group[1].id) is None
    assert spool.get_account("acme").balance == 0


def test_refused_message_leaves_its_client_ref_free(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="0.1")
    poor = new_message(acme, cost="0.2", client_ref="r")
    cheap = new_message(acme, cost="0.1", client_ref="r")
    results = spool.accept([poor, cheap])
    assert results[0].insufficient_credit == Decimal("0.1")
    assert results[1].message == cheap


def test_accept_for_an_unknown_account_is_not_found(spool: SqlSpool) -> None:
    with pytest.raises(NotFound):
        spool.accept([new_message(424242)])


def test_totals_count_by_status_and_what_is_due(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    spool.accept([new_message(acme), new_message(acme), new_message(acme, due_in=60)])
    claim = spool.claim("n", 1, 60, NOW)
    assert len(claim.messages) == 1
    totals = spool.totals(NOW)
    assert totals.by_status == {Status.ACCEPTED: 1, Status.SENDING: 1, Status.SCHEDULED: 1}
    assert totals.due == 1
    assert spool.totals(NOW + timedelta(seconds=60)).due == 2


# --- claims and records -----------------------------------------------------------


def test_claim_takes_higher_priority_first_then_oldest_due(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    low_old = new_message(acme, accepted_at=NOW - timedelta(seconds=30))
    low_new = new_message(acme, accepted_at=NOW - timedelta(seconds=10))
    high = new_message(acme, priority=5, accepted_at=NOW - timedelta(seconds=1))
    future = new_message(acme, priority=9, due_in=60)
    spool.accept([low_new, future, high, low_old])
    claim = spool.claim("node-a", 10, 30, NOW)
    assert [m.id for m in claim.messages] == [high.id, low_old.id, low_new.id]
    assert claim.owner == "node-a" and claim.expires_at == NOW + timedelta(seconds=30)
    assert all((m.status, m.attempts) == (Status.SENDING, 1) for m in claim.messages)
    assert spool.events(high.id)[-1].detail == "attempt 1 by node-a"
    later = spool.claim("node-a", 10, 30, NOW + timedelta(seconds=60))
    assert [m.id for m in later.messages] == [future.id]


def test_claim_respects_the_limit_and_an_empty_queue_gives_an_empty_claim(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme")
    spool.accept([new_message(acme) for _ in range(3)])
    assert len(spool.claim("n", 2, 30, NOW).messages) == 2
    assert len(spool.claim("n", 2, 30, NOW).messages) == 1
    empty = spool.claim("n", 2, 30, NOW)
    assert empty.messages == () and empty.token


def test_messages_read_back_by_a_claim_are_the_messages_as_stored(spool: SqlSpool) -> None:
    # A claim reads its messages as the driver gives them (microseconds, units) and
    # converts each distinct time and cost once: they must come out as the typed read
    # of the same rows, every field, shared and distinct values, set and unset.
    acme = make_account(spool, "acme", credits="1000")
    full = new_message(acme, cost="0.1234", client_ref="ref-1", batch_id="b1",
                       expires_at=NOW + timedelta(hours=2), recipient="+27825550001",
                       accepted_at=NOW - timedelta(seconds=5))
    bare = new_message(acme, source=Source.SMTP, text="caf\u00e9 \u20ac",
                       accepted_at=NOW - timedelta(seconds=5))
    other = new_message(acme, cost="2", priority=3, accepted_at=NOW - timedelta(microseconds=7))
    spool.accept([full, bare, other])
    claim = spool.claim("node-a", 10, 30, NOW)
    assert {m.id for m in claim.messages} == {full.id, bare.id, other.id}
    for claimed in claim.messages:
        assert claimed == spool.get_message(claimed.id)
    assert next(m for m in claim.messages if m.id == full.id).cost == Decimal("0.1234")
    with spool.db.read() as conn:  # the same read without a lease (marketing holds)
        assert sorted(queue._by_ids(conn, [full.id, other.id]), key=lambda m: m.id) == sorted(
            (spool.get_message(full.id), spool.get_message(other.id)),
            key=lambda m: m.id if m else "")


def _three_accepted(spool: SqlSpool) -> list[NewMessage]:
    acme = make_account(spool, "acme")
    msgs = [new_message(acme) for _ in range(3)]
    spool.accept(msgs)
    return msgs


@contextmanager
def _reads_failing(spool: SqlSpool, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every read transaction of `spool` fails meanwhile, as on a disk that errs."""

    def unreadable() -> None:
        raise TemporaryFailure("disk I/O error")

    with monkeypatch.context() as patched:
        patched.setattr(spool.db, "read", unreadable)
        yield


@pytest.mark.parametrize(
    "spool_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_claim_not_read_back_puts_its_messages_back_unattempted(
    spool: SqlSpool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On PostgreSQL the claim commits its leases, then reads the messages outside the
    # write; if that read fails, nothing reached a carrier: lease recovery must not find
    # them later and take their outcome for unknown (failed, at most once).
    msgs = _three_accepted(spool)
    with _reads_failing(spool, monkeypatch), pytest.raises(TemporaryFailure):
        spool.claim("node-a", 10, 30, NOW)
    for msg in msgs:
        stored = spool.get_message(msg.id)
        assert stored is not None
        assert (stored.status, stored.attempts) == (Status.QUEUED, 0)
        assert spool.events(msg.id)[-1].detail == "claim not read back; due again"
    again = spool.claim("node-b", 10, 30, NOW)
    assert sorted(m.id for m in again.messages) == sorted(m.id for m in msgs)
    assert all(m.attempts == 1 for m in again.messages)


@pytest.mark.parametrize("spool_url", ["sqlite"], indirect=True)
def test_a_claim_on_sqlite_has_its_messages_back_from_its_own_write(
    spool: SqlSpool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SQLite's claim has its messages back whole from its UPDATE ... RETURNING: it reads
    # nothing after its commit, so a read that would fail cannot leave it half done, and
    # what it hands the dispatcher is what the spool holds.
    msgs = _three_accepted(spool)
    with _reads_failing(spool, monkeypatch):
        claimed = spool.claim("node-a", 10, 30, NOW)
    assert sorted(m.id for m in claimed.messages) == sorted(m.id for m in msgs)
    assert [spool.get_message(m.id) for m in claimed.messages] == list(claimed.messages)


def test_record_applies_submitted_then_a_report_finishes_the_message(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    msg = new_message(acme)
    spool.accept([msg])
    claim = claim_all(spool)
    assert spool.record(claim.token, [submitted(msg.id, "c-1")], LATER) == [msg.id]
    stored = spool.get_message(msg.id)
    assert stored is not None
    assert (stored.status, stored.carrier, stored.carrier_message_id) == (
        Status.SUBMITTED, "sim", "c-1")
    assert stored.submitted_at == LATER and stored.completed_at is None
    assert spool.totals(LATER).by_status == {Status.SUBMITTED: 1}


def _claimed_by_node_a(spool: SqlSpool) -> tuple[NewMessage, Claim]:
    """One message of acme's, claimed by node-a at NOW under a 30 s lease."""
    msg = new_message(make_account(spool, "acme"))
    spool.accept([msg])
    return msg, spool.claim("node-a", 10, 30, NOW)


def test_stale_lease_holder_changes_nothing_after_its_lease_is_recovered(
    spool: SqlSpool,
) -> None:
    msg, stale = _claimed_by_node_a(spool)
    assert spool.recover_expired_leases(NOW + timedelta(seconds=31)) == 1
    assert spool.events(msg.id)[-1].detail == (
        "outcome unknown: lease of node-a expired; sent again")
    assert spool.record(stale.token, [submitted(msg.id)], LATER) == []
    fresh = spool.claim("node-b", 10, 30, LATER)
    assert fresh.messages[0].attempts == 2  # recovery does not give the attempt back
    assert spool.record(stale.token, [submitted(msg.id)], LATER) == []
    assert spool.record(fresh.token, [submitted(msg.id)], LATER) == [msg.id]
    assert spool.record(fresh.token, [submitted(msg.id)], LATER) == []  # lease is over


def test_expired_leases_still_held_by_their_dispatcher_are_not_recovered(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme")
    spool.accept([new_message(acme), new_message(acme)])
    working = spool.claim("node-a", 1, 30, NOW)  # being submitted: the clock jumped
    gone = spool.claim("node-a", 1, 30, NOW)  # its task ended without recording
    an_hour_on = NOW + timedelta(hours=1)
    assert spool.recover_expired_leases(an_hour_on, {working.token}) == 1
    assert spool.get_message(gone.messages[0].id).status is Status.QUEUED  # type: ignore[union-attr]
    assert spool.record(working.token, [submitted(working.messages[0].id)], an_hour_on) == [
        working.messages[0].id]


def test_unexpired_leases_are_not_recovered(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    spool.accept([new_message(acme)])
    claim_all(spool)
    assert spool.recover_expired_leases(NOW + timedelta(seconds=59)) == 0


def test_retry_requeues_the_message_until_its_new_due_time(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    msg = new_message(acme)
    spool.accept([msg])
    retry_at = NOW + timedelta(seconds=20)
    throttled = ErrorInfo("throttled", "carrier queue full")
    claim = claim_all(spool)
    retry = Transition(msg.id, Status.QUEUED, error=throttled, due_at=retry_at)
    assert spool.record(claim.token, [retry], NOW) == [msg.id]
    stored = spool.get_message(msg.id)
    assert stored is not None
    assert (stored.status, stored.due_at, stored.error) == (Status.QUEUED, retry_at, throttled)
    assert spool.events(msg.id)[-1].detail == "throttled: carrier queue full"
    assert spool.claim("n", 10, 60, retry_at - timedelta(seconds=1)).messages == ()
    assert [m.attempts for m in spool.claim("n", 10, 60, retry_at).messages] == [2]


def test_retry_without_a_due_time_is_refused(spool: SqlSpool) -> None:
    with pytest.raises(ValueError, match="due_at"):
        spool.record("token", [Transition("x", Status.QUEUED)], NOW)


def test_refund_on_a_transition_gives_the_credit_back(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="1")
    kept, refunded = new_message(acme, cost="0.3"), new_message(acme, cost="0.2")
    spool.accept([kept, refunded])
    claim = claim_all(spool)
    bad = ErrorInfo("invalid_destination", "no such number")
    spool.record(claim.token, [
        Transition(kept.id, Status.REJECTED, error=bad),
        Transition(refunded.id, Status.REJECTED, error=bad, refund=True),
    ], LATER)
    assert spool.get_account("acme").balance == Decimal("0.7")
    stored = spool.get_message(refunded.id)
    assert stored is not None and stored.completed_at == LATER and stored.error == bad


def test_release_requeues_the_owners_messages_without_counting_the_attempt(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme")
    mine, theirs = new_message(acme, priority=1), new_message(acme)
    spool.accept([mine, theirs])
    spool.claim("node-a", 1, 60, NOW)
    spool.claim("node-b", 1, 60, NOW)
    assert spool.release("node-a", LATER) == 1
    released = spool.get_message(mine.id)
    assert released is not None
    assert (released.status, released.attempts, released.due_at) == (Status.QUEUED, 0, LATER)
    assert spool.events(mine.id)[-1].detail == "released by node-a"
    assert spool.get_message(theirs.id).status is Status.SENDING  # type: ignore[union-attr]


def test_after_a_crash_a_node_takes_its_messages_back_as_of_unknown_outcome(
    spool: SqlSpool,
) -> None:
    """P7: what a node held when it died may have reached its carrier. Taken back at its
    start: sent again with the attempt counted ("resend"), or ended failed as
    outcome_unknown, charged and never claimed again ("fail"); the history says which."""
    acme = make_account(spool, "acme", credits="10")
    again, ended = new_message(acme, priority=1, cost="0.25"), new_message(acme, cost="0.25")
    spool.accept([again, ended])
    spool.claim("node-a", 1, 60, NOW)
    assert spool.release("node-a", LATER, after_crash=True) == 1
    resent = spool.get_message(again.id)
    assert resent is not None
    assert (resent.status, resent.attempts, resent.due_at) == (Status.QUEUED, 1, LATER)
    assert spool.events(again.id)[-1].detail == (
        "outcome unknown: node-a stopped before its carrier's answer was recorded; "
        "sent again")
    assert len(spool.claim("node-a", 10, 60, LATER).messages) == 2
    assert spool.release("node-a", LATER, after_crash=True,
                         unknown=UnknownOutcome.FAIL) == 2
    for m in (again, ended):
        failed = spool.get_message(m.id)
        assert failed is not None and failed.status is Status.FAILED
        assert failed.error is not None and failed.error.code == "outcome_unknown"
        assert "not sent again" in failed.error.text and failed.completed_at == LATER
        assert spool.events(m.id)[-1].status is Status.FAILED
    assert spool.get_account("acme").balance == Decimal("9.50")  # both still charged
    assert spool.claim("node-b", 10, 60, LATER).messages == ()


def test_an_expired_lease_under_fail_ends_its_messages_as_of_unknown_outcome(
    spool: SqlSpool,
) -> None:
    msg, stale = _claimed_by_node_a(spool)
    later = NOW + timedelta(seconds=31)
    assert spool.recover_expired_leases(later, unknown=UnknownOutcome.FAIL) == 1
    failed = spool.get_message(msg.id)
    assert failed is not None and failed.status is Status.FAILED
    assert failed.error is not None and failed.error.code == "outcome_unknown"
    assert "lease of node-a expired" in failed.error.text
    assert spool.record(stale.token, [submitted(msg.id)], LATER) == []  # too late
    assert spool.claim("node-b", 10, 30, LATER).messages == ()


# --- reports ----------------------------------------------------------------------


def test_reports_finish_matched_messages_and_return_the_unmatched(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    ok, lost = new_message(acme), new_message(acme)
    spool.accept([ok, lost])
    claim = claim_all(spool)
    spool.record(claim.token, [submitted(ok.id, "c-ok"), submitted(lost.id, "c-lost")], NOW)
    gone = ErrorInfo("absent", "handset off")
    unknown = DeliveryReport("sim", "c-unknown", Status.DELIVERED, NOW)
    reports = [
        DeliveryReport("sim", "c-ok", Status.SUBMITTED, NOW, detail="ENROUTE"),
        DeliveryReport("sim", "c-ok", Status.DELIVERED, NOW, detail="DELIVRD"),
        DeliveryReport("sim", "c-lost", Status.UNDELIVERED, NOW, error=gone),
        DeliveryReport("other", "c-ok", Status.DELIVERED, NOW),
        unknown,
    ]
    unmatched = spool.apply_reports(reports, LATER)
    assert [r.carrier_message_id for r in unmatched] == ["c-ok", "c-unknown"]
    delivered = spool.get_message(ok.id)
    assert delivered is not None
    assert (delivered.status, delivered.completed_at) == (Status.DELIVERED, LATER)
    assert [(e.status, e.detail) for e in spool.events(ok.id)[-2:]] == [
        (Status.SUBMITTED, "ENROUTE"), (Status.DELIVERED, "DELIVRD")]
    failed = spool.get_message(lost.id)
    assert failed is not None and (failed.status, failed.error) == (Status.UNDELIVERED, gone)


def test_repeated_final_report_is_ignored_and_not_unmatched(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    msg = new_message(acme)
    spool.accept([msg])
    spool.record(claim_all(spool).token, [submitted(msg.id, "c-1")], NOW)
    report = DeliveryReport("sim", "c-1", Status.DELIVERED, NOW)
    assert spool.apply_reports([report, report], NOW) == []
    events_before = spool.events(msg.id)
    late = DeliveryReport("sim", "c-1", Status.UNDELIVERED, LATER)
    assert spool.apply_reports([late], LATER) == []
    assert spool.get_message(msg.id).status is Status.DELIVERED  # type: ignore[union-attr]
    assert spool.events(msg.id) == events_before
    assert [e.status for e in events_before].count(Status.DELIVERED) == 1


# --- sweeps -----------------------------------------------------------------------


def test_expired_validity_ends_unsent_messages_and_refunds_them(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="1")
    short = new_message(acme, cost="0.25", expires_at=NOW + timedelta(seconds=10))
    scheduled = new_message(acme, cost="0.25", due_in=60, expires_at=NOW + timedelta(seconds=10))
    lasting = new_message(acme, cost="0.25", expires_at=NOW + timedelta(hours=1))
    spool.accept([short, scheduled, lasting])
    assert spool.expire_due(NOW + timedelta(seconds=10)) == 0
    assert spool.expire_due(NOW + timedelta(seconds=11)) == 2
    expired = spool.get_message(short.id)
    assert expired is not None and expired.status is Status.EXPIRED
    assert expired.error is not None and expired.error.code == "expired"
    assert spool.get_message(lasting.id).status is Status.ACCEPTED  # type: ignore[union-attr]
    assert spool.get_account("acme").balance == Decimal("0.75")
    assert spool.events(short.id)[-1].status is Status.EXPIRED


def test_dead_letter_fails_old_retried_messages_and_refunds_them(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="1")
    old = new_message(acme, cost="0.5", accepted_at=NOW - timedelta(days=2))
    never_tried = new_message(acme, cost="0.25", accepted_at=NOW - timedelta(days=2))
    spool.accept([old, never_tried])
    claim = spool.claim("n", 1, 60, NOW)
    spool.record(claim.token, [Transition(old.id, Status.QUEUED, due_at=NOW)], NOW)
    assert spool.dead_letter(NOW - timedelta(days=1), LATER) == 1
    dead = spool.get_message(old.id)
    assert dead is not None
    assert (dead.status, dead.completed_at) == (Status.FAILED, LATER)
    assert dead.error == ErrorInfo("too_old", "gave up retrying after the maximum age")
    assert spool.get_message(never_tried.id).status is Status.ACCEPTED  # type: ignore[union-attr]
    assert spool.get_account("acme").balance == Decimal("0.75")


def test_sweeps_handle_more_rows_than_one_chunk(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="2000")
    expiry = NOW + timedelta(seconds=1)
    spool.accept([new_message(acme, cost="1", expires_at=expiry) for _ in range(1203)])
    assert spool.expire_due(LATER) == 1203
    assert spool.get_account("acme").balance == 2000
    assert spool.totals(LATER).by_status == {Status.EXPIRED: 1203}


# --- concurrency (PostgreSQL) -----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_two_claimers_on_postgres_never_take_the_same_message(pg_url: str) -> None:
    setup = open_spool(pg_url)
    setup.upgrade()
    acme = make_account(setup, "acme", credits="10000")
    for _ in range(5):
        setup.accept([new_message(acme, cost="0.01") for _ in range(1000)])
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def dispatcher(owner: str) -> None:
        store = open_spool(pg_url)
        mine = claimed.setdefault(owner, [])
        try:
            start.wait()
            while (claim := store.claim(owner, 100, 60, NOW)).messages:
                ids = [m.id for m in claim.messages]
                mine.extend(ids)
                assert store.record(claim.token, [submitted(i) for i in ids], NOW) == ids
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=dispatcher, args=(o,)) for o in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        counts = Counter(claimed["a"] + claimed["b"])
        assert len(counts) == 5000 and set(counts.values()) == {1}
        assert claimed["a"] and claimed["b"]  # both really took part
        assert setup.totals(NOW).by_status == {Status.SUBMITTED: 5000}
    finally:
        setup.close()


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    store = open_spool(f"sqlite:///{tmp_path / 'a' / 'b' / 'spool.db'}")
    try:
        store.upgrade()
    finally:
        store.close()
    assert (tmp_path / "a" / "b" / "spool.db").is_file()


def test_sqlite_spool_and_its_wal_files_are_private_to_the_hub_user(tmp_path: Path) -> None:
    store = open_spool(f"sqlite:///{tmp_path / 'var' / 'spool.db'}")
    try:
        store.upgrade()
        files = sorted((tmp_path / "var").iterdir())
        # spool.db.write and .queue: the writers' turn (spool.engine._Writers), private too
        assert [f.name for f in files] == ["spool.db", "spool.db-shm", "spool.db-wal",
                                          "spool.db.queue", "spool.db.write"]
        for path in files:
            assert path.stat().st_mode & 0o777 == 0o600, path
    finally:
        store.close()
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
