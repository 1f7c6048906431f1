"""The legacy batch formats: WinSMS FTP (`Cell,Message[,FirstName,Surname]` rows after an
optional `UserName,Password,YYYYMMDDHHmm` line) and Clickatell's `key:value` files with
`to:` lines or `csv:` template rows. Credentials in these files are ignored: the FTP
login is what authenticates."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.csv import decode
from adapters.csv.rows import Row
from hub.model import Refused, Submission

RowMaker = Callable[[int, str, Submission, str], Row]
_SCHEDULE = re.compile(r"\d{12}")
_KEY = re.compile(r"\s*([A-Za-z_]+)\s*:(.*)")
CLICKATELL_KEYS = frozenset(
    {"api_id", "user", "password", "to", "text", "data", "delimiter", "csv", "reply", "from",
     "unicode", "msg_type", "concat", "csvtemplate"})


def looks_like_clickatell(head: str) -> bool:
    match = _KEY.fullmatch(head)
    return match is not None and match.group(1).lower() in CLICKATELL_KEYS


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
        return bool(_SCHEDULE.fullmatch(values[0].strip()))
    if len(values) == 3 and (not values[2].strip() or _SCHEDULE.fullmatch(values[2].strip())):
        return True
    return len(values) == 2 and any(c.isalpha() for c in values[0])


def _schedule(value: str, timezone: str) -> datetime | None:
    value = value.strip()
    if not _SCHEDULE.fullmatch(value):
        return None
    local = datetime.strptime(value, "%Y%m%d%H%M").replace(tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)


# --- Clickatell ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClickatellSettings:
    text: str
    sender: str | None
    delimiter: str


def clickatell_settings(path: Path, encoding: str) -> ClickatellSettings:
    """First pass: the file-wide keys (text, data, from, delimiter, unicode)."""
    texts: list[str] = []
    data, sender, delimiter, unicode = "", None, ",", False
    with decode.open_text(path, encoding) as stream:
        for raw in stream:
            match = _KEY.fullmatch(raw.rstrip("\r\n"))
            if match is None:
                continue
            key, value = match.group(1).lower(), match.group(2)
            if key == "text":
                texts.append(value)
            elif key == "data":
                data += value
            elif key == "from":
                sender = value.strip() or None
            elif key == "delimiter":
                delimiter = value or ","
            elif key == "unicode":
                unicode = value.strip() == "1"
    text = "\n".join(texts) + data
    if unicode:
        text = _from_hex(text)
    return ClickatellSettings(text, sender, delimiter[0])


def _from_hex(text: str) -> str:
    """`unicode:1` texts are UCS-2 written as hex digits."""
    try:
        return bytes.fromhex(text.strip()).decode("utf-16-be")
    except ValueError:
        return text  # leave it: intake then sends what the client wrote


def clickatell_rows(
    stream: Iterator[str], settings: ClickatellSettings, region: str, make_row: RowMaker
) -> Iterator[Row]:
    """Second pass: one row per `to:` line and per `csv:` template line."""
    for line, raw in enumerate(stream, start=1):
        match = _KEY.fullmatch(raw.rstrip("\r\n"))
        if match is None:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "to":
            given = value.strip()
            yield make_row(line, given, Submission(to=given, text=settings.text,
                                                   sender=settings.sender, batch_line=line),
                           region)
        elif key == "csv":
            number, *fields = value.split(settings.delimiter)
            text = settings.text
            for index, field in enumerate(fields, start=1):
                text = text.replace(f"#field{index}#", field)
            yield make_row(line, number.strip(), Submission(to=number.strip(), text=text,
                                                            sender=settings.sender,
                                                            batch_line=line), region)
