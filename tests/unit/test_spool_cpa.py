"""CPA regulation 4 where a marketing message becomes due, on SQLite and PostgreSQL:
intake's commit holds one accepted outside the hours, the claim holds one whose hours
closed while it waited; consent lifts the rule for its account and number only."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub import cpa
from hub.cli_consents import write_audit
from hub.consents import Consent
from hub.model import (
    Account,
    DeliveryReport,
    MessageClass,
    NewMessage,
    Status,
    Transition,
)
from spool import SqlSpool
from tests.factories import make_account, new_message


def sa(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cpa.ZONE).astimezone(UTC)


def marketing(account: Account, at: datetime, *, due: datetime | None = None,
              recipient: str = "+27821234567", expires_at: datetime | None = None,
              ) -> NewMessage:
    nm = new_message(account, accepted_at=at, recipient=recipient, expires_at=expires_at)
    due_at = due or at
    return replace(nm, message_class=MessageClass.MARKETING, due_at=due_at,
                   send_at=due_at if due_at > at else None)


def stored(spool: SqlSpool, message_id: str):
    found = spool.get_message(message_id)
    assert found is not None
    return found


def test_marketing_accepted_on_saturday_at_1300_is_held_until_monday(spool: SqlSpool) -> None:
    account = make_account(spool)
    at = sa("2026-12-05T13:00")
    held, plain = spool.accept([marketing(account, at), new_message(account, accepted_at=at)])
    assert held.message is not None and held.message.initial_status is Status.SCHEDULED
    assert plain.message is not None and plain.message.initial_status is Status.ACCEPTED
    m = stored(spool, held.message.id)
    assert (m.status, m.due_at) == (Status.SCHEDULED, sa("2026-12-07T08:00"))
    assert m.error is not None and m.error.code == "cpa_hours"
    assert "on a Saturday after 13:00" in m.error.text
    assert "2026-12-07T08:00+02:00" in m.error.text
    [event] = spool.events(m.id)
    assert event.status is Status.SCHEDULED and "held: no direct marketing" in event.detail


def test_marketing_accepted_on_saturday_at_1259_is_due_at_once(spool: SqlSpool) -> None:
    account = make_account(spool)
    [done] = spool.accept([marketing(account, sa("2026-12-05T12:59"))])
    assert done.message is not None
    m = stored(spool, done.message.id)
    assert m.status is Status.ACCEPTED and m.error is None


def test_marketing_scheduled_for_a_sunday_waits_for_monday(spool: SqlSpool) -> None:
    account = make_account(spool)
    [done] = spool.accept([marketing(account, sa("2026-12-04T10:00"),
                                     due=sa("2026-12-06T10:00"))])
    assert done.message is not None
    assert stored(spool, done.message.id).due_at == sa("2026-12-07T08:00")


def test_consent_lets_that_number_go_for_that_account_only(spool: SqlSpool) -> None:
    account, other = make_account(spool), make_account(spool)
    at = sa("2026-12-06T10:00")  # a Sunday
    spool.add_consent(Consent(account.id, "+27821234567", at, "signed form 7"))
    mine, theirs, another = spool.accept([
        marketing(account, at), marketing(other, at),
        marketing(account, at, recipient="+27831234567")])
    assert mine.message is not None and theirs.message is not None
    assert another.message is not None
    assert stored(spool, mine.message.id).status is Status.ACCEPTED
    assert stored(spool, theirs.message.id).status is Status.SCHEDULED
    assert stored(spool, another.message.id).status is Status.SCHEDULED
    claimed = spool.claim("n", 10, 60, at)
    assert [x.id for x in claimed.messages] == [mine.message.id]


def test_claimed_at_2000_on_friday_goes_back_to_scheduled(spool: SqlSpool) -> None:
    account = make_account(spool)
    at = sa("2026-12-04T19:00")
    [done] = spool.accept([marketing(account, at, due=sa("2026-12-04T19:59"))])
    assert done.message is not None
    assert spool.claim("n", 10, 60, sa("2026-12-04T20:00")).messages == ()
    m = stored(spool, done.message.id)
    assert (m.status, m.due_at, m.attempts) == (Status.SCHEDULED, sa("2026-12-05T09:00"), 0)
    assert m.error is not None and "after 20:00" in m.error.text
    assert "held: no direct marketing after 20:00" in spool.events(m.id)[-1].detail
    # At 09:00 it goes, and the hold's reason no longer shows on it.
    [again] = spool.claim("n", 10, 60, sa("2026-12-05T09:00")).messages
    assert again.id == m.id and again.error is None


def test_claimed_at_1959_on_friday_is_sent(spool: SqlSpool) -> None:
    account = make_account(spool)
    at = sa("2026-12-04T19:00")
    [done] = spool.accept([marketing(account, at, due=sa("2026-12-04T19:59"))])
    assert done.message is not None
    [claimed] = spool.claim("n", 10, 60, sa("2026-12-04T19:59")).messages
    assert claimed.id == done.message.id and claimed.status is Status.SENDING


def test_a_batch_spanning_the_boundary_holds_the_rest_in_order(spool: SqlSpool) -> None:
    account = make_account(spool)
    at = sa("2026-12-05T12:00")
    batch = [marketing(account, at, recipient=f"+2782123456{n}") for n in range(6)]
    transactional = new_message(account, accepted_at=at)
    spool.accept([*batch, transactional])
    first = spool.claim("n", 2, 60, sa("2026-12-05T12:59:30"))
    assert [x.id for x in first.messages] == [x.id for x in batch[:2]]
    later = spool.claim("n", 10, 60, sa("2026-12-05T13:00"))
    assert [x.id for x in later.messages] == [transactional.id]  # not marketing: it goes
    for nm in batch[2:]:
        assert stored(spool, nm.id).status is Status.SCHEDULED
    assert spool.claim("n", 10, 60, sa("2026-12-07T07:59")).messages == ()
    monday = spool.claim("n", 10, 60, sa("2026-12-07T08:00"))
    assert [x.id for x in monday.messages] == [x.id for x in batch[2:]]


def test_a_claim_in_the_hours_gives_marketing_the_closing_time_to_be_sent_by(
    spool: SqlSpool,
) -> None:
    """Its carrier sends nothing after that moment (hub.cpa.too_late); a number with a
    consent, and a transactional message, have no such moment."""
    account = make_account(spool)
    at = sa("2026-12-04T19:00")
    promo = marketing(account, at)
    agreed = marketing(account, at, recipient="+27831234567")
    spool.add_consent(Consent(account.id, "+27831234567", at))
    plain = new_message(account, accepted_at=at)
    spool.accept([promo, agreed, plain])
    claimed = {x.id: x for x in spool.claim("n", 10, 60, sa("2026-12-04T19:59:58")).messages}
    assert claimed[promo.id].send_by == sa("2026-12-04T20:00")
    assert claimed[agreed.id].send_by is None and claimed[plain.id].send_by is None
    saturday = marketing(account, sa("2026-12-05T10:00"), recipient="+27841234567")
    spool.accept([saturday])
    [again] = spool.claim("n", 10, 60, sa("2026-12-05T12:30")).messages
    assert again.send_by == sa("2026-12-05T13:00")


def test_marketing_its_carrier_kept_back_at_closing_is_held_until_the_next_opening(
    spool: SqlSpool,
) -> None:
    """hold_unsent: the hold of a claim after closing, for messages claimed before it
    and not sent by then: scheduled at the next opening with the attempt not counted, or
    expired (refunded) when their validity ends first; one with a consent recorded
    meanwhile is due again at once; only messages still under the caller's lease."""
    account = make_account(spool, credits="10", price="0.25")
    at = sa("2026-12-04T19:00")
    waits = marketing(account, at)
    short = marketing(account, at, recipient="+27831234567",
                      expires_at=sa("2026-12-05T08:00"))
    agreed = marketing(account, at, recipient="+27841234567")
    spool.accept([waits, short, agreed])
    claim = spool.claim("n", 10, 60, sa("2026-12-04T19:59:59"))
    assert len(claim.messages) == 3
    assert spool.hold_unsent("another-token", claim.messages, sa("2026-12-04T20:00")) == 0
    spool.add_consent(Consent(account.id, "+27841234567", sa("2026-12-04T20:00")))
    assert spool.hold_unsent(claim.token, claim.messages, sa("2026-12-04T20:00:01")) == 3
    m = stored(spool, waits.id)
    assert (m.status, m.due_at, m.attempts) == (Status.SCHEDULED, sa("2026-12-05T09:00"), 0)
    assert m.error is not None and m.error.code == cpa.HELD and "after 20:00" in m.error.text
    gone = stored(spool, short.id)
    assert gone.status is Status.EXPIRED and gone.error is not None
    assert "validity ended while held" in gone.error.text
    again = stored(spool, agreed.id)
    assert (again.status, again.attempts) == (Status.QUEUED, 0)
    assert again.due_at == sa("2026-12-04T20:00:01")
    assert "hours closed" in spool.events(agreed.id)[-1].detail
    assert spool.get_account(account.name).balance == Decimal("9.90")  # 3 x 0.05, one back
    # The consented one goes at the next claim, closed hours or not.
    [sent] = spool.claim("n", 10, 60, sa("2026-12-04T20:00:02")).messages
    assert sent.id == agreed.id and sent.send_by is None


def test_public_holiday_on_a_monday_holds_until_tuesday(spool: SqlSpool) -> None:
    account = make_account(spool)
    [done] = spool.accept([marketing(account, sa("2026-04-27T10:00"))])  # Freedom Day
    assert done.message is not None
    assert stored(spool, done.message.id).due_at == sa("2026-04-28T08:00")
    [tuesday] = spool.accept([marketing(account, sa("2026-04-28T10:00"))])
    assert tuesday.message is not None
    assert stored(spool, tuesday.message.id).status is Status.ACCEPTED


def test_an_observed_holiday_holds_too(spool: SqlSpool) -> None:
    account = make_account(spool)
    [done] = spool.accept([marketing(account, sa("2026-08-10T10:00"))])  # Women's Day, observed
    assert done.message is not None
    m = stored(spool, done.message.id)
    assert m.due_at == sa("2026-08-11T08:00")
    assert m.error is not None and "(observed)" in m.error.text


def test_claimed_after_hours_expiring_before_they_open_ends_expired(spool: SqlSpool) -> None:
    account = make_account(spool, credits="1")
    at = sa("2026-12-04T19:00")
    [done] = spool.accept([marketing(account, at, due=sa("2026-12-04T19:59"),
                                     expires_at=sa("2026-12-05T08:00"))])
    assert done.message is not None
    assert spool.claim("n", 10, 60, sa("2026-12-04T20:00")).messages == ()
    m = stored(spool, done.message.id)
    assert m.status is Status.EXPIRED and m.error is not None
    assert m.error.code == "expired" and "direct-marketing hours" in m.error.text
    assert spool.get_account(account.name).balance == Decimal("1")  # refunded


def test_held_at_intake_and_expired_meanwhile_says_why(spool: SqlSpool) -> None:
    account = make_account(spool)
    at = sa("2026-12-05T22:00")
    [done] = spool.accept([marketing(account, at, expires_at=at + timedelta(hours=2))])
    assert done.message is not None
    assert spool.expire_due(at + timedelta(hours=3)) == 1
    m = stored(spool, done.message.id)
    assert m.status is Status.EXPIRED and m.error is not None
    assert "held outside direct-marketing hours" in m.error.text
    assert spool.events(m.id)[-1].status is Status.EXPIRED


def test_a_sent_message_does_not_keep_the_hold_as_its_error(spool: SqlSpool) -> None:
    account = make_account(spool)
    [done] = spool.accept([marketing(account, sa("2026-12-06T10:00"))])
    assert done.message is not None
    claim = spool.claim("n", 10, 60, sa("2026-12-07T08:00"))
    spool.record(claim.token, [Transition(done.message.id, Status.SUBMITTED, carrier="sim",
                                          carrier_message_id="c1")], sa("2026-12-07T08:00"))
    m = stored(spool, done.message.id)
    assert m.status is Status.SUBMITTED and m.error is None


def test_consents_are_added_once_listed_and_removed(spool: SqlSpool) -> None:
    account = make_account(spool)
    at = sa("2026-12-06T10:00")
    first, added, _ = spool.add_consent(Consent(account.id, "+27821234567", at, "form"))
    again, added_again, _ = spool.add_consent(Consent(account.id, "+27821234567", at, "other"))
    assert added and not added_again and again == first and again.note == "form"
    spool.add_consent(Consent(account.id, "+27831234567", at))
    page = spool.list_consents(account.id, "", 1)
    assert [c.number for c in page] == ["+27821234567"]
    assert [c.number for c in spool.list_consents(account.id, page[-1].number, 10)] == [
        "+27831234567"]
    assert spool.remove_consent(account.id, "+27821234567")
    assert not spool.remove_consent(account.id, "+27821234567")


def test_a_consent_releases_only_that_accounts_held_messages_to_that_number(
    spool: SqlSpool,
) -> None:
    account, other = make_account(spool), make_account(spool)
    at = sa("2026-12-06T10:00")  # a Sunday: every marketing message below is held
    later = sa("2026-12-06T16:00")  # still Sunday: the consent comes before Monday 08:00
    first, second, ahead, theirs, elsewhere = (r.message for r in spool.accept([
        marketing(account, at), marketing(account, at),
        marketing(account, at, due=sa("2026-12-06T18:00")),  # its send-at still ahead
        marketing(other, at), marketing(account, at, recipient="+27831234567")]))
    assert None not in (first, second, ahead, theirs, elsewhere)
    _, added, released = spool.add_consent(Consent(account.id, "+27821234567", later))
    assert added and released == 3
    for m in (first, second):
        now = stored(spool, m.id)  # type: ignore[union-attr]
        assert (now.status, now.due_at, now.error) == (Status.ACCEPTED, later, None)
        assert "released" in spool.events(now.id)[-1].detail
    kept = stored(spool, ahead.id)  # type: ignore[union-attr]
    assert (kept.status, kept.due_at, kept.error) == (Status.SCHEDULED,
                                                      sa("2026-12-06T18:00"), None)
    for m in (theirs, elsewhere):  # another account's, another number's: still held
        assert stored(spool, m.id).error.code == cpa.HELD  # type: ignore[union-attr]
    claim = spool.claim("n", 10, 60, later)
    assert [m.id for m in claim.messages] == [first.id, second.id]  # type: ignore[union-attr]
    assert spool.add_consent(Consent(account.id, "+27821234567", later))[1:] == (False, 0)


def test_audit_lines_give_each_time_from_the_event_table(spool: SqlSpool) -> None:
    """The proof of regulation 4(3): accepted, held, submitted (the dispatch time) and
    final, each from the message's own events, in the hub's zone."""
    account = make_account(spool, credits="10")
    sunday, monday = sa("2026-12-06T10:00"), sa("2026-12-07T08:00")
    [done] = spool.accept([marketing(account, sunday)])
    assert done.message is not None
    message_id = done.message.id
    claim = spool.claim("n", 10, 60, monday)
    assert [x.id for x in claim.messages] == [message_id]
    sent = monday + timedelta(seconds=2)
    spool.record(claim.token, [Transition(message_id, Status.SUBMITTED, carrier="sim",
                                          carrier_message_id="c1")], sent)
    delivered = monday + timedelta(minutes=1)
    assert spool.apply_reports([DeliveryReport("sim", "c1", Status.DELIVERED, delivered)],
                               delivered) == []
    out = io.StringIO()
    assert write_audit(out, spool, account.id, sunday, monday + timedelta(days=1)) == 1
    [line] = csv.DictReader(io.StringIO(out.getvalue()))
    local = {k: line[k] for k in ("accepted_at", "held_at", "submitted_at", "final_at")}
    assert local == {"accepted_at": "2026-12-06T10:00:00+02:00",
                     "held_at": "2026-12-06T10:00:00+02:00",
                     "submitted_at": "2026-12-07T08:00:02+02:00",
                     "final_at": "2026-12-07T08:01:00+02:00"}
    assert (line["accepted_status"], line["carrier"], line["final_status"],
            line["status_now"]) == ("scheduled", "sim", "delivered", "delivered")
    assert line["held_reason"].startswith("held: no direct marketing on a Sunday")
    assert "2026-12-07T08:00+02:00" in line["held_reason"]
    # Accepted outside the period asked for: not in it.
    assert write_audit(io.StringIO(), spool, account.id, monday, monday + timedelta(1)) == 0
