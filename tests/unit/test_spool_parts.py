"""A message sent in parts: each part's receipt is matched by its own carrier id, and the
message ends by the rule over its parts (spool/reports.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from hub.model import DeliveryReport, ErrorInfo, Status, Transition
from spool import SqlSpool, reports
from tests.factories import NOW, make_account, new_message

LATER = NOW + timedelta(minutes=5)


def _sent_in_parts(spool: SqlSpool, *part_ids: str) -> str:
    acme = make_account(spool, "acme")
    msg = new_message(acme)
    spool.accept([msg])
    claim = spool.claim("node-a", 10, 60, NOW)
    done = spool.record(claim.token, [Transition(
        msg.id, Status.SUBMITTED, carrier="smsc", carrier_message_id=part_ids[0],
        part_ids=part_ids)], NOW)
    assert done == [msg.id]
    return msg.id


def _report(carrier_id: str, status: Status, error: ErrorInfo | None = None
            ) -> DeliveryReport:
    return DeliveryReport("smsc", carrier_id, status, LATER, error=error)


def test_a_message_in_parts_is_delivered_only_when_every_part_is(spool: SqlSpool) -> None:
    message_id = _sent_in_parts(spool, "p1", "p2", "p3")
    # The first part's id is also the message's carrier id: it must not finish it alone.
    assert spool.apply_reports([_report("p1", Status.DELIVERED)], LATER) == []
    assert spool.get_message(message_id).status is Status.SUBMITTED  # type: ignore[union-attr]
    assert spool.apply_reports([_report("p3", Status.DELIVERED),
                                _report("p2", Status.DELIVERED)], LATER) == []
    done = spool.get_message(message_id)
    assert done is not None and done.status is Status.DELIVERED
    details = [e.detail for e in spool.events(message_id)]
    assert details[-1] == "all 3 parts reported: delivered"
    assert sum(d.startswith("part ") for d in details) == 3


def test_a_failed_part_fails_the_message_with_its_error_once_all_parts_ended(
    spool: SqlSpool,
) -> None:
    message_id = _sent_in_parts(spool, "q1", "q2")
    gone = ErrorInfo("smsc_undeliverable", "err 001")
    spool.apply_reports([_report("q2", Status.UNDELIVERED, gone)], LATER)
    assert spool.get_message(message_id).status is Status.SUBMITTED  # type: ignore[union-attr]
    spool.apply_reports([_report("q1", Status.DELIVERED)], LATER)
    done = spool.get_message(message_id)
    assert done is not None
    assert (done.status, done.error) == (Status.UNDELIVERED, gone)


def test_repeated_and_intermediate_part_reports_change_nothing_final(spool: SqlSpool) -> None:
    message_id = _sent_in_parts(spool, "r1", "r2")
    spool.apply_reports([_report("r1", Status.SUBMITTED), _report("r1", Status.DELIVERED),
                         _report("r1", Status.UNDELIVERED)], LATER)
    spool.apply_reports([_report("r1", Status.DELIVERED)], LATER)
    assert spool.get_message(message_id).status is Status.SUBMITTED  # type: ignore[union-attr]
    spool.apply_reports([_report("r2", Status.DELIVERED)], LATER)
    assert spool.get_message(message_id).status is Status.DELIVERED  # type: ignore[union-attr]
    # A late repeat after the end is neither applied nor returned as unmatched.
    assert spool.apply_reports([_report("r2", Status.UNDELIVERED)], LATER) == []
    assert spool.get_message(message_id).status is Status.DELIVERED  # type: ignore[union-attr]


def test_a_part_report_after_the_message_ended_is_ignored(spool: SqlSpool) -> None:
    message_id = _sent_in_parts(spool, "s1", "s2")
    spool.apply_reports([_report("s1", Status.DELIVERED), _report("s2", Status.EXPIRED)],
                        LATER)
    events = spool.events(message_id)
    spool.apply_reports([_report("s2", Status.DELIVERED)], LATER)
    assert spool.events(message_id) == events


def test_a_receipt_that_overtakes_its_submission_is_held_and_applied_when_recorded(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme")
    single, parted = new_message(acme), new_message(acme)
    spool.accept([single, parted])
    claim = spool.claim("node-a", 10, 60, NOW)
    early = [_report("t1", Status.DELIVERED), _report("u1", Status.DELIVERED),
             _report("u2", Status.DELIVERED)]
    # Committed (the carrier may acknowledge them) though no message has these ids yet.
    assert spool.apply_reports(early, LATER) == early
    spool.record(claim.token, [
        Transition(single.id, Status.SUBMITTED, carrier="smsc", carrier_message_id="t1"),
        Transition(parted.id, Status.SUBMITTED, carrier="smsc", carrier_message_id="u1",
                   part_ids=("u1", "u2")),
    ], LATER)
    assert spool.get_message(single.id).status is Status.DELIVERED  # type: ignore[union-attr]
    assert spool.get_message(parted.id).status is Status.DELIVERED  # type: ignore[union-attr]
    # Applied once: nothing is left to purge, and a report for an id never recorded is.
    assert spool.purge_held_reports(LATER + timedelta(days=2)) == 0
    spool.apply_reports([_report("nobody", Status.DELIVERED)], LATER)
    assert spool.purge_held_reports(LATER) == 0
    assert spool.purge_held_reports(LATER + timedelta(seconds=1)) == 1


def test_a_report_held_while_its_record_was_in_flight_is_applied_by_the_sweep(
    spool: SqlSpool,
) -> None:
    message_id = _sent_in_parts(spool, "v1")
    # As on PostgreSQL when the report's transaction and the record's overlap: the
    # report was held (its message unknown to it), the record did not see it.
    with spool.db.write() as conn:
        reports.hold(conn, [_report("v1", Status.DELIVERED)], LATER)
    assert spool.get_message(message_id).status is Status.SUBMITTED  # type: ignore[union-attr]
    assert spool.apply_held_reports(LATER) == 1
    assert spool.get_message(message_id).status is Status.DELIVERED  # type: ignore[union-attr]
    assert spool.apply_held_reports(LATER) == 0  # applied once, then gone
