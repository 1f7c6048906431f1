"""Reports still owed, on SQLite and PostgreSQL: submitted messages read a page at a time,
and the receipt timeout that fails those whose report never came (charged, audited,
idempotent, and never over a real report that commits first)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, text

from hub.model import DeliveryReport, ErrorInfo, Status, Transition
from hub.policies import ReceiptTimeout
from spool import SqlSpool, open_spool, reports
from tests.factories import NOW, make_account, new_message

SECOND = timedelta(seconds=1)


def submit(spool: SqlSpool, *messages_: object, carrier: str = "sim",
           at: datetime = NOW) -> list[str]:
    """Accept the messages and record them as taken by `carrier` (carrier id = "c-" + id)."""
    spool.accept(list(messages_))  # type: ignore[arg-type]
    claim = spool.claim("node-a", 10_000, 60, at)
    spool.record(claim.token, [
        Transition(m.id, Status.SUBMITTED, carrier=carrier, carrier_message_id=f"c-{m.id}")
        for m in claim.messages], at)
    return [m.id for m in claim.messages]


def status(spool: SqlSpool, message_id: str) -> Status:
    found = spool.get_message(message_id)
    assert found is not None
    return found.status


def test_receipt_timeout_fails_the_message_at_its_deadline_and_not_a_second_before(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme", credits="1")
    msg = new_message(acme, cost="0.25")
    submit(spool, msg)
    rule = ReceiptTimeout(timeout=600)
    deadline = NOW + timedelta(seconds=600)
    before = deadline - SECOND
    assert spool.time_out_reports(rule.deadline("sim", before), before) == 0
    assert status(spool, msg.id) is Status.SUBMITTED
    assert spool.time_out_reports(rule.deadline("sim", deadline), deadline) == 1
    failed = spool.get_message(msg.id)
    assert failed is not None and (failed.status, failed.completed_at) == (Status.FAILED,
                                                                          deadline)
    assert failed.status.public.value == "failed"
    assert failed.error is not None and failed.error.code == "no_delivery_report"
    assert failed.error.text.startswith("no delivery report from sim")
    last = spool.events(msg.id)[-1]
    assert (last.status, last.at) == (Status.FAILED, deadline)
    assert last.detail.startswith("no delivery report")
    # It reached the carrier: charged, not refunded.
    assert spool.get_account("acme").balance == Decimal("0.75")


def test_a_message_with_validity_waits_for_its_validity_plus_the_margin(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool, "acme")
    ends = NOW + timedelta(hours=3)
    valid, plain = new_message(acme, expires_at=ends), new_message(acme)
    submit(spool, valid, plain)
    rule = ReceiptTimeout(margin=600, fallback=7200)

    def sweep(at: datetime) -> int:
        return spool.time_out_reports(rule.deadline("sim", at), at)

    # Without validity: the fallback after submission; the validity does not shorten it.
    assert sweep(NOW + timedelta(seconds=7199)) == 0
    assert sweep(NOW + timedelta(seconds=7200)) == 1
    assert (status(spool, plain.id), status(spool, valid.id)) == (Status.FAILED,
                                                                 Status.SUBMITTED)
    # With validity: its end plus the margin, later than the fallback here.
    assert sweep(ends + timedelta(seconds=599)) == 0
    assert sweep(ends + timedelta(seconds=600)) == 1
    assert status(spool, valid.id) is Status.FAILED


def test_a_real_receipt_arriving_after_the_timeout_is_ignored(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    msg = new_message(acme)
    submit(spool, msg)
    later = NOW + timedelta(days=3)
    assert spool.time_out_reports(ReceiptTimeout().deadline("sim", later), later) == 1
    trail = spool.events(msg.id)
    late = DeliveryReport("sim", f"c-{msg.id}", Status.DELIVERED, later, detail="DELIVRD")
    assert spool.apply_reports([late], later + SECOND) == []  # known, and a repeat
    assert status(spool, msg.id) is Status.FAILED
    assert spool.events(msg.id) == trail


def test_a_receipt_that_commits_before_the_timeout_wins(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    msg = new_message(acme)
    submit(spool, msg)
    later = NOW + timedelta(days=3)
    spool.apply_reports([DeliveryReport("sim", f"c-{msg.id}", Status.DELIVERED, later)], later)
    assert spool.time_out_reports(ReceiptTimeout().deadline("sim", later), later) == 0
    assert status(spool, msg.id) is Status.DELIVERED


def test_receipt_timeout_is_idempotent_and_touches_only_its_carrier(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    mine, theirs = new_message(acme), new_message(acme)
    submit(spool, mine)
    submit(spool, theirs, carrier="other")
    rule, later = ReceiptTimeout(timeout=60), NOW + timedelta(hours=1)
    assert spool.time_out_reports(rule.deadline("sim", later), later) == 1
    assert spool.time_out_reports(rule.deadline("sim", later), later) == 0
    assert [e.status for e in spool.events(mine.id)].count(Status.FAILED) == 1
    assert status(spool, theirs.id) is Status.SUBMITTED


def test_unsent_messages_never_time_out_as_unreported(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    waiting, sending = new_message(acme), new_message(acme)
    spool.accept([waiting, sending])
    spool.claim("node-a", 1, 60, NOW)
    later = NOW + timedelta(days=30)
    assert spool.time_out_reports(ReceiptTimeout(timeout=1).deadline("sim", later), later) == 0


def test_receipt_timeout_handles_more_messages_than_one_chunk(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme", credits="2000")
    submit(spool, *[new_message(acme, cost="1") for _ in range(1203)])
    later = NOW + timedelta(days=3)
    assert spool.time_out_reports(ReceiptTimeout().deadline("sim", later), later) == 1203
    assert spool.totals(later).by_status == {Status.FAILED: 1203}
    assert spool.get_account(acme.name).balance == 797  # all charged


def test_owed_reports_are_read_a_page_at_a_time_in_id_order(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    ours = sorted(submit(spool, *[new_message(acme) for _ in range(5)]))
    [other] = submit(spool, new_message(acme), carrier="other")
    [done] = submit(spool, new_message(acme))
    spool.apply_reports([DeliveryReport("sim", f"c-{done}", Status.DELIVERED, NOW)], NOW)
    assert spool.awaiting_carriers() == ["other", "sim"]
    pages, after = [], ""
    while page := spool.awaiting_reports("sim", after, 2):
        pages.append([m.id for m in page])
        after = page[-1].id
    assert pages == [ours[0:2], ours[2:4], ours[4:]]
    first = spool.awaiting_reports("sim", "", 1)[0]
    assert (first.carrier, first.carrier_message_id, first.status) == (
        "sim", f"c-{ours[0]}", Status.SUBMITTED)
    assert [m.id for m in spool.awaiting_reports("other", "", 10)] == [other]


def test_overdue_reports_are_those_past_the_deadline(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    [early] = submit(spool, new_message(acme))
    [late] = submit(spool, new_message(acme), at=NOW + timedelta(seconds=30))
    rule = ReceiptTimeout(timeout=60)
    at = NOW + timedelta(seconds=60)
    assert [m.id for m in spool.overdue_reports(rule.deadline("sim", at), "", 10)] == [early]
    at += timedelta(seconds=30)
    found = spool.overdue_reports(rule.deadline("sim", at), "", 10)
    assert sorted(m.id for m in found) == sorted([early, late])


@pytest.mark.postgres
def test_on_postgres_a_receipt_being_applied_holds_its_message_off_the_timeout(
    pg_url: str,
) -> None:
    spool = open_spool(pg_url)
    try:
        spool.upgrade()
        acme = make_account(spool, "acme")
        held, free = new_message(acme), new_message(acme)
        submit(spool, held, free)
        later = NOW + timedelta(days=3)
        # As apply_reports does: the dispatcher has locked the row and not yet committed.
        with spool.db.write() as conn:
            conn.execute(text("SELECT id FROM messages WHERE id = :id FOR UPDATE"),
                         {"id": held.id})
            assert spool.time_out_reports(ReceiptTimeout().deadline("sim", later), later) == 1
            conn.execute(text("UPDATE messages SET status = 'delivered' WHERE id = :id"),
                         {"id": held.id})
        assert (status(spool, held.id), status(spool, free.id)) == (Status.DELIVERED,
                                                                   Status.FAILED)
        assert spool.time_out_reports(ReceiptTimeout().deadline("sim", later), later) == 0
    finally:
        spool.close()


def test_settle_records_outcomes_then_applies_reports_in_one_write_on_sqlite(
    spool: SqlSpool,
) -> None:
    """The dispatcher's one write: outcomes of two claims and reports, among them one for a
    message recorded in the same call (matched, not held) and one unknown (held)."""
    acme = make_account(spool, "acme", credits="10")
    first, second = new_message(acme), new_message(acme)
    spool.accept([first])
    claim_a = spool.claim("node-a", 10, 60, NOW)
    spool.accept([second])
    claim_b = spool.claim("node-a", 10, 60, NOW)
    commits: list[int] = []
    event.listen(spool.db.engine, "commit", lambda conn: commits.append(1))
    applied = spool.settle(
        [(claim_a.token, [Transition(first.id, Status.SUBMITTED, carrier="sim",
                                     carrier_message_id="c-1")]),
         (claim_b.token, [Transition(second.id, Status.SUBMITTED, carrier="sim",
                                     carrier_message_id="c-2")]),
         ("stale-token", [Transition(second.id, Status.FAILED)])],  # lease not held
        [DeliveryReport("sim", "c-1", Status.DELIVERED, NOW),
         DeliveryReport("sim", "c-unknown", Status.DELIVERED, NOW)], NOW + SECOND)
    writes = len(commits)
    assert sorted(applied) == sorted([first.id, second.id])
    assert status(spool, first.id) is Status.DELIVERED  # its report came in the same write
    assert status(spool, second.id) is Status.SUBMITTED
    with spool.db.read() as conn:
        held = conn.execute(text("SELECT carrier_message_id FROM held_reports")).scalars().all()
    assert held == ["c-unknown"]
    assert writes == (1 if spool.db.is_sqlite else 2)


def test_settle_refuses_a_report_of_a_status_no_report_can_have(spool: SqlSpool) -> None:
    with pytest.raises(ValueError, match="cannot say"):
        spool.settle([], [DeliveryReport("sim", "c-1", Status.QUEUED, NOW)], NOW)


def test_settle_folds_a_report_into_the_record_of_its_submission(
    spool: SqlSpool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A report in the same settle as its message's submission is written with it: one
    row update, with the events in the order they came. A repeat after the final report
    is ignored; a report held from earlier applies first (and the later one is then a
    repeat); a multi-part message's part reports go the usual way."""
    acme = make_account(spool, "acme", credits="10")
    single, early, parts = new_message(acme), new_message(acme), new_message(acme)
    spool.accept([single, early, parts])
    claim = spool.claim("node-a", 10, 60, NOW)
    # The receipt for `early` came before its submit_sm_resp was recorded: held.
    spool.apply_reports([DeliveryReport("sim", "c-early", Status.DELIVERED, NOW)], NOW)
    looked_up: list[str] = []  # reports matched by reference, the way not folded
    apply_in = reports.apply_in

    def watched(conn: Any, batch: Any, now: datetime) -> Any:
        looked_up.extend(r.carrier_message_id for r in batch)
        return apply_in(conn, batch, now)

    monkeypatch.setattr(reports, "apply_in", watched)
    at = NOW + SECOND
    failed = ErrorInfo("undelivered", "absent subscriber")
    spool.settle(
        [(claim.token, [
            Transition(single.id, Status.SUBMITTED, carrier="sim", carrier_message_id="c-1"),
            Transition(early.id, Status.SUBMITTED, carrier="sim",
                       carrier_message_id="c-early"),
            Transition(parts.id, Status.SUBMITTED, carrier="sim", carrier_message_id="p-1",
                       part_ids=("p-1", "p-2")),
        ])],
        [DeliveryReport("sim", "c-1", Status.SUBMITTED, NOW, detail="enroute"),
         DeliveryReport("sim", "c-1", Status.UNDELIVERED, NOW, error=failed),
         DeliveryReport("sim", "c-1", Status.DELIVERED, NOW),  # a repeat: ignored
         DeliveryReport("sim", "c-early", Status.UNDELIVERED, NOW),  # after the held one
         DeliveryReport("sim", "p-1", Status.DELIVERED, NOW)], at)
    assert "c-1" not in looked_up
    assert sorted(looked_up) == ["c-early", "c-early", "p-1"]
    done = spool.get_message(single.id)
    assert done is not None
    assert (done.status, done.error, done.completed_at) == (Status.UNDELIVERED, failed, at)
    assert done.submitted_at == at and done.carrier_message_id == "c-1"
    assert [(e.status, e.detail) for e in spool.events(single.id)][-3:] == [
        (Status.SUBMITTED, ""),
        (Status.SUBMITTED, "enroute"),
        (Status.UNDELIVERED, "undelivered: absent subscriber"),
    ]
    assert status(spool, early.id) is Status.DELIVERED
    assert [e.status for e in spool.events(early.id)][-2:] == [Status.SUBMITTED,
                                                                Status.DELIVERED]
    assert status(spool, parts.id) is Status.SUBMITTED
    assert [e.detail for e in spool.events(parts.id)][-1].startswith("part 1: ")
