"""Clickatell's formats, shared by every transport that carries them: the error codes
(`<fault>`) and 001-014 status codes for what smshub says (the tables docs/xml.md
publishes), its status callback's parameters, `unicode=1` hex text, and the key:value
document its SMTP and FTP APIs take (one parser, so a document means the same SMS by
mail and by FTP)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from hub.model import Callback, CallbackKind, Status
from hub.pushes import CLICKATELL_ALL

# Clickatell's error codes and texts, as its client libraries print them.
ERRORS = {
    "001": "Authentication failed",
    "003": "Session ID expired",
    "004": "Account frozen",
    "005": "Missing session ID",
    "007": "IP lockdown violation",
    "101": "Invalid or missing parameters",
    "103": "Unknown API message ID",
    "104": "Unknown client message ID",
    "105": "Invalid destination address",
    "107": "Empty message",
    "109": "Missing message ID",
    "113": "Maximum message parts exceeded",
    "116": "Invalid Unicode data",
    "120": "Invalid delivery time",
    "121": "Destination mobile number blocked",
    "122": "Destination mobile opted out",
    "123": "Invalid sender ID",
    "301": "No credit left",
}

# Our refusal codes (hub.intake and the reader) as Clickatell error codes; others are 101.
REFUSALS = {
    "invalid_number": "105",
    "empty_text": "107",
    "too_long": "113",
    "invalid_unicode": "116",
    "invalid_time": "120",
    "sender_not_allowed": "123",
    "blocked": "121",
    "opted_out": "122",
    "insufficient_credit": "301",
    "account_disabled": "004",
}

# Our statuses as Clickatell's message status codes.
STATUSES = {
    Status.ACCEPTED: "002",  # Message queued
    Status.QUEUED: "002",
    Status.SENDING: "002",
    Status.SCHEDULED: "011",  # Message queued for later delivery
    Status.SUBMITTED: "003",  # Delivered to gateway
    Status.DELIVERED: "004",  # Received by recipient
    Status.UNDELIVERED: "007",  # Error delivering message
    Status.REJECTED: "005",  # Error with message
    Status.FAILED: "009",  # Routing error
    Status.EXPIRED: "010",  # Message expired
    Status.CANCELLED: "006",  # User cancelled message delivery
}


def callback_params(*, api_id: str | None, message_id: str, client_ref: str | None,
                    to: str, sender: str | None, at: datetime, status: Status,
                    charge: str) -> list[tuple[str, str]]:
    """Clickatell's status callback (its HTTP GET form), in the order its documentation
    shows: numbers international without '+', `timestamp` in Unix seconds, the 3-digit
    status, `charge` the message's cost."""
    return [("api_id", api_id or ""), ("apiMsgId", message_id), ("cliMsgId", client_ref or ""),
            ("timestamp", str(int(at.timestamp()))), ("to", to.removeprefix("+")),
            ("from", (sender or "").removeprefix("+")), ("status", STATUSES[status]),
            ("charge", charge)]


def fault_text(code: str) -> str:
    """The `<fault>` text: "105, Invalid destination address"."""
    return f"{code}, {ERRORS[code]}"


def refusal_fault(refusal_code: str) -> str:
    return fault_text(REFUSALS.get(refusal_code, "101"))


# --- unicode=1 text ------------------------------------------------------------------


def ucs2_hex(text: str) -> str:
    """`unicode=1` text: UCS-2 (UTF-16BE) written as hex digits, "00480069" is "Hi".
    Blanks between the digits are allowed (text: lines joined); raises ValueError when
    the text is not that, and each transport answers in its own protocol."""
    return bytes.fromhex(text.strip()).decode("utf-16-be")


# --- the key:value document (Clickatell's SMTP and FTP APIs) --------------------------

_KEY = re.compile(r"\s*([A-Za-z_]+)\s*:(.*)")
_FIELD = re.compile(r"#field(\d+)#")
# Keys that make a first line a Clickatell document (the FTP drop detects the format).
KEYS = frozenset(
    {"api_id", "user", "password", "to", "text", "data", "delimiter", "csv", "reply", "from",
     "unicode", "msg_type", "concat", "csvtemplate", "climsgid"})


@dataclass(frozen=True, slots=True)
class KeyValue:
    line: int  # from 1, the line of the document it is on
    key: str  # lower-cased
    value: str  # as written after the colon, without the line's trailing blanks


def key_value(raw: str, line: int = 0) -> KeyValue | None:
    """One `key:value` line; None for any other line (those are ignored). Trailing blanks
    are not part of the value: mail does not keep them (clients and our own tidying strip
    them), and a document must say the same by mail and by FTP."""
    match = _KEY.fullmatch(raw.rstrip())
    if match is None:
        return None
    return KeyValue(line, match.group(1).lower(), match.group(2))


def key_values(lines: Iterable[str]) -> Iterator[KeyValue]:
    for number, raw in enumerate(lines, start=1):
        found = key_value(raw, number)
        if found is not None:
            yield found


def looks_like_key_value(head: str) -> bool:
    found = key_value(head)
    return found is not None and found.key in KEYS


def numbers(value: str) -> tuple[str, ...]:
    """A `to:` (or `reply:`) value: one number, or several comma-separated as in
    Clickatell's HTTP `to` parameter."""
    return tuple(n.strip() for n in value.split(",") if n.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """The document-wide keys, read before any SMS is made: `text:` may come after the
    `to:` and `csv:` lines it is for."""

    text: str
    sender: str | None = None  # from:
    delimiter: str = ","  # of csv: rows
    reply: tuple[str, ...] = ()  # reply: (mail only: where receipts and replies go)
    climsgid: str | None = None
    to_numbers: int = 0  # numbers in all to: lines
    csv_rows: int = 0
    callback: Callback | None = None  # callback: (or msg_callback:) 1-7, with api_id:

    @property
    def client_ref(self) -> str | None:
        """climsgid names one SMS: only a document with one `to:` number and no
        template rows can use it (on more it would make the others duplicates)."""
        return self.climsgid if self.to_numbers == 1 and not self.csv_rows else None


def settings(pairs: Iterable[KeyValue]) -> Settings:
    """`text:` repeated inserts a newline, `data:` continues without one, in the order
    written; `unicode:1` makes the whole text UCS-2 hex (left as written when it is not
    hex: intake then sends what the client wrote); `callback:` 1-7 asks for status
    callbacks (`api_id:` is echoed in them). Credentials (user, password) are ignored:
    the FTP login, the mail's sender or SMTP AUTH names the account."""
    parts: list[str] = []
    sender = climsgid = api_id = None
    delimiter, unicode, to_numbers, csv_rows, wanted = ",", False, 0, 0, 0
    reply: list[str] = []
    for pair in pairs:
        key, value = pair.key, pair.value
        if key == "text":
            parts.append(("\n" if parts else "") + value)
        elif key == "data":
            parts.append(value)
        elif key == "to":
            to_numbers += len(numbers(value))
        elif key == "csv":
            csv_rows += 1
        elif key == "reply":
            reply.extend(numbers(value))
        elif key == "from":
            sender = value.strip() or None
        elif key == "climsgid":
            climsgid = value.strip() or None
        elif key == "delimiter":
            delimiter = value[:1] or ","
        elif key == "unicode":
            unicode = value.strip() == "1"
        elif key in ("callback", "msg_callback"):
            wanted = callback_value(value)
        elif key == "api_id":
            api_id = value.strip() or None
    text = "".join(parts)
    if unicode:
        text = _hex_or_as_written(text)
    asked = (Callback(CallbackKind.CLICKATELL, None, wanted, api_id) if wanted else None)
    return Settings(text, sender, delimiter, tuple(reply), climsgid, to_numbers, csv_rows,
                    asked)


def callback_value(value: str) -> int:
    """A key:value `callback:` value, 0-7; anything else asks for none (these APIs have
    no error answer for it)."""
    value = value.strip()
    return int(value) if value.isdigit() and int(value) <= CLICKATELL_ALL else 0


def _hex_or_as_written(text: str) -> str:
    try:
        return ucs2_hex(text)
    except ValueError:  # the key:value APIs have no error answer for it
        return text


def fill(template: str, row: str, delimiter: str) -> tuple[str, str]:
    """A `csv:` row, number first: (number, the template with #field1#, #field2#...
    replaced by the row's fields). Unknown fields stay as written; one pass, so a value
    that itself reads `#field2#` is not replaced again."""
    number, *fields = row.split(delimiter)

    def value(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return fields[index - 1] if 1 <= index <= len(fields) else match.group(0)

    return number.strip(), _FIELD.sub(value, template)


@dataclass(frozen=True, slots=True)
class Sms:
    """What one `to:` or `csv:` line asks for."""

    line: int
    given: str  # the line's number(s) as written
    numbers: tuple[str, ...]  # a to: line may list several; a csv: row has one
    text: str
    template: bool  # from a csv: row (its own text) rather than a to: line


def messages(pairs: Iterable[KeyValue], found: Settings) -> Iterator[Sms]:
    """The SMS of a document in its order: one per `to:` line and per `csv:` row."""
    for pair in pairs:
        if pair.key == "to":
            yield Sms(pair.line, pair.value.strip(), numbers(pair.value), found.text, False)
        elif pair.key == "csv":
            number, text = fill(found.text, pair.value, found.delimiter)
            yield Sms(pair.line, number, (number,) if number else (), text, True)


@dataclass(frozen=True, slots=True)
class Body:
    """A whole key:value document, as the mail listener takes it."""

    to: list[str] = field(default_factory=list)  # every to: number, in order
    text: str = ""
    reply: list[str] = field(default_factory=list)
    sender: str | None = None
    client_ref: str | None = None  # already None when the document has several SMS
    rows: list[tuple[str, str]] = field(default_factory=list)  # csv: (number, filled text)
    callback: Callback | None = None


def parse_body(text: str) -> Body:
    pairs = list(key_values(text.replace("\r\n", "\n").split("\n")))
    found = settings(pairs)
    body = Body(text=found.text, reply=list(found.reply), sender=found.sender,
                client_ref=found.client_ref, callback=found.callback)
    for sms in messages(pairs, found):
        if sms.template:
            body.rows.extend((number, sms.text) for number in sms.numbers)
        else:
            body.to.extend(sms.numbers)
    return body
