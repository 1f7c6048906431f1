"""The native CSV batch format: a header row naming its columns (to, text, from,
client_ref, send_at, class, and any others as {placeholders}), then one `Row` per line,
refusing rows that cannot be sent as written (mangled numbers are reported, never repaired)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from adapters.csv.rows import FileRules, Row, check_recipient
from hub.clock import parse_time
from hub.errors import Rejected
from hub.model import MessageClass, Refused, Submission

KNOWN_COLUMNS = frozenset({"to", "text", "from", "client_ref", "send_at", "class"})
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Looked up once: an enum attribute costs about a microsecond, once per row adds up.
_CLASSES = {kind.value: kind for kind in MessageClass}
_TRANSACTIONAL = MessageClass.TRANSACTIONAL


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


def native_rows(stream: Iterator[str], delimiter: str, rules: FileRules) -> Iterator[Row]:
    """The rows after the header, each with the line it starts on; blank lines are skipped."""
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
