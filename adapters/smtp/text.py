"""Turning a mail into SMS text: the text/plain part (or HTML made text), decoded from
any transfer encoding and charset, without quoted replies, signatures and disclaimers;
the subject conventions (WinSMS schedule); and Clickatell's key:value body format."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from zoneinfo import ZoneInfo

from inscriptis import get_text
from mailparser_reply.parser import EmailMessage as ReplyText

from hub import text as sms_text
from hub.errors import Rejected
from hub.mail import MailSettings, SubjectMode, TooLongMode

_PARSER = BytesParser(policy=policy.default)
_WINSMS_SCHEDULE = re.compile(r"\d{12}")
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class MailBody:
    text: str
    attachments: tuple[str, ...] = ()


def parse(raw: bytes) -> EmailMessage:
    message = _PARSER.parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage
    return message


def header(message: EmailMessage, name: str) -> str:
    """A header decoded (RFC 2047) to text; '' when absent or undecodable."""
    try:
        value = message.get(name)
    except (ValueError, IndexError):  # a malformed header must not fail the mail
        return ""
    return "" if value is None else " ".join(str(value).split())


def body(message: EmailMessage) -> MailBody:
    """The readable text of a mail, preferring text/plain; attachments are named."""
    part = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if isinstance(part, EmailMessage):
        content = _content(part)
        text = html_to_text(content) if part.get_content_subtype() == "html" else content
    names = tuple(a.get_filename() or a.get_content_type() for a in message.iter_attachments()
                  if isinstance(a, EmailMessage))
    return MailBody(tidy(text), names)


def _content(part: EmailMessage) -> str:
    """Decode a text part; an unknown or lying charset degrades to replacement marks
    rather than refusing the mail."""
    try:
        value = part.get_content()
    except (LookupError, UnicodeDecodeError):
        raw = part.get_payload(decode=True)
        value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return value if isinstance(value, str) else ""


def html_to_text(html: str) -> str:
    return get_text(html) if html.strip() else ""


def tidy(text: str) -> str:
    """Unix newlines, no trailing spaces or indentation, at most one blank line in a row."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def strip_reply(text: str, cut_markers: tuple[str, ...]) -> str:
    """Only what the sender wrote now: cut at the first marker line, then let the reply
    parser drop quoted earlier mails, signatures and disclaimers."""
    text = cut(text, cut_markers)
    parsed = ReplyText(text=text, languages=["en"], keep_hyphen_lists=True).read()
    if not parsed.replies:
        return text
    first = parsed.replies[0]
    # A mail that is all "signature" (e.g. only "Sent from my iPhone") keeps its text.
    return tidy(first.body or first.full_body)


def cut(text: str, markers: tuple[str, ...]) -> str:
    wanted = [m.strip().lower() for m in markers if m.strip()]
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if any(line.strip().lower().startswith(m) for m in wanted):
            return tidy("\n".join(lines[:index]))
    return text


def apply_subject(text: str, subject: str, mode: SubjectMode,
                  zone: str) -> tuple[str, datetime | None]:
    """(text, send_at) per the account's subject convention."""
    subject = subject.strip()
    if mode is SubjectMode.PREPEND and subject:
        return f"{subject}: {text}" if text else subject, None
    if mode is SubjectMode.WINSMS and _WINSMS_SCHEDULE.fullmatch(subject):
        return text, winsms_time(subject, zone)
    return text, None


def winsms_time(subject: str, zone: str) -> datetime:
    """YYYYMMDDHHMM in the hub's zone (South African time by default)."""
    try:
        local = datetime.strptime(subject, "%Y%m%d%H%M")
    except ValueError:
        raise Rejected("invalid_time",
                       f"subject '{subject}' is not a YYYYMMDDHHMM schedule time") from None
    return local.replace(tzinfo=ZoneInfo(zone))


def fit(text: str, max_segments: int, mode: TooLongMode) -> str:
    """Truncate to the segment limit when the account says so; otherwise leave it for
    intake to refuse with its reason."""
    if mode is TooLongMode.REJECT or sms_text.measure(text)[2] <= max_segments:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits: segments grow with length
        middle = (low + high + 1) // 2
        if sms_text.measure(text[:middle])[2] <= max_segments:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip()


@dataclass(frozen=True, slots=True)
class ClickatellBody:
    """Clickatell's SMTP API body: one key:value per line."""

    to: list[str] = field(default_factory=list)
    text: str = ""
    reply: list[str] = field(default_factory=list)
    sender: str | None = None  # from:
    client_ref: str | None = None  # climsgid:
    rows: list[tuple[str, str]] = field(default_factory=list)  # csv: (number, filled text)


def parse_clickatell(text: str) -> ClickatellBody:
    """`to:` repeats for more numbers, `text:` repeats with a newline between, `data:`
    continues without one; `csv:` rows (number first, split at `delimiter:`, default
    ",") fill the text's #field1#, #field2#...; `unicode:1` texts are UCS-2 in hex.
    Credentials (api_id, user, password) are ignored: the mail's sender or SMTP AUTH
    names the account."""
    lists: dict[str, list[str]] = {"to": [], "reply": [], "csv": [], "text": []}
    single: dict[str, str] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            continue
        if key in ("to", "reply"):
            lists[key].extend(v.strip() for v in value.split(",") if v.strip())
        elif key == "text":
            lists["text"].append(("\n" if lists["text"] else "") + value)
        elif key == "data":
            lists["text"].append(value)
        elif key == "csv":
            lists["csv"].append(value)
        elif key in ("from", "climsgid", "delimiter", "unicode"):
            single[key] = value if key == "delimiter" else value.strip()
    body = "".join(lists["text"])
    if single.get("unicode") == "1":
        body = _from_hex(body)
    rows = _template_rows(body, lists["csv"], (single.get("delimiter") or ",")[0])
    return ClickatellBody(lists["to"], body, lists["reply"], single.get("from"),
                          single.get("climsgid"), rows)


def _template_rows(template: str, lines: list[str], delimiter: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for line in lines:
        number, *fields = line.split(delimiter)
        text = template
        for index, value in enumerate(fields, start=1):
            text = text.replace(f"#field{index}#", value)
        rows.append((number.strip(), text))
    return rows


def _from_hex(text: str) -> str:
    """UCS-2 written as hex digits; text that is not hex is left as written."""
    try:
        return bytes.fromhex(text.strip()).decode("utf-16-be")
    except ValueError:
        return text


def sms_text_for(message: EmailMessage, settings: MailSettings) -> MailBody:
    """The SMS text a number@domain mail stands for, before subject handling."""
    found = body(message)
    return MailBody(strip_reply(found.text, settings.cut_markers), found.attachments)
