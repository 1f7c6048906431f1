"""Batch files into Submissions: detect the format (native CSV with a header, WinSMS FTP,
Clickatell key:value), then stream one `Row` per input row, refusing rows that cannot be
sent as written (spreadsheet-mangled numbers are reported, never repaired)."""

from __future__ import annotations

import csv
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from adapters.csv import decode, legacy
from adapters.csv.decode import UnreadableFile
from adapters.csv.rows import FileRules, Row, check_recipient, make_row
from hub.clock import parse_time
from hub.errors import Rejected
from hub.model import MessageClass, Refused, Submission

__all__ = ["BatchSource", "FileRules", "Row", "RowFeed", "UnreadableFile", "check_recipient",
           "open_batch"]

NATIVE, WINSMS, CLICKATELL = "csv", "winsms", "clickatell"
KNOWN_COLUMNS = frozenset({"to", "text", "from", "client_ref", "send_at", "class"})
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Looked up once: an enum attribute costs about a microsecond, once per row adds up.
_CLASSES = {kind.value: kind for kind in MessageClass}
_TRANSACTIONAL = MessageClass.TRANSACTIONAL


@dataclass(frozen=True, slots=True)
class BatchSource:
    """A readable batch file: its detected format and encoding; `rows()` streams it."""

    path: Path
    format: str
    encoding: str
    delimiter: str
    rules: FileRules

    def rows(self) -> Generator[Row, None, None]:
        with decode.open_text(self.path, self.encoding) as stream:
            if self.format == NATIVE:
                yield from _native_rows(stream, self.delimiter, self.rules)
            elif self.format == WINSMS:
                yield from legacy.winsms_rows(
                    stream, self.rules.timezone, self.rules.region, make_row)
            else:
                settings = legacy.clickatell_settings(self.path, self.encoding)
                yield from legacy.clickatell_rows(
                    stream, settings, self.rules.region, make_row)


def open_batch(path: Path, rules: FileRules) -> BatchSource:
    """Detect encoding and format; raises UnreadableFile saying why it cannot be used."""
    try:
        encoding = decode.detect_encoding(path)
        head = decode.first_line(path, encoding)
    except (UnicodeDecodeError, UnicodeError) as exc:
        raise UnreadableFile(f"the file is not readable text: {exc}") from exc
    if any(ord(c) < 32 and c not in "\t\r\n" for c in head):
        raise UnreadableFile("the file is not text (control characters in its first line)")
    if legacy.looks_like_clickatell(head):
        return BatchSource(path, CLICKATELL, encoding, ",", rules)
    delimiter = decode.sniff_delimiter(head)
    cells = next(csv.reader([head], delimiter=delimiter))
    header = {cell.strip().lower() for cell in cells}
    if {"to", "text"} <= header and len(cells) > decode.MAX_COLUMNS:
        raise UnreadableFile(f"the header has {len(cells):,} columns; the limit is "
                             f"{decode.MAX_COLUMNS}")
    if {"to", "text"} <= header:
        return BatchSource(path, NATIVE, encoding, delimiter, rules)
    return BatchSource(path, WINSMS, encoding, ",", rules)


class RowFeed:
    """A file's rows in groups for intake. A file that cannot be read further (a line
    over the limit, a field over csv's limit) ends the group it breaks off: the rows
    before it go through intake as usual, and the next `take` raises the error."""

    def __init__(self, rows: Iterator[Row]) -> None:
        self._rows = rows
        self._error: Exception | None = None

    def take(self, count: int) -> list[Row]:
        if self._error is not None:
            raise self._error
        chunk: list[Row] = []
        try:
            for row in islice(self._rows, count):
                chunk.append(row)
        except (UnreadableFile, csv.Error) as exc:
            if not chunk:
                raise
            self._error = exc
        return chunk


class _Header:
    """Where the known columns sit, found once per file rather than once per row. A
    column the header lacks points one past the row's end, at the "" every row is padded
    with, so each cell is one list index."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.width = len(columns)
        self.to, self.text, self.sender, self.client_ref, self.send_at, self.kind = (
            columns.index(name) if name in columns else self.width
            for name in ("to", "text", "from", "client_ref", "send_at", "class"))

    def padded(self, values: list[str]) -> list[str]:
        return values + [""] * (self.width + 1 - len(values))


def _native_rows(stream: Iterator[str], delimiter: str, rules: FileRules) -> Iterator[Row]:
    reader = csv.reader(stream, delimiter=delimiter)
    header = _Header([cell.strip().lower() for cell in next(reader)])
    start = reader.line_num + 1
    for values in reader:
        line, start = start, reader.line_num + 1
        if _blank(values):
            continue  # a blank line is not a row
        yield _native_row(line, header, values, rules)


def _blank(values: list[str]) -> bool:
    if values and values[0] and not values[0].isspace():
        return False  # the usual case, decided without looking at every cell
    return not any(v.strip() for v in values)


def _native_row(line: int, header: _Header, values: list[str], rules: FileRules) -> Row:
    end = len(values)
    while end > header.width and not values[end - 1].strip():
        end -= 1  # trailing delimiters that spreadsheets add (one cut, not one per cell)
    if end < len(values):
        values = values[:end]
    if len(values) > header.width:
        given = values[header.to].strip() if header.to < header.width else ""
        return Row(line, given, refused=Refused(
            "invalid_field", f"{len(values)} fields but the header names {header.width}"))
    values = header.padded(values)
    given = values[header.to].strip()
    refused = check_recipient(given, rules.region)
    if refused is not None:  # no Submission for a row that cannot be sent
        return Row(line, given, refused=refused)
    try:
        submission = _native_submission(line, header, values, given, rules)
    except Rejected as exc:
        return Row(line, given, refused=Refused(exc.code, exc.reason))
    return Row(line, given, submission)


def _native_submission(line: int, header: _Header, values: list[str], given: str,
                       rules: FileRules) -> Submission:
    send_at = values[header.send_at].strip()
    kind = values[header.kind].strip().lower()
    message_class = _CLASSES.get(kind) if kind else _TRANSACTIONAL
    if message_class is None:
        raise Rejected("invalid_field", f"class '{kind}' is not transactional or marketing")
    text = values[header.text]
    if "{" in text:  # placeholders are rare: skip the dict and the regex otherwise
        text = _fill(text, dict(zip(header.columns, values, strict=False)))
    return Submission(  # positional: a million-row file pays for keywords
        given, text, values[header.sender].strip() or None,
        values[header.client_ref].strip() or None,
        parse_time(send_at, rules.timezone) if send_at else None, None, message_class, 0,
        line,
    )


def _fill(template: str, fields: dict[str, str]) -> str:
    """Replace {column} with the row's value; unknown names stay as written."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip().lower()
        return fields[name] if name in fields and name not in KNOWN_COLUMNS else match.group(0)

    return _PLACEHOLDER.sub(value, template)
