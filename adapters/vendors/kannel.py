"""Kannel's delivery-report URL (`dlr-url`): its escapes (`%d`, `%p`, `%A`...) filled the
way Kannel's smsbox fills them for a DLR (gw/urltrans.c), with the values smshub knows
of the message; and the text Kannel puts in `%A` for each kind of report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus

# Kannel's octstr_url_encode leaves RFC 2396's unreserved characters as they are, makes
# a space '+', and writes every other octet as %XX in upper case.
_SAFE = "-_.!~*'()"
UNDEFINED = "-1"  # Kannel's MSG_PARAM_UNDEFINED: a DLR carries no coding, class, MWI


def encode(value: str) -> str:
    return quote_plus(value.encode("utf-8"), safe=_SAFE)


@dataclass(frozen=True, slots=True)
class Dlr:
    """What Kannel's DLR message holds, as smshub knows it."""

    type: int  # %d: 1 delivered, 2 undelivered, 4 buffered, 8 SMSC ack, 16 SMSC nack
    text: str  # %A: the report's text ("ACK/", the SMSC's receipt...)
    receiver: str  # %p: the number the message went to
    sender: str  # %P: the sender id it went from
    at: datetime  # %t, %T: when the report was made
    message_id: str  # %I
    foreign_id: str | None = None  # %F: the carrier's message id
    smsc: str | None = None  # %i: the carrier that took it
    service: str | None = None  # %n: the sendsms user (the smshub account)


def fill(pattern: str, dlr: Dlr) -> str:
    """The dlr-url with each escape replaced; unknown escapes, and a `%` ending the
    pattern, stay as written, as Kannel leaves them."""
    words = dlr.text.split()
    out: list[str] = []
    nextarg = 1
    pos, end = 0, len(pattern)
    while pos < end:
        char = pattern[pos]
        if char != "%" or pos + 1 == end:
            out.append(char)
            pos += 1
            continue
        code = pattern[pos + 1]
        pos += 2
        if code in "sS":  # the next word of the text, in turn
            if nextarg < len(words):
                word = words[nextarg]
                out.append(encode(word) if code == "s" else word.replace("*", "~"))
                nextarg += 1
            continue
        if code == "r":
            out.append("+".join(encode(w) for w in words[nextarg:]))
            continue
        out.append(_value(code, dlr, words))
    return "".join(out)


def _value(code: str, dlr: Dlr, words: list[str]) -> str:
    simple: dict[str, Callable[[], str]] = {
        "a": lambda: "+".join(encode(w) for w in words),
        "A": lambda: encode(dlr.text), "b": lambda: encode(dlr.text),
        "k": lambda: encode(words[0]) if words else "",
        "d": lambda: str(dlr.type),
        "p": lambda: encode(dlr.receiver), "P": lambda: encode(dlr.sender),
        "q": lambda: _plus(dlr.receiver), "Q": lambda: _plus(dlr.sender),
        "F": lambda: encode(dlr.foreign_id or ""), "i": lambda: encode(dlr.smsc or ""),
        "I": lambda: dlr.message_id, "n": lambda: encode(dlr.service or ""),
        "t": lambda: dlr.at.astimezone(UTC).strftime("%Y-%m-%d+%H:%M:%S"),
        "T": lambda: str(int(dlr.at.timestamp())),
        "c": lambda: UNDEFINED, "m": lambda: UNDEFINED, "M": lambda: UNDEFINED,
        "C": lambda: "UTF-8", "O": lambda: "00",
        # Kept empty, as Kannel leaves them when a DLR has none: billing info, meta-data,
        # the SMSC's number, the account, the UDH.
        "B": lambda: "", "D": lambda: "", "f": lambda: "", "o": lambda: "", "u": lambda: "",
        "%": lambda: "%",
    }
    found = simple.get(code)
    return f"%{code}" if found is None else found()


def _plus(number: str) -> str:
    """%q / %Q: a leading 00 written as an encoded '+'."""
    if number.startswith("00"):
        return "%2B" + encode(number[2:])
    return encode(number)


# --- what %A says ----------------------------------------------------------------

_STATS = {"delivered": "DELIVRD", "undelivered": "UNDELIV", "expired": "EXPIRED",
          "failed": "UNKNOWN", "queued": "ENROUTE"}


def report_text(dlr_type: int, status: str, at: datetime, foreign_id: str | None,
                error: tuple[str, str] | None) -> str:
    """%A: "ACK/" when the SMSC took the message (8), "NACK/<code>/<reason>" when it
    was refused (16), like Kannel's bearerbox; otherwise an SMPP receipt's text in the
    usual `id:... stat:...` shape (Kannel passes the SMSC's own), written from what
    smshub recorded."""
    if dlr_type == 8:
        return "ACK/"
    if dlr_type == 16:
        code, reason = error or (status, status)
        return f"NACK/{code}/{reason}"
    delivered = "001" if status == "delivered" else "000"
    done = at.astimezone(UTC).strftime("%y%m%d%H%M")
    return (f"id:{foreign_id or ''} sub:001 dlvrd:{delivered} done date:{done} "
            f"stat:{_STATS.get(status, 'UNKNOWN')} err:000")
