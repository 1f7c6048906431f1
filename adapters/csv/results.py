"""Answer files for a batch: the result file (one row per input row) and the delivery
report file (one row per message). Both are written beside their target and renamed into
place, so a client never reads half a file; cells a spreadsheet would run are neutralised."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from adapters.csv.rows import Row
from hub import numbers
from hub.batches import Batch
from hub.cells import FORMULA_START, neutral
from hub.errors import Rejected
from hub.model import Accepted, Message, Outcome

RESULT_HEADER = ("line", "recipient", "normalised", "status", "message_id", "segments",
                 "cost", "reason")
REPORT_HEADER = ("message_id", "recipient", "state", "status", "accepted_at",
                 "submitted_at", "completed_at", "error")
_FORMULA_CHARS = frozenset(FORMULA_START)


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
        self.last_line = 0  # the line of the last input row written
        self._costs: dict[Decimal, str] = {}  # a batch's messages mostly cost the same

    def write(self, rows: Sequence[Row], outcomes: Iterable[Outcome | None]) -> None:
        """One group's rows, flushed: after a crash the file holds every group written."""
        self._csv.writerows([self._cells(row, outcome)
                             for row, outcome in zip(rows, outcomes, strict=True)])
        self._handle.flush()
        if rows:
            self.last_line = rows[-1].line

    def _cells(self, row: Row, outcome: Outcome | None) -> list[object]:
        # Only cells that can start like a formula are neutralised: the number as given
        # may, an E.164 number always does, ids, counts and costs never do.
        t = self.totals
        t.rows += 1
        given = row.given if row.given[:1] not in _FORMULA_CHARS else "'" + row.given
        if isinstance(outcome, Accepted):
            t.accepted += 1
            t.segments += outcome.segments
            cost = self._costs.get(outcome.cost)
            if cost is None:
                cost = self._costs[outcome.cost] = str(outcome.cost)
            if outcome.duplicate:  # the earlier message's number may be written otherwise
                return [row.line, given, neutral(self._normalised(row.given)), "accepted",
                        outcome.message_id, outcome.segments, cost,
                        "duplicate client_ref: the earlier message"]
            t.credits += outcome.cost
            # Intake's E.164 number is this row's, normalised; "+" needs neutralising.
            number = outcome.recipient or self._normalised(row.given)
            return [row.line, given, neutral(number), "accepted",
                    outcome.message_id, outcome.segments, cost, ""]
        t.rejected += 1
        refused = outcome if outcome is not None else row.refused
        reason = f"{refused.code}: {refused.reason}" if refused is not None else "rejected"
        return [row.line, given, neutral(self._normalised(row.given)), "rejected", "", "", "",
                neutral(reason)]

    @classmethod
    def resume(cls, partial: Path, tmp: Path, region: str) -> ResultWriter:
        """A writer that carries on from the partial file of a run the hub did not finish:
        its complete rows are copied (by way of `tmp`) and counted again; a row cut off
        mid-write is not. The copy then takes the partial file's name, so a batch resumed
        more than once always has its rows so far under one name; a copy that fails (a
        full disk) is removed and leaves the partial file as it was."""
        writer = cls(tmp, region)
        try:
            with partial.open("rb+") as raw:
                data_end = raw.seek(0, os.SEEK_END)
                raw.seek(max(0, data_end - 1))
                if raw.read(1) != b"\n":  # the last record was being written: drop it
                    raw.seek(0)
                    raw.truncate(raw.read().rfind(b"\n") + 1)
            with partial.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle)
                next(reader, None)  # the header
                for cells in reader:
                    if len(cells) == len(RESULT_HEADER) and cells[0].isdigit():
                        writer._copy(cells)
            writer._handle.flush()
        except BaseException:
            with contextlib.suppress(OSError):  # closed even when its last flush fails
                writer._handle.close()
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, partial)
        writer._tmp = partial
        return writer

    def _copy(self, cells: list[str]) -> None:
        t = self.totals
        t.rows += 1
        if cells[3] == "accepted":
            t.accepted += 1
            t.segments += int(cells[5] or 0)
            if not cells[7]:  # a duplicate client_ref cost nothing this time
                t.credits += Decimal(cells[6] or 0)
        else:
            t.rejected += 1
        self.last_line = int(cells[0])
        self._csv.writerow(cells)

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

    def close(self) -> None:
        """Close the work file but keep it: the start-up recovery reads it."""
        self._handle.close()


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def report_cells(m: Message) -> list[str]:
    """One message's row of a delivery report (REPORT_HEADER), safe in a spreadsheet: the
    FTP drop's report file and the JSON API's batch results as CSV."""
    error = f"{m.error.code}: {m.error.text}" if m.error is not None else ""
    cells = [m.id, m.recipient, m.status.public.value, m.status.value,
             _time(m.accepted_at), _time(m.submitted_at), _time(m.completed_at), error]
    return [neutral(c) for c in cells]


class ReportWriter:
    """One delivery-report file: messages page by page, then a summary line."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._handle = _open(tmp)
        self._csv = csv.writer(self._handle)
        self._csv.writerow(REPORT_HEADER)

    def write(self, page: Sequence[Message]) -> None:
        self._csv.writerows(report_cells(m) for m in page)

    def publish(self, target: Path, batch: Batch, final: bool, counts: str) -> None:
        state = "final" if final else "pending"
        self._csv.writerow(["summary", f"batch {batch.id}", state, neutral(counts),
                            "", "", "", ""])
        self._handle.close()
        _publish(self._tmp, target)

    def discard(self) -> None:
        """A rewrite that failed part-way: its work file closed and removed."""
        self._handle.close()
        self._tmp.unlink(missing_ok=True)
