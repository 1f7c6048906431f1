"""Turning a mail into SMS text: the text/plain part (or HTML made text), decoded from
any transfer encoding and charset, without quoted replies, signatures and disclaimers;
and the subject conventions (WinSMS schedule)."""

# Clickatell's key:value body is parsed by adapters.vendors.clickatell, as for the FTP drop.

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from itertools import islice
from zoneinfo import ZoneInfo

from inscriptis import get_text
from mailparser_reply.parser import EmailMessage as ReplyText

from adapters.vendors import winsms
from hub import text as sms_text
from hub.errors import Rejected
from hub.mail import MailSettings, SubjectMode, TooLongMode

_PARSER = BytesParser(policy=policy.default)
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class MailBody:
    text: str
    attachments: tuple[str, ...] = ()


class TooComplex(Rejected):
    """A mail whose structure costs more to read than any mail an SMS comes from: too
    many parts, or a header longer than a person's mail has. Refused as a whole."""

    def __init__(self, reason: str) -> None:
        super().__init__("too_complex", reason)


class TooDeep(TooComplex):
    """A mail whose MIME parts nest deeper than MAX_DEPTH."""

    def __init__(self) -> None:
        super().__init__("message structure too deeply nested")


# Real mail nests a few levels (mixed > alternative > related, a forwarded mail or two);
# the stdlib parser and walkers recurse per level, and fail near a thousand.
MAX_DEPTH = 50
# policy.default parses MIME headers in super-linear time, for every part: 20,000 parts
# (700 KB of mail) took 10 s, a 100 KB Content-Type 13 s, 120 parts with 16 KB ones a
# minute. Real mail has a few parts whose Content-* headers take a line or two; at these
# limits the worst mail costs about half a second (off the event loop).
MAX_PARTS = 200
MAX_MIME_HEADER_CHARS = 1_024
# Any other header, its folded lines included (only a handful are ever parsed: Subject,
# From, Reply-To, Message-ID, the automatic-mail marks); a 700 KB Subject took a minute.
MAX_HEADER_CHARS = 16_384
# The text an SMS is looked for in: six segments need a thousand characters, and the
# reply parser and the HTML converter cost about 0.3 s and 1 s per MB. (A Clickatell
# key:value body is data, every line of it read: it is not cut.)
MAX_TEXT_CHARS = 65_536
MAX_HTML_CHARS = 262_144
_OUTLINE = BytesParser(policy=policy.compat32)  # keeps header values as raw text
# compat32's parser checks every line against every boundary open around it, so a mail
# costs lines x depth to read: 2,000 nested multiparts (140 KB) took a second here. Each
# multipart declares its boundary, and a mail nesting deeper than MAX_DEPTH declares
# more than MAX_DEPTH of them: counted first, in linear time, they refuse it before the
# parse. (Side by side they would be as many sections as no person's mail has.)
_BOUNDARY = re.compile(rb"boundary\s*=", re.IGNORECASE)


def parse(raw: bytes) -> EmailMessage:
    """The mail as an EmailMessage; TooComplex (TooDeep) when its structure is beyond
    the limits above, found before any header is parsed. CPU-bound: call it off the
    event loop for a large mail."""
    check_outline(raw)
    try:
        message = _PARSER.parsebytes(raw)
    except RecursionError:
        raise TooDeep from None
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage
    return message


def check_outline(raw: bytes) -> None:
    """Walk the mail's parts as compat32 reads them (linear time, header values left as
    text, no recursion in the walk) and refuse a structure beyond the limits."""
    declared = _BOUNDARY.finditer(raw)
    if sum(1 for _ in islice(declared, MAX_DEPTH + 1)) > MAX_DEPTH:
        raise TooComplex(f"message structure too deeply nested or too complex: more than "
                         f"{MAX_DEPTH} multipart boundaries")
    try:
        outline = _OUTLINE.parsebytes(raw)
    except RecursionError:
        raise TooDeep from None
    parts, stack = 0, [(outline, 1)]
    while stack:
        part, level = stack.pop()
        parts += 1
        if level > MAX_DEPTH:
            raise TooDeep
        if parts > MAX_PARTS:
            raise TooComplex(f"message has more than {MAX_PARTS} MIME parts")
        for name, value in part.raw_items():
            limit = (MAX_MIME_HEADER_CHARS if name.lower().startswith("content-")
                     else MAX_HEADER_CHARS)
            if len(str(value)) > limit:
                raise TooComplex(f"the {name[:40]} header is longer than {limit} characters")
        # A leaf's payload is never asked for: compat32 would decode it in its charset.
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((p, level + 1) for p in payload if isinstance(p, Message))


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
        text = (html_to_text(content[:MAX_HTML_CHARS])
                if part.get_content_subtype() == "html" else content)
    names = tuple(a.get_filename() or a.get_content_type() for a in message.iter_attachments()
                  if isinstance(a, EmailMessage))
    return MailBody(tidy(text), names)


def _content(part: EmailMessage) -> str:
    """Decode a text part; an unknown or lying charset degrades to replacement marks
    rather than refusing the mail."""
    try:
        value = part.get_content()
    except (LookupError, UnicodeError):  # UnicodeError: codecs such as idna and undefined
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
    if mode is SubjectMode.WINSMS and winsms.is_time(subject):
        return text, winsms_time(subject, zone)
    return text, None


def winsms_time(subject: str, zone: str) -> datetime:
    """YYYYMMDDHHMM in the hub's zone (South African time by default)."""
    try:
        return winsms.parse_time(subject, ZoneInfo(zone))
    except ValueError:
        raise Rejected("invalid_time",
                       f"subject '{subject}' is not a YYYYMMDDHHMM schedule time") from None


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


def sms_text_for(message: EmailMessage, settings: MailSettings) -> MailBody:
    """The SMS text a number@domain mail stands for, before subject handling."""
    found = body(message)
    return MailBody(strip_reply(found.text[:MAX_TEXT_CHARS], settings.cut_markers),
                    found.attachments)
