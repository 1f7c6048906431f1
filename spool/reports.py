"""Delivery reports: match carriers' reports to stored messages and finish them; a
message sent in parts finishes when its last part has a final report (the rule is in
`_whole`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, exists, or_, select

from hub.model import DeliveryReport, ErrorInfo, Status
from spool.bulk import bulk_insert, bulk_update
from spool.engine import Database
from spool.ledger import NO_LEASE, Event, add_events, event
from spool.rows import STATUSES, chunks, listed, listed_rows, on_driver
from spool.tables import held_reports, message_parts, messages, to_micros

m = messages
p = message_parts
CarrierRef = tuple[str, str]
# A part: (message id, part number, its final status or None).
PartRow = tuple[str, int, Status | None]

# When parts end differently, the message takes the first of these its parts hold:
# a rejection says most about why, an expiry least.
_FAILURE_ORDER = (Status.REJECTED, Status.UNDELIVERED, Status.EXPIRED)

# The lookups of every report applied, built once (a Core statement made anew per call
# cost more than running it): by carrier reference, of messages and of their parts.
_BY_REF = (
    select(m.c.id, m.c.status, m.c.carrier_message_id)
    .where(m.c.carrier == bindparam("carrier"), listed(m.c.carrier_message_id))
    .with_for_update()
)
_PARTS_BY_REF = (
    select(p.c.message_id, p.c.part, p.c.status, p.c.carrier_message_id)
    .where(p.c.carrier == bindparam("carrier"), listed(p.c.carrier_message_id))
    .with_for_update()
)
_STATES = select(m.c.id, m.c.status).where(listed(m.c.id)).with_for_update()
# The two lookups by reference as SQLite's driver takes them (_by_carrier_ref).
_BY_REF_SQLITE = on_driver(_BY_REF)
_PARTS_BY_REF_SQLITE = on_driver(_PARTS_BY_REF)


def apply_reports(
    db: Database, reports: Sequence[DeliveryReport], now: datetime
) -> list[DeliveryReport]:
    """Apply reports in one transaction; return those matching no stored message, which
    are held in the spool (`held_reports`) until their message's submission is recorded."""
    check_reports(reports)
    if not reports:
        return []
    with db.write() as conn:
        return apply_or_hold(conn, reports, now)


def check_reports(reports: Sequence[DeliveryReport]) -> None:
    for report in reports:
        if not (report.status.final or report.status is Status.SUBMITTED):
            raise ValueError(f"a delivery report cannot say {report.status}")


def apply_or_hold(conn: Connection, reports: Sequence[DeliveryReport],
                  now: datetime) -> list[DeliveryReport]:
    """Apply reports in the caller's transaction, holding the unmatched ones; return
    those."""
    unmatched = apply_in(conn, reports, now)
    hold(conn, unmatched, now)
    return unmatched


def apply_in(
    conn: Connection, reports: Sequence[DeliveryReport], now: datetime
) -> list[DeliveryReport]:
    """Apply reports inside the caller's transaction; return the unmatched ones."""
    unmatched: list[DeliveryReport] = []
    finished: list[dict[str, Any]] = []
    events: list[Event] = []
    micros = to_micros(now)
    rest = _apply_part_reports(conn, reports, now, events, finished)
    found = _find(conn, rest)
    for report in rest:
        hit = found.get((report.carrier, report.carrier_message_id))
        if hit is None:
            unmatched.append(report)
        elif not hit[1].final:  # a report for a finished message is a repeat: ignore it
            events.append(event(hit[0], now, report.status, _detail(report)))
            if report.status.final:
                finished.append(_finish_values(hit[0], report.status, report.error, micros))
                found[(report.carrier, report.carrier_message_id)] = (hit[0], report.status)
    bulk_update(conn, m, finished, keep=_KEEP_UNLESS_GIVEN, constants=NO_LEASE)
    add_events(conn, events)
    return unmatched


# --- reports that came before their message's submission was recorded ------------------
# An SMSC often sends a receipt before the hub has recorded the submit_sm_resp it
# answers (the dispatcher records a claimed batch once it is all submitted). Such a
# report is committed here, so the carrier may acknowledge it, and applied by `record`
# in the same transaction that stores the carrier id; one for an id never recorded is
# kept until `purge_held` drops it, as the record of an unknown id.

_HELD_COLUMNS = ("carrier", "carrier_message_id", "status", "at", "error_code",
                 "error_text", "detail", "held_at")


def _ref_chunks(refs: Iterable[CarrierRef]) -> Iterator[tuple[str, Sequence[str]]]:
    """(carrier, a chunk of its ids): one IN query each, whatever the number of refs."""
    by_carrier: dict[str, set[str]] = defaultdict(set)
    for carrier, carrier_id in refs:
        by_carrier[carrier].add(carrier_id)
    for carrier, carrier_ids in by_carrier.items():
        for chunk in chunks(sorted(carrier_ids)):
            yield carrier, chunk


def _refs(reports: Iterable[DeliveryReport]) -> Iterator[CarrierRef]:
    return ((r.carrier, r.carrier_message_id) for r in reports)


def hold(conn: Connection, reports: Sequence[DeliveryReport], now: datetime) -> None:
    held_at = to_micros(now)
    bulk_insert(conn, held_reports, _HELD_COLUMNS, [
        (r.carrier, r.carrier_message_id, r.status.value, to_micros(r.at),
         r.error.code if r.error else None, r.error.text if r.error else None,
         r.detail, held_at)
        for r in reports
    ])


# Built once (find_held runs in every record of submissions).
_HELD_WHERE = (held_reports.c.carrier == bindparam("carrier"),
               listed(held_reports.c.carrier_message_id))
_HELD_FOR = select(held_reports).where(*_HELD_WHERE)
_HELD_FOR_SQLITE = on_driver(select(held_reports.c.id).where(*_HELD_WHERE))  # any at all?

HeldRow = Row[Any]


def find_held(conn: Connection, refs: Sequence[CarrierRef]) -> list[HeldRow]:
    """The held reports for these carrier references, in the order they came."""
    rows: list[HeldRow] = []
    for carrier, chunk in _ref_chunks(refs):
        # Most records find none: on SQLite the driver says so (_by_carrier_ref) before
        # the rows are read whole, with their types, through SQLAlchemy.
        if conn.dialect.name == "sqlite" and not _by_carrier_ref(
                conn, _HELD_FOR, _HELD_FOR_SQLITE, carrier, chunk):
            continue
        rows += conn.execute(_HELD_FOR, {"carrier": carrier, "ids": list(chunk)}).all()
    rows.sort(key=lambda row: row.id)
    return rows


def release_held(conn: Connection, rows: Sequence[HeldRow], now: datetime) -> int:
    """Apply held reports (rows of held_reports, whose messages are now recorded) and
    drop them; return how many."""
    if not rows:
        return 0
    apply_in(conn, [_held_report(row) for row in rows], now)
    conn.execute(held_reports.delete().where(held_reports.c.id.in_([row.id for row in rows])))
    return len(rows)


def fold(message_id: str, reports: Sequence[DeliveryReport],
         now: datetime) -> tuple[list[Event], DeliveryReport | None]:
    """What the reports for one message, in the order they came, make of it in the
    transaction that records its submission: an event each, and the first final report
    (None: still submitted). Reports after that one are repeats, ignored as `apply_in`
    ignores a report for a finished message."""
    events: list[Event] = []
    for report in reports:
        events.append(event(message_id, now, report.status, _detail(report)))
        if report.status.final:
            return events, report
    return events, None


def apply_held(db: Database, now: datetime, limit: int = 1000) -> int:
    """Apply held reports whose message is now known; return how many.

    `record` applies the reports held for what it records, but on PostgreSQL a report
    committed while that record was in flight is not visible to it (and the record not to
    the report): this sweep closes that gap. Only rows that can match are read."""
    h = held_reports
    matchable = or_(
        exists().where(m.c.carrier == h.c.carrier,
                       m.c.carrier_message_id == h.c.carrier_message_id),
        exists().where(p.c.carrier == h.c.carrier,
                       p.c.carrier_message_id == h.c.carrier_message_id),
    )
    query = select(h).where(matchable).order_by(h.c.id).limit(limit)
    # Most sweeps find nothing: a read says so without taking SQLite's write lock.
    with db.read() as conn:
        if conn.execute(select(h.c.id).where(matchable).limit(1)).first() is None:
            return 0
    if not db.is_sqlite:
        query = query.with_for_update(of=h, skip_locked=True)  # one node applies each
    with db.write() as conn:
        return release_held(conn, conn.execute(query).all(), now)


def _held_report(row: Row[Any]) -> DeliveryReport:
    return DeliveryReport(
        row.carrier, row.carrier_message_id, Status(row.status), row.at,
        error=ErrorInfo(row.error_code, row.error_text or "") if row.error_code else None,
        detail=row.detail)


def purge_held(db: Database, held_before: datetime) -> int:
    """Drop held reports that matched nothing for too long (unknown ids); return how many."""
    with db.write() as conn:
        result = conn.execute(held_reports.delete().where(
            held_reports.c.held_at < held_before))
    return int(result.rowcount or 0)


def _apply_part_reports(
    conn: Connection, reports: Sequence[DeliveryReport], now: datetime,
    events: list[Event], finished: list[dict[str, Any]],
) -> list[DeliveryReport]:
    """Apply the reports that name a part of a multi-part message; return the others.

    Each part's first final report is kept; the message gets an event per part report
    and is finished (once) when every part has a final report."""
    parts = _find_parts(conn, reports)
    if not parts:
        return list(reports)
    states = _message_states(conn, {hit[0] for hit in parts.values()})
    rest: list[DeliveryReport] = []
    touched: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for report in reports:
        hit = parts.get((report.carrier, report.carrier_message_id))
        if hit is None:
            rest.append(report)
            continue
        message_id, number, status = hit
        # A repeat for a part that ended, or any report for a message that ended
        # (timed out, say): recorded nowhere, as for a single message.
        if status is not None or states[message_id].final:
            continue
        events.append(event(message_id, now, Status.SUBMITTED,
                            f"part {number}: {_detail(report)}"))
        if report.status.final:
            parts[(report.carrier, report.carrier_message_id)] = (message_id, number,
                                                                  report.status)
            touched[message_id].append({
                "message_id": message_id, "part": number, "status": report.status.value,
                "error_code": report.error.code if report.error else None,
                "error_text": report.error.text if report.error else None,
            })
    for values in touched.values():
        conn.execute(
            p.update().where(p.c.message_id == bindparam("b_message_id"),
                             p.c.part == bindparam("b_part"))
            .values(status=bindparam("b_status"), error_code=bindparam("b_error_code"),
                    error_text=bindparam("b_error_text")),
            [{f"b_{k}": v for k, v in row.items()} for row in values],
        )
    _finish_whole(conn, list(touched), states, now, events, finished)
    return rest


def _message_states(conn: Connection, message_ids: set[str]) -> dict[str, Status]:
    """The status of each message, locked until the transaction ends."""
    states: dict[str, Status] = {}
    for chunk in chunks(sorted(message_ids)):
        # Results fetched whole (.all()) in this module's hot reads: iterating one
        # fetches row by row, twice the time for the 80 reports of a settle.
        rows = conn.execute(_STATES, {"ids": list(chunk)}).all()
        states.update((row.id, STATUSES[row.status]) for row in rows)
    return states


def _find_parts(
    conn: Connection, reports: Sequence[DeliveryReport]
) -> dict[CarrierRef, PartRow]:
    found: dict[CarrierRef, PartRow] = {}
    for carrier, chunk in _ref_chunks(_refs(reports)):
        for message_id, part, stored, carrier_id in _by_carrier_ref(
                conn, _PARTS_BY_REF, _PARTS_BY_REF_SQLITE, carrier, chunk):
            status = None if stored is None else STATUSES[stored]
            found[(carrier, carrier_id)] = (message_id, part, status)
    return found


def _finish_whole(
    conn: Connection, message_ids: list[str], states: dict[str, Status], now: datetime,
    events: list[Event], finished: list[dict[str, Any]],
) -> None:
    """Finish the messages whose every part now has a final report."""
    if not message_ids:
        return
    by_message: dict[str, list[tuple[Status | None, str | None, str | None]]] = (
        defaultdict(list))
    for chunk in chunks(sorted(message_ids)):
        query = select(p.c.message_id, p.c.status, p.c.error_code, p.c.error_text).where(
            p.c.message_id.in_(chunk))
        for row in conn.execute(query):
            status = None if row.status is None else Status(row.status)
            by_message[row.message_id].append((status, row.error_code, row.error_text))
    micros = to_micros(now)
    for message_id, part_states in by_message.items():
        whole = _whole(part_states)
        if whole is None or states[message_id].final:
            continue
        status, error = whole
        detail = f"all {len(part_states)} parts reported: {status.value}"
        events.append(event(message_id, now, status, detail))
        finished.append(_finish_values(message_id, status, error, micros))


def _whole(
    parts: list[tuple[Status | None, str | None, str | None]],
) -> tuple[Status, ErrorInfo | None] | None:
    """The rule for a message in parts: final once every part is; delivered only if every
    part was; otherwise the most telling failure (_FAILURE_ORDER), with that part's error."""
    if any(status is None for status, _, _ in parts):
        return None
    for failure in _FAILURE_ORDER:
        for status, code, text in parts:
            if status is failure:
                return failure, ErrorInfo(code or "part_failed",
                                          text or f"a part ended {failure.value}")
    return Status.DELIVERED, None


def _find(
    conn: Connection, reports: Sequence[DeliveryReport]
) -> dict[CarrierRef, tuple[str, Status]]:
    """(id, status) by carrier reference, locked; one query per carrier and chunk."""
    found: dict[CarrierRef, tuple[str, Status]] = {}
    for carrier, chunk in _ref_chunks(_refs(reports)):
        for id_, stored, carrier_id in _by_carrier_ref(conn, _BY_REF, _BY_REF_SQLITE,
                                                       carrier, chunk):
            key, status = (carrier, carrier_id), STATUSES[stored]
            # Should a reference ever repeat, the unfinished message is the one meant.
            if key not in found or found[key][1].final:
                found[key] = (id_, status)
    return found


def _by_carrier_ref(conn: Connection, query: Select[Any], sqlite_sql: str, carrier: str,
                    carrier_ids: Sequence[str]) -> Sequence[Sequence[Any]]:
    """The rows `query` finds for one carrier's references (locked), fetched whole. On
    SQLite the same query as SQL text, to the driver: SQLAlchemy's execution cost more
    than the lookup (every receipt transaction makes two)."""
    if conn.dialect.name == "sqlite":
        return listed_rows(conn, sqlite_sql, carrier, ids=carrier_ids)
    return conn.execute(query, {"carrier": carrier, "ids": list(carrier_ids)}).all()


_KEEP_UNLESS_GIVEN = frozenset({"error_code", "error_text"})


def _finish_values(message_id: str, status: Status, error: ErrorInfo | None,
                   now: int) -> dict[str, Any]:
    """One row for bulk_update, in driver form (times as microseconds)."""
    return {
        "id": message_id,
        "status": status.value,
        "completed_at": now,
        "updated_at": now,
        "error_code": error.code if error else None,
        "error_text": error.text if error else None,
    }


def _detail(report: DeliveryReport) -> str:
    if report.detail:
        return report.detail
    if report.error is not None:
        return f"{report.error.code}: {report.error.text}"
    return f"report from {report.carrier}"
