"""Batch file parsing: format detection, encodings, delimiters, quoting, mangled numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.csv.decode import MAX_LINE_CHARS, LineTooLong, UnreadableFile
from adapters.csv.detect import RowFeed, open_batch
from adapters.csv.results import neutral
from adapters.csv.rows import FileRules, Row, check_recipient

RULES = FileRules("ZA", "Africa/Johannesburg")
NATIVE = "to,text,name\n0821234567,Hi {name} \u2013 café,Zoë\n"


def parse(tmp_path: Path, data: bytes) -> tuple[str, list[Row]]:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    source = open_batch(path, RULES)
    return source.format, list(source.rows())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_native_csv_in_each_encoding_gives_the_same_text(tmp_path: Path, encoding: str) -> None:
    fmt, rows = parse(tmp_path, NATIVE.encode(encoding))
    assert fmt == "csv"
    assert rows[0].submission is not None
    assert rows[0].submission.text == "Hi Zoë \u2013 café"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_native_csv_delimiters_are_detected(tmp_path: Path, delimiter: str) -> None:
    data = f"to{delimiter}text\n0821234567{delimiter}a, b; c\n".replace("a, b; c", '"a, b; c"')
    _, rows = parse(tmp_path, data.encode())
    assert rows[0].submission is not None and rows[0].submission.text == "a, b; c"


def test_quoted_fields_with_newlines_keep_their_line_numbers(tmp_path: Path) -> None:
    data = 'to,text\n0821234567,"one\ntwo"\n\n0821234568,three\n'
    _, rows = parse(tmp_path, data.encode())
    assert [(r.line, r.submission.text if r.submission else None) for r in rows] == [
        (2, "one\ntwo"), (5, "three")]


@pytest.mark.parametrize(("raw", "code"), [
    ("2.78213E+10", "number_mangled"), ("2,78213E+10", "number_mangled"),
    ("821234567", "leading_zero_lost"),
])
def test_spreadsheet_mangled_numbers_are_reported_never_guessed(raw: str, code: str) -> None:
    refused = check_recipient(raw, "ZA")
    assert refused is not None and refused.code == code


@pytest.mark.parametrize("raw", ["0821234567", "27821234567", "+27 82 123 4567"])
def test_ordinary_numbers_pass_the_spreadsheet_check(raw: str) -> None:
    assert check_recipient(raw, "ZA") is None


def test_mangled_number_in_a_file_is_a_rejected_row(tmp_path: Path) -> None:
    _, rows = parse(tmp_path, b"to,text\n2.78213E+10,x\n")
    assert rows[0].submission is None and rows[0].refused is not None
    assert rows[0].refused.code == "number_mangled"


def test_winsms_file_with_credentials_and_schedule(tmp_path: Path) -> None:
    data = 'bob,secret,202612010800\n"0821234567","Hello, there","Fred","Smith"\n0831234567,Plain\n'
    fmt, rows = parse(tmp_path, data.encode())
    assert fmt == "winsms"
    assert [r.line for r in rows] == [2, 3]
    first = rows[0].submission
    assert first is not None and first.text == "Hello, there"
    assert first.send_at is not None and first.send_at.isoformat() == "2026-12-01T06:00:00+00:00"


def test_winsms_file_without_first_line(tmp_path: Path) -> None:
    fmt, rows = parse(tmp_path, b"0821234567,Hi\n0821234568,Ho\n")
    assert fmt == "winsms" and len(rows) == 2


def test_clickatell_key_value_file_with_to_lines(tmp_path: Path) -> None:
    data = ("api_id:1234\nuser:bob\npassword:secret\ntext:Server down\ntext:call ops\n"
            "to:27821234567\nto:27831234567\n")
    fmt, rows = parse(tmp_path, data.encode())
    assert fmt == "clickatell"
    assert [r.line for r in rows] == [6, 7]
    assert rows[0].submission is not None
    assert rows[0].submission.text == "Server down\ncall ops"


def test_clickatell_template_rows(tmp_path: Path) -> None:
    data = "text:Hi #field1#, balance #field2#\ndelimiter:|\ncsv:27821234567|Fred|R15.50\n"
    _, rows = parse(tmp_path, data.encode())
    assert rows[0].submission is not None
    assert rows[0].submission.text == "Hi Fred, balance R15.50"


@pytest.mark.parametrize("data", [
    'to,text\n0821234567,"one\ntwo"\n\n0821234568,three\n',  # native
    "bob,secret\n0821234567,Hi\n\n0821234568,Ho\n",  # WinSMS
    "text:Hi\nto:27821234567\n\nto:27821234568\n",  # Clickatell to: lines
    "text:Hi #field1#\ncsv:27821234567,A\n\ncsv:27821234568,B\n",  # Clickatell csv: lines
])
def test_each_format_gives_its_submissions_their_line(tmp_path: Path, data: str) -> None:
    # The spool keeps the line with the message: a resumed batch skips rows by it.
    _, rows = parse(tmp_path, data.encode())
    assert len(rows) == 2
    assert [r.submission.batch_line if r.submission else None for r in rows] == [
        r.line for r in rows]


def test_empty_and_binary_files_are_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        parse(tmp_path, b"")
    with pytest.raises(UnreadableFile):
        parse(tmp_path, b"\x00\x01\x02\x00\xff" * 100)


@pytest.mark.parametrize("cell", ["=HYPERLINK(1)", "+27", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(cell: str) -> None:
    assert neutral(cell) == "'" + cell
    assert neutral("plain") == "plain"


# --- Lines and columns are bounded before anything is parsed -------------------------


@pytest.mark.timeout(30)  # the trailing-cell strip once took 20 minutes over this line
@pytest.mark.parametrize("head", ["to,text\n", "Cell,Message\n", "text:Hi\n"])
def test_a_line_of_two_million_commas_ends_the_file_after_the_rows_before_it(
    tmp_path: Path, head: str
) -> None:
    path = tmp_path / "f.csv"
    first = "to:0821234567\n" if head.startswith("text:") else "0821234567,Hi\n"
    path.write_text(head + first + first.strip() + "," * 2_000_000 + "\n" + first)
    feed = RowFeed(open_batch(path, RULES).rows())
    if not head.startswith("text:"):
        rows = feed.take(5000)
        assert [row.line for row in rows] == [2] and rows[0].submission is not None
    # (Clickatell's file-wide keys are read in a first pass: it stops before any row.)
    with pytest.raises(LineTooLong, match="line 3 is longer than 16,384 characters"):
        feed.take(5000)


def test_a_line_at_the_limit_is_a_row_and_one_past_it_is_not(tmp_path: Path) -> None:
    row = "0821234567,x" + "," * (MAX_LINE_CHARS - 12)
    assert len(row) == MAX_LINE_CHARS
    path = tmp_path / "f.csv"
    path.write_text(f"to,text\r\n{row}\r\n{row},\r\n")
    feed = RowFeed(open_batch(path, RULES).rows())
    rows = feed.take(10)
    assert [r.line for r in rows] == [2] and rows[0].submission is not None
    with pytest.raises(LineTooLong, match="line 3"):
        feed.take(10)


def test_a_first_line_over_the_limit_makes_the_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("to,text" + "," * 2_000_000 + "\n0821234567,Hi\n")
    with pytest.raises(UnreadableFile, match="line 1 is longer"):
        open_batch(path, RULES)


def test_a_header_with_too_many_columns_makes_the_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("to,text," + ",".join(f"c{i}" for i in range(200)) + "\n0821234567,Hi\n")
    with pytest.raises(UnreadableFile, match="202 columns; the limit is 100"):
        open_batch(path, RULES)
