"""Choose an SMS text's encoding (GSM 03.38 7-bit or UCS-2), count its units and
segments, and split it into the parts a carrier sends."""

from __future__ import annotations

import re
from collections.abc import Callable

import gsm0338  # noqa: F401  (importing registers the "gsm03.38" codec)

from hub.model import Encoding

# Single-part limits and per-part limits once a message needs a concatenation header.
GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


def _decodable(prefix: bytes) -> frozenset[str]:
    """Every character the codec decodes from `prefix` plus one byte."""
    chars: set[str] = set()
    for byte in range(256):
        try:
            chars.add((prefix + bytes((byte,))).decode("gsm03.38"))
        except UnicodeDecodeError:
            continue
    # A lone ESC decodes to "": it is a shift, not a character a customer can send.
    chars.discard("")
    return frozenset(chars)


# Derived from the codec rather than typed by hand, so the two cannot disagree.
GSM7_BASIC = _decodable(b"")
GSM7_EXTENSION = _decodable(b"\x1b")  # sent as ESC + char: two septets each


def _char_class(chars: frozenset[str], negate: bool = False) -> re.Pattern[str]:
    body = "".join(re.escape(c) for c in sorted(chars))
    return re.compile(f"[{'^' if negate else ''}{body}]")


# Regexes scan in C: a 160-character text checks in well under a microsecond, where
# the gsm0338 codec's per-character Python loop takes about 28 µs.
_NOT_BASIC = _char_class(GSM7_BASIC, negate=True)
_NOT_GSM7 = _char_class(GSM7_BASIC | GSM7_EXTENSION, negate=True)
_EXTENSION = _char_class(GSM7_EXTENSION)


def measure(text: str) -> tuple[Encoding, int, int]:
    """Return (encoding, units, segments): septets for GSM7, UTF-16 code units for UCS2.

    Empty text is one (empty) segment, matching `split("") == [""]`; intake rejects
    empty text before it gets here.
    """
    encoding, units, doubles = _classify(text)
    if encoding is Encoding.GSM7:
        single, part = GSM7_SINGLE, GSM7_PART
    else:
        single, part = UCS2_SINGLE, UCS2_PART
    if units <= single:
        return encoding, units, 1
    if not doubles:
        return encoding, units, -(-units // part)
    # A two-unit character may not straddle parts, so the count needs the real split.
    return encoding, units, len(_pack(text, part, _double_test(encoding)))


def split(text: str) -> list[str]:
    """The parts to send, in order; `len(split(t)) == measure(t)[2]` always."""
    encoding, units, _ = _classify(text)
    single = GSM7_SINGLE if encoding is Encoding.GSM7 else UCS2_SINGLE
    if units <= single:
        return [text]
    part = GSM7_PART if encoding is Encoding.GSM7 else UCS2_PART
    return _pack(text, part, _double_test(encoding))


def _classify(text: str) -> tuple[Encoding, int, int]:
    """Return (encoding, units, how many characters take two units)."""
    first = _NOT_BASIC.search(text)
    if first is None:  # the common case: plain text, one regex pass
        return Encoding.GSM7, len(text), 0
    start = first.start()
    if _NOT_GSM7.search(text, start) is None:
        doubles = len(_EXTENSION.findall(text, start))
        return Encoding.GSM7, len(text) + doubles, doubles
    # surrogatepass: a stray lone surrogate still counts as one unit instead of raising.
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    return Encoding.UCS2, units, units - len(text)


def _double_test(encoding: Encoding) -> Callable[[str], bool]:
    return GSM7_EXTENSION.__contains__ if encoding is Encoding.GSM7 else _is_astral


def _is_astral(char: str) -> bool:
    return char > "\uffff"  # outside the BMP: a surrogate pair in UTF-16


def _pack(text: str, limit: int, is_double: Callable[[str], bool]) -> list[str]:
    """Greedily fill parts of `limit` units; a two-unit character that does not fit
    in what is left of a part starts the next one."""
    parts: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        width = 2 if is_double(char) else 1
        if used + width > limit:
            parts.append(text[start:index])
            start, used = index, 0
        used += width
    parts.append(text[start:])
    return parts
