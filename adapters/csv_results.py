"""Answer files for a batch: the result file (one row per input row) and the delivery
report file (one row per message). Both are written beside their target and renamed into
place, so a client never reads half a file; cells a spreadsheet would run are neutralised."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from adapters.csv_batch import Row
from hub import numbers
from hub.batches import Batch
from hub.errors import Rejected
from hub.model import Accepted, Message, Outcome

RESULT_HEADER = ("line", "recipient", "normalised", "status", "message_id", "segments",
                 "cost", "reason")
REPORT_HEADER = ("message_id", "recipient", "state", "status", "accepted_at",
                 "submitted_at", "completed_at", "error")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value: object) -> str:
    """A cell Excel and LibreOffice show as text: formulas get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _open(path: Path) -> TextIO:
    # UTF-8 with BOM: Excel then shows non-ASCII text correctly.
    return path.open("w", encoding="utf-8-sig", newline="")


def _publish(tmp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)


@dataclass
class Totals:
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    segments: int = 0
    credits: Decimal = Decimal(0)


class ResultWriter:
    """Streams result rows to a work file; `publish` moves it into results/."""

    def __init__(self, tmp: Path, region: str) -> None:
        self._tmp = tmp
        self._region = region
        self._handle = _open(tmp)
        self._csv = csv.writer(self._handle)
        self._csv.writerow(RESULT_HEADER)
        self.totals = Totals()

    def write(self, rows: Sequence[Row], outcomes: Iterable[Outcome | None]) -> None:
        for row, outcome in zip(rows, outcomes, strict=True):
            self._csv.writerow([neutral(v) for v in self._cells(row, outcome)])

    def _cells(self, row: Row, outcome: Outcome | None) -> list[object]:
        t = self.totals
        t.rows += 1
        normal = self._normalised(row.given)
        if isinstance(outcome, Accepted):
            t.accepted += 1
            t.segments += outcome.segments
            t.credits += outcome.cost if not outcome.duplicate else 0
            reason = "duplicate client_ref: the earlier message" if outcome.duplicate else ""
            return [row.line, row.given, normal, "accepted", outcome.message_id,
                    outcome.segments, outcome.cost, reason]
        t.rejected += 1
        refused = outcome if outcome is not None else row.refused
        reason = f"{refused.code}: {refused.reason}" if refused is not None else "rejected"
        return [row.line, row.given, normal, "rejected", "", "", "", reason]

    def _normalised(self, given: str) -> str:
        try:
            return numbers.normalise(given, self._region)
        except Rejected:
            return ""

    def note(self, status: str, reason: str) -> None:
        """A row that is not an input row: a duplicate file, an unreadable file."""
        self._csv.writerow(["", "", "", neutral(status), "", "", "", neutral(reason)])

    def publish(self, target: Path) -> None:
        t = self.totals
        self._csv.writerow(["summary", f"rows {t.rows}", "", f"accepted {t.accepted}, "
                            f"rejected {t.rejected}", "", t.segments, t.credits, ""])
        self._handle.close()
        _publish(self._tmp, target)

    def discard(self) -> None:
        self._handle.close()
        self._tmp.unlink(missing_ok=True)


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


class ReportWriter:
    """One delivery-report file: messages page by page, then a summary line."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._handle = _open(tmp)
        self._csv = csv.writer(self._handle)
        self._csv.writerow(REPORT_HEADER)

    def write(self, page: Sequence[Message]) -> None:
        for m in page:
            error = f"{m.error.code}: {m.error.text}" if m.error is not None else ""
            cells = [m.id, m.recipient, m.status.public.value, m.status.value,
                     _time(m.accepted_at), _time(m.submitted_at), _time(m.completed_at), error]
            self._csv.writerow([neutral(c) for c in cells])

    def publish(self, target: Path, batch: Batch, final: bool, counts: str) -> None:
        state = "final" if final else "pending"
        self._csv.writerow(["summary", f"batch {batch.id}", state, neutral(counts),
                            "", "", "", ""])
        self._handle.close()
        _publish(self._tmp, target)
