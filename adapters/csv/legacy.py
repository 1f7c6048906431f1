"""The legacy batch formats, streamed as rows with their line: WinSMS FTP (`Cell,Message`
rows, optionally `,FirstName,Surname`, after an optional `UserName,Password,YYYYMMDDHHmm`
line) and Clickatell's `key:value` files with `to:` lines or `csv:` template rows."""

# The vendors' own formats (WinSMS times, the key:value document) are parsed in
# adapters.vendors, as for email. Credentials in these files are ignored: the FTP login is
# what authenticates.

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.csv import decode
from adapters.csv.decode import UnreadableFile
from adapters.csv.rows import Row
from adapters.vendors import clickatell, winsms
from hub.model import Refused, Submission

RowMaker = Callable[[int, str, Submission, str], Row]

# Format detection (adapters.csv.detect) asks this of the first line.
looks_like_clickatell = clickatell.looks_like_key_value


# --- WinSMS ----------------------------------------------------------------------------


def winsms_rows(
    stream: Iterator[str], timezone: str, region: str, make_row: RowMaker
) -> Iterator[Row]:
    reader = csv.reader(stream)
    send_at: datetime | None = None
    start = 1
    for values in reader:
        line, start = start, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if line == 1 and _is_winsms_header(values):
            send_at = _schedule(values[-1], timezone)
            continue
        given = values[0].strip()
        if len(values) < 2:
            yield Row(line, given, refused=Refused("invalid_field", "no message after the number"))
            continue
        submission = Submission(to=given, text=values[1], send_at=send_at, batch_line=line)
        yield make_row(line, given, submission, region)


def _is_winsms_header(values: list[str]) -> bool:
    """`UserName,Password[,YYYYMMDDHHmm]` or just `YYYYMMDDHHmm` on the first line."""
    if len(values) == 1:
        return winsms.is_time(values[0])
    if len(values) == 3 and (not values[2].strip() or winsms.is_time(values[2])):
        return True
    return len(values) == 2 and any(c.isalpha() for c in values[0])


def _schedule(value: str, timezone: str) -> datetime | None:
    """The header's time, if it gives one (anything else there is not a schedule). Twelve
    digits that are no real time stop the file: sending a scheduled batch at once would
    be worse than not sending it."""
    if not winsms.is_time(value):
        return None
    try:
        return winsms.parse_time(value, ZoneInfo(timezone)).astimezone(UTC)
    except ValueError as exc:
        raise UnreadableFile(f"line 1: the schedule time {exc}") from None


# --- Clickatell ------------------------------------------------------------------------

ClickatellSettings = clickatell.Settings


def clickatell_settings(path: Path, encoding: str) -> ClickatellSettings:
    """First pass: the file-wide keys (text, data, from, delimiter, unicode...)."""
    with decode.open_text(path, encoding) as stream:
        return clickatell.settings(clickatell.key_values(stream))


def clickatell_rows(
    stream: Iterator[str], settings: ClickatellSettings, region: str, make_row: RowMaker
) -> Iterator[Row]:
    """Second pass: one row per `to:` line and per `csv:` template line. A resumed batch
    finds its stored messages by line, so a line is one row: a `to:` line listing
    several numbers (which email splits) is refused whole, saying to put one per line."""
    for sms in clickatell.messages(clickatell.key_values(stream), settings):
        line, given = sms.line, sms.given
        if len(sms.numbers) > 1:
            yield Row(line, given, refused=Refused(
                "invalid_field", f"{len(sms.numbers)} numbers on one to: line; a batch "
                "file takes one number per to: line (write each on its own to: line)"))
            continue
        to = sms.numbers[0] if sms.numbers else given
        ref = None if sms.template else settings.client_ref
        yield make_row(line, to, Submission(to=to, text=sms.text, sender=settings.sender,
                                            client_ref=ref, batch_line=line,
                                            callback=settings.callback), region)
