"""Read an SMPP delivery receipt (a deliver_sm whose esm_class says so) into the hub's
report terms, tolerating the many dialects of the receipt text; and put SMSC message ids
in the one canonical form both submit_sm_resp and receipts are matched by."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from hub.model import ErrorInfo, Status, record

IdFormat = Literal["as-is", "dec", "hex"]
Tlv = tuple[int, bytes]

TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_NETWORK_ERROR_CODE = 0x0423
TAG_MESSAGE_STATE = 0x0427
TAG_MESSAGE_PAYLOAD = 0x0424

# esm_class bits 5-2 of a deliver_sm: SMSC delivery receipt, SME delivery
# acknowledgement, intermediate delivery notification. All three carry a receipt and
# none of them is a reply, so none may reach a customer as one.
_MESSAGE_TYPE = 0x3C
_RECEIPT_TYPES = frozenset({0x04, 0x08, 0x20})

# message_state values (SMPP 3.4, 5.2.28).
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVERED", 3: "EXPIRED", 4: "DELETED",
                  5: "UNDELIVERABLE", 6: "ACCEPTED", 7: "UNKNOWN", 8: "REJECTED"}

# What each state means for the message, and the error code of a failure. ACCEPTED and
# UNKNOWN are not final here: the receipt timeout settles a message that stays there.
_OUTCOMES: dict[str, tuple[Status, str]] = {
    "DELIVERED": (Status.DELIVERED, ""),
    "EXPIRED": (Status.EXPIRED, "smsc_expired"),
    "DELETED": (Status.UNDELIVERED, "smsc_deleted"),
    "UNDELIVERABLE": (Status.UNDELIVERED, "smsc_undeliverable"),
    "REJECTED": (Status.REJECTED, "smsc_rejected"),
    "ENROUTE": (Status.SUBMITTED, ""),
    "ACCEPTED": (Status.SUBMITTED, ""),
    "UNKNOWN": (Status.SUBMITTED, ""),
}
# The stat words SMSCs write (the spec's seven-letter forms and common variants).
_WORDS = {
    "DELIVRD": "DELIVERED", "DELIVERED": "DELIVERED",
    "EXPIRED": "EXPIRED", "DELETED": "DELETED",
    "UNDELIV": "UNDELIVERABLE", "UNDELIVERABLE": "UNDELIVERABLE",
    "UNDELIVERED": "UNDELIVERABLE", "FAILED": "UNDELIVERABLE",
    "REJECTD": "REJECTED", "REJECTED": "REJECTED",
    "ENROUTE": "ENROUTE", "BUFFRED": "ENROUTE", "BUFFERED": "ENROUTE",
    "ACCEPTD": "ACCEPTED", "ACCEPTED": "ACCEPTED", "UNKNOWN": "UNKNOWN",
}
_NETWORKS = {1: "ANSI-136", 2: "IS-95", 3: "GSM", 4: "ANSI-41"}

_KEY = re.compile(r"(?<!\S)(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:",
                  re.IGNORECASE)
_MAX_ID = 64  # a message_id is a C-string of at most 65 octets
# The receipt text as SMPP 3.4 Appendix B writes it, and as most SMSCs send it: read in
# one match. Values hold neither spaces nor colons, so _text_fields' general reading
# would find the same keys and values; anything else takes that reading.
_CANONICAL = re.compile(
    r"id:([^\s:]+) sub:([^\s:]+) dlvrd:([^\s:]+) submit date:([^\s:]+)"
    r" done date:([^\s:]+) stat:([^\s:]+) err:([^\s:]+)(?: text:(.*))?",
    re.IGNORECASE | re.DOTALL)
_CANONICAL_NAMES = ("id", "sub", "dlvrd", "submitdate", "donedate", "stat", "err")


@record
class Receipt:
    """What a receipt says. `message_id` is as the SMSC wrote it; `id_source` tells which
    carrier setting normalises it ("tlv": the submit_sm_resp form, "text": the receipt's)."""

    message_id: str
    id_source: Literal["tlv", "text"]
    status: Status  # DELIVERED, UNDELIVERED, EXPIRED, REJECTED or SUBMITTED
    state: str  # the state it was read from, e.g. "DELIVERED", or "" when none was given
    err: str = ""
    error: ErrorInfo | None = None
    submit_date: str = ""  # as written; the hub's own times are what it records
    done_date: str = ""
    detail: str = ""

    # Read when asked (reports, tests), not for every receipt: nothing on the way to
    # the spool uses them, and parsing two dates was a twentieth of a receipt's time.
    @property
    def submitted_at(self) -> datetime | None:
        """The SMSC's clock, zone unknown."""
        return _date(self.submit_date)

    @property
    def done_at(self) -> datetime | None:
        return _date(self.done_date)


def is_receipt(esm_class: int) -> bool:
    """Whether a deliver_sm with this esm_class is a receipt rather than a reply."""
    return (esm_class & _MESSAGE_TYPE) in _RECEIPT_TYPES


def parse_receipt(short_message: bytes | str, tlvs: Iterable[Tlv] = ()) -> Receipt | None:
    """The receipt in a deliver_sm, or None when it names no message id at all. The
    receipted_message_id and message_state TLVs win over the text. Never raises."""
    fields: dict[int, bytes] = {}
    for tag, value in tlvs:
        fields.setdefault(tag, value)
    body = short_message or fields.get(TAG_MESSAGE_PAYLOAD, b"")
    text = body if isinstance(body, str) else body.decode("latin-1")
    words = _text_fields(text)
    message_id, source = _message_id(fields.get(TAG_RECEIPTED_MESSAGE_ID), words.get("id", ""))
    if not message_id:
        return None
    state = _state_from_tlv(fields.get(TAG_MESSAGE_STATE)) or _state_from_word(words.get("stat"))
    status, code = _OUTCOMES.get(state, (Status.SUBMITTED, ""))
    err = words.get("err", "")
    detail = _detail(state or words.get("stat", ""), err, fields.get(TAG_NETWORK_ERROR_CODE))
    return Receipt(
        message_id, source, status, state, err,
        ErrorInfo(code, f"the SMSC reported {detail}") if code else None,
        words.get("submitdate", ""), words.get("donedate", ""), detail,
    )


def _text_fields(text: str) -> dict[str, str]:
    """`key:value` pairs of the receipt text, keys lowercased without spaces, first
    occurrence winning. `text:` runs on to the next key not yet seen, so a reply quoted
    in it ("text:your id: 5") cannot pass for a field; the others are one word."""
    canonical = _CANONICAL.fullmatch(text)
    if canonical is None:
        return _any_fields(text)
    # The usual form, in a quarter of the time.
    fields: dict[str, str] = dict(zip(_CANONICAL_NAMES, canonical.groups(), strict=False))
    if (quoted := canonical.group(8)) is not None:
        fields["text"] = quoted.strip()
    return fields


def _any_fields(text: str) -> dict[str, str]:
    """_text_fields for any text: keys found wherever they are."""
    fields: dict[str, str] = {}
    keys = list(_KEY.finditer(text))
    names = [_name(key) for key in keys]
    index = 0
    while index < len(keys):
        name = names[index]
        after = index + 1
        if name == "text":
            while after < len(keys) and (names[after] in fields or names[after] == "text"):
                after += 1
        end = keys[after].start() if after < len(keys) else len(text)
        value = text[keys[index].end():end].strip()
        if name not in fields:
            fields[name] = value if name == "text" else (value.split() or [""])[0]
        index = after
    return fields


def _name(match: re.Match[str]) -> str:
    # str methods, not re.sub: a receipt has eight keys and this ran for each of them.
    return match.group(1).lower().replace(" ", "").replace("_", "")


def _message_id(tlv: bytes | None, word: str) -> tuple[str, Literal["tlv", "text"]]:
    if tlv:
        # A C-string: anything after the first NUL is padding.
        value = tlv.split(b"\0", 1)[0].decode("latin-1").strip()
        if value:
            return value, "tlv"
    return word.strip(), "text"


def _state_from_tlv(value: bytes | None) -> str:
    if not value or len(value) > 4:
        return ""
    return MESSAGE_STATES.get(int.from_bytes(value, "big"), "")


def _state_from_word(word: str | None) -> str:
    if not word:
        return ""
    word = word.upper()
    if word.isdigit():  # some SMSCs write the message_state number
        return MESSAGE_STATES.get(int(word), "") if len(word) <= 3 else ""
    return _WORDS.get(word, "")


def _detail(state: str, err: str, network: bytes | None) -> str:
    parts = [state or "no state"]
    if err:
        parts.append(f"err {err}")
    if network is not None and len(network) == 3:
        kind = _NETWORKS.get(network[0], f"type {network[0]}")
        parts.append(f"network error {kind} {int.from_bytes(network[1:], 'big')}")
    return ", ".join(parts)


def _date(value: str) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss (a few SMSCs write a four-digit year)."""
    if not value.isdigit() or len(value) not in (10, 12, 14):
        return None
    if len(value) == 14:
        value = value[2:]  # four-digit year: the century is not needed here
    y, mo, d = int(value[0:2]), int(value[2:4]), int(value[4:6])
    h, mi = int(value[6:8]), int(value[8:10])
    s = int(value[10:12]) if len(value) == 12 else 0
    try:
        # Naive on purpose: receipts do not say which zone the SMSC's clock is in.
        # Sliced by hand: strptime cost more than the rest of a receipt's parsing.
        return datetime(2000 + y, mo, d, h, mi, s)
    except ValueError:
        return None


# --- message ids ------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-f]+")


def normalise_id(raw: str, fmt: IdFormat = "as-is") -> str:
    """The canonical form of an SMSC message id, so the id from submit_sm_resp and the
    one in a receipt compare equal even when the SMSC writes them differently (Kannel's
    msg-id-type problem: hex in one, decimal in the other). Canonical: trimmed,
    lowercase, leading zeros stripped ("0" stays "0"). "hex" reads the id as
    hexadecimal and gives it in decimal, "dec" reads it as decimal; an id that is not
    what `fmt` says is kept as "as-is" would keep it, so nothing is ever lost."""
    text = raw.strip().strip("\0").strip().lower()
    if fmt == "hex":
        digits = text.removeprefix("0x")
        if _HEX.fullmatch(digits) and len(digits) <= _MAX_ID:
            return str(int(digits, 16))
    # "dec" and "as-is" agree on a decimal id; "dec" names the intent in the config.
    return text.lstrip("0") or ("0" if text else "")
