"""Which format a batch file is in (native CSV with a header, WinSMS FTP, Clickatell
key:value) and its encoding, and the dispatch of its lines to that format's parser;
`RowFeed` hands the parsed rows on in groups."""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from adapters.csv import decode, legacy, native
from adapters.csv.decode import UnreadableFile
from adapters.csv.rows import FileRules, Row, make_row

NATIVE, WINSMS, CLICKATELL = "csv", "winsms", "clickatell"


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
                yield from native.native_rows(stream, self.delimiter, self.rules)
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
