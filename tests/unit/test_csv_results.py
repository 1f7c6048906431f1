"""Result files: a partial file left by a hub that died is carried on row for row."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from adapters.csv.detect import open_batch
from adapters.csv.results import ResultWriter
from adapters.csv.rows import FileRules
from hub.model import Accepted, Refused, Status

RULES = FileRules("ZA", "Africa/Johannesburg")


def test_native_rows_with_missing_and_placeholder_cells(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("name,to,text,class\nThandi,0821234567,Hi {name}\n"
                    ",0821234568,x,bulk\n , ,\n", "utf-8")
    rows = list(open_batch(path, RULES).rows())
    assert len(rows) == 2  # the blank line is no row
    assert rows[0].submission is not None and rows[0].submission.text == "Hi Thandi"
    assert rows[1].refused is not None and rows[1].refused.code == "invalid_field"


def test_partial_result_file_is_resumed_without_its_cut_off_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("to,text\n0821234567,one\nbad,two\n0821234568,three\n", "utf-8")
    rows = list(open_batch(path, RULES).rows())
    partial = tmp_path / "partial.tmp"
    writer = ResultWriter(partial, "ZA")
    writer.write(rows[:2], [Accepted("01J1", Status.QUEUED, 1, Decimal("0.25")),
                            Refused("invalid_number", "no")])
    writer.close()
    with partial.open("ab") as handle:  # the third row, cut off mid-write
        handle.write(b"4,0821234568,'+2782123")
    resumed = ResultWriter.resume(partial, tmp_path / "fresh.tmp", "ZA")
    assert not (tmp_path / "fresh.tmp").exists()  # the copy took the partial file's name
    t = resumed.totals
    assert (t.rows, t.accepted, t.rejected, t.credits, resumed.last_line) == (
        2, 1, 1, Decimal("0.25"), 3)
    resumed.note("not_processed", "rows after line 3 were not processed")
    resumed.publish(tmp_path / "result.csv")
    text = (tmp_path / "result.csv").read_text("utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in text] == ["line", "2", "3", "", "summary"]
    assert "\ufeff" not in "".join(text)
