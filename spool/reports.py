"""Delivery reports: match carriers' reports to stored messages and finish them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from hub.model import DeliveryReport, Status
from spool.bulk import bulk_update
from spool.engine import Database
from spool.ledger import NO_LEASE, Event, add_events, event
from spool.rows import chunks
from spool.tables import messages, to_micros

m = messages
CarrierRef = tuple[str, str]

def apply_reports(
    db: Database, reports: Sequence[DeliveryReport], now: datetime
) -> list[DeliveryReport]:
    """Apply reports in one transaction; return those matching no stored message."""
    for report in reports:
        if not (report.status.final or report.status is Status.SUBMITTED):
            raise ValueError(f"a delivery report cannot say {report.status}")
    if not reports:
        return []
    unmatched: list[DeliveryReport] = []
    finished: list[dict[str, Any]] = []
    events: list[Event] = []
    micros = to_micros(now)
    with db.write() as conn:
        found = _find(conn, reports)
        for report in reports:
            hit = found.get((report.carrier, report.carrier_message_id))
            if hit is None:
                unmatched.append(report)
            elif not hit[1].final:  # a report for a finished message is a repeat: ignore it
                events.append(event(hit[0], now, report.status, _detail(report)))
                if report.status.final:
                    finished.append(_finish_values(hit[0], report, micros))
                    found[(report.carrier, report.carrier_message_id)] = (hit[0], report.status)
        bulk_update(conn, m, finished, keep=_KEEP_UNLESS_GIVEN, constants=NO_LEASE)
        add_events(conn, events)
    return unmatched


def _find(
    conn: Connection, reports: Sequence[DeliveryReport]
) -> dict[CarrierRef, tuple[str, Status]]:
    """(id, status) by carrier reference, locked; one query per carrier and chunk."""
    refs: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        refs[report.carrier].add(report.carrier_message_id)
    found: dict[CarrierRef, tuple[str, Status]] = {}
    for carrier, carrier_ids in refs.items():
        for part in chunks(sorted(carrier_ids)):
            query = (
                select(m.c.id, m.c.status, m.c.carrier_message_id)
                .where(m.c.carrier == carrier, m.c.carrier_message_id.in_(part))
                .with_for_update()
            )
            for row in conn.execute(query):
                key, status = (carrier, row.carrier_message_id), Status(row.status)
                # Should a reference ever repeat, the unfinished message is the one meant.
                if key not in found or found[key][1].final:
                    found[key] = (row.id, status)
    return found


_KEEP_UNLESS_GIVEN = frozenset({"error_code", "error_text"})


def _finish_values(message_id: str, report: DeliveryReport, now: int) -> dict[str, Any]:
    """One row for bulk_update, in driver form (times as microseconds)."""
    return {
        "id": message_id,
        "status": report.status.value,
        "completed_at": now,
        "updated_at": now,
        "error_code": report.error.code if report.error else None,
        "error_text": report.error.text if report.error else None,
    }


def _detail(report: DeliveryReport) -> str:
    if report.detail:
        return report.detail
    if report.error is not None:
        return f"{report.error.code}: {report.error.text}"
    return f"report from {report.carrier}"
