"""SMPP message bodies: a text to the submit_sm parts that carry it (GSM-7 or UCS-2; UDH,
SAR or message_payload for long texts), and a deliver_sm body back to text with its
concatenation header. Pure functions; no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from hub.model import Encoding, record
from hub.text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    measure,
    split,
)

LongMode = Literal["udh", "sar", "payload"]
Tlv = tuple[int, bytes]

TAG_SAR_MSG_REF_NUM = 0x020C
TAG_SAR_TOTAL_SEGMENTS = 0x020E
TAG_SAR_SEGMENT_SEQNUM = 0x020F
TAG_MESSAGE_PAYLOAD = 0x0424
ESM_UDHI = 0x40  # esm_class bit 6: short_message starts with a user data header
IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08
MAX_PARTS = 255  # total and seq are one octet in both UDH and SAR

_ESC = 0x1B


@record
class Part:
    """One submit_sm's worth: its short_message, esm_class and TLVs."""

    short_message: bytes
    esm_class: int = 0
    tlvs: tuple[Tlv, ...] = ()


@record
class Encoded:
    data_coding: int
    parts: tuple[Part, ...]


@record
class Concat:
    """Where a part stands in a concatenated message."""

    ref: int
    total: int
    seq: int


@record
class Decoded:
    text: str
    concat: Concat | None = None


# --- outbound ---------------------------------------------------------------------


def encode_message(text: str, *, long_mode: LongMode, ref: int, ucs2_data_coding: int = 8,
                   gsm7_data_coding: int = 0, ref16: bool = False) -> Encoded:
    """The parts that carry `text`. A text that fits one SMS is one plain part whatever
    `long_mode` says. Otherwise "udh" and "sar" send one part per `hub.text.split` part
    (so the count is what intake billed); "payload" sends one PDU whose message_payload
    holds everything and leaves the splitting to the SMSC. `ref16` asks for the 16-bit
    reference UDH, which leaves one unit less per part (152/66), so it may need one part
    more than was billed. Raises ValueError past 255 parts (intake caps far below)."""
    encoding, units, _ = measure(text)
    ucs2 = encoding is Encoding.UCS2
    data_coding = ucs2_data_coding if ucs2 else gsm7_data_coding
    if units <= (UCS2_SINGLE if ucs2 else GSM7_SINGLE):
        return Encoded(data_coding, (Part(_encode(text, ucs2)),))
    if long_mode == "payload":
        return Encoded(data_coding, (Part(b"", 0, ((TAG_MESSAGE_PAYLOAD, _encode(text, ucs2)),)),))
    if ref16 and long_mode == "udh":
        limit = (UCS2_PART - 1) * 2 if ucs2 else GSM7_PART - 1
        chunks = _cut(_encode(text, ucs2), limit, ucs2)
    else:
        chunks = [_encode(chunk, ucs2) for chunk in split(text)]
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"a message of {len(chunks)} parts: SMPP allows at most {MAX_PARTS}")
    if long_mode == "sar":
        return Encoded(data_coding, _sar_parts(chunks, ref))
    return Encoded(data_coding, _udh_parts(chunks, ref, ref16))


def _encode(text: str, ucs2: bool) -> bytes:
    if ucs2:
        # surrogatepass: a stray lone surrogate is one unit, as hub.text counted it.
        return text.encode("utf-16-be", "surrogatepass")
    # Unpacked septets, one per octet; an extension character becomes ESC + char. The
    # table turns each character into its septets in C: the gsm0338 codec's
    # per-character Python loop took about 60 µs for a 160-character text.
    return text.translate(_GSM7_TABLE).encode("latin-1")


def _gsm7_table() -> dict[int, str]:
    """Each GSM-7 character's septets as a latin-1 string, from the codec itself."""
    table: dict[int, str] = {}
    for char in GSM7_BASIC | GSM7_EXTENSION:
        table[ord(char)] = char.encode("gsm03.38").decode("latin-1")
    return table


_GSM7_TABLE = _gsm7_table()


def _cut(data: bytes, limit: int, ucs2: bool) -> list[bytes]:
    """Cut encoded text into chunks of at most `limit` octets, never between the two
    halves of an escape pair or a surrogate pair (the 16-bit-reference path)."""
    chunks: list[bytes] = []
    start = 0
    while len(data) - start > limit:
        end = start + limit
        # 0x1B in GSM text only ever opens a pair: the ESC ESC pair is not encodable.
        if (ucs2 and 0xD8 <= data[end - 2] <= 0xDB) or (not ucs2 and data[end - 1] == _ESC):
            end -= 2 if ucs2 else 1
        chunks.append(data[start:end])
        start = end
    chunks.append(data[start:])
    return chunks


def _udh_parts(chunks: list[bytes], ref: int, ref16: bool) -> tuple[Part, ...]:
    total = len(chunks)
    if ref16:
        head = bytes((6, IEI_CONCAT_16, 4, (ref >> 8) & 0xFF, ref & 0xFF, total))
    else:
        head = bytes((5, IEI_CONCAT_8, 3, ref & 0xFF, total))
    return tuple(Part(head + bytes((seq,)) + chunk, ESM_UDHI)
                 for seq, chunk in enumerate(chunks, 1))


def _sar_parts(chunks: list[bytes], ref: int) -> tuple[Part, ...]:
    total = len(chunks)
    common = ((TAG_SAR_MSG_REF_NUM, (ref & 0xFFFF).to_bytes(2, "big")),
              (TAG_SAR_TOTAL_SEGMENTS, bytes((total,))))
    return tuple(Part(chunk, 0, (*common, (TAG_SAR_SEGMENT_SEQNUM, bytes((seq,)))))
                 for seq, chunk in enumerate(chunks, 1))


# --- inbound ----------------------------------------------------------------------


def decode_short_message(data_coding: int, esm_class: int, short_message: bytes,
                         tlvs: Iterable[Tlv] = ()) -> Decoded:
    """The text of a deliver_sm and, for a part of a long message, where it stands.
    Never raises: a header that does not add up is read as text, an undecodable byte
    becomes U+FFFD or its Latin-1 character."""
    fields = _first_of_each(tlvs)
    # message_payload replaces short_message when present (SMPP 3.4, 5.3.2.32).
    body = fields.get(TAG_MESSAGE_PAYLOAD) or short_message
    concat = None
    if esm_class & ESM_UDHI:
        body, concat = _strip_udh(body)
    if concat is None:
        concat = _sar(fields)
    return Decoded(decode_text(data_coding, body), concat)


def _first_of_each(tlvs: Iterable[Tlv]) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    for tag, value in tlvs:
        fields.setdefault(tag, value)
    return fields


def _strip_udh(body: bytes) -> tuple[bytes, Concat | None]:
    """Split off the user data header. One whose length octet claims more than the body
    holds is not a header at all: the whole body is read as text."""
    if not body or 1 + body[0] > len(body):
        return body, None
    end = 1 + body[0]
    return body[end:], _concat_in(body[1:end])


def _concat_in(header: bytes) -> Concat | None:
    """The first well-formed concatenation element of a UDH; other elements are skipped,
    and a walk that runs off the header's end stops there."""
    pos = 0
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        data = header[pos + 2:pos + 2 + length]
        if len(data) < length:
            return None
        found = None
        if iei == IEI_CONCAT_8 and length == 3:
            found = Concat(data[0], data[1], data[2])
        elif iei == IEI_CONCAT_16 and length == 4:
            # Big-endian 16 bits ('!H'); aiosmpplib reads '!I' here and loses the part.
            found = Concat(int.from_bytes(data[:2], "big"), data[2], data[3])
        if found is not None and _valid(found):
            return found
        pos += 2 + length
    return None


def _sar(fields: dict[int, bytes]) -> Concat | None:
    ref = fields.get(TAG_SAR_MSG_REF_NUM, b"")
    total = fields.get(TAG_SAR_TOTAL_SEGMENTS, b"")
    seq = fields.get(TAG_SAR_SEGMENT_SEQNUM, b"")
    if len(ref) not in (1, 2) or len(total) != 1 or len(seq) != 1:
        return None
    found = Concat(int.from_bytes(ref, "big"), total[0], seq[0])
    return found if _valid(found) else None


def _valid(concat: Concat) -> bool:
    return 1 <= concat.seq <= concat.total


# --- alphabets --------------------------------------------------------------------

# SMPP 3.4 data_coding 0x00-0x0E (5.2.19). 2, 4 and 9 are binary or pictograms: their
# octets are kept as Latin-1 code points, which loses nothing.
_SMPP_CODECS = {
    0: "gsm7", 1: "ascii", 2: "latin-1", 3: "latin-1", 4: "latin-1", 5: "shift_jis",
    6: "iso8859-5", 7: "iso8859-8", 8: "ucs2", 9: "latin-1", 10: "iso2022_jp",
    13: "euc_jp", 14: "euc_kr",
}
_GSM_ALPHABETS = ("gsm7", "latin-1", "ucs2", "latin-1")  # GSM 03.38 bits 3-2; 11 reserved


def decode_text(data_coding: int, data: bytes) -> str:
    """Decode octets in the alphabet `data_coding` names; never raises."""
    codec = _codec(data_coding & 0xFF)
    if codec == "gsm7":
        return _decode_gsm7(data)
    if codec == "ucs2":
        # Odd length or a lone surrogate: U+FFFD in its place, the rest still readable.
        return data.decode("utf-16-be", "replace")
    if codec == "ascii" and not data.isascii():
        codec = "latin-1"  # IA5 with the high bit set: the SMSC meant Latin-1
    return data.decode(codec, "replace")


def _codec(data_coding: int) -> str:
    if data_coding in _SMPP_CODECS:
        return _SMPP_CODECS[data_coding]
    if data_coding >= 0xF0:  # message class group: bit 2 picks default alphabet or 8-bit
        return "latin-1" if data_coding & 0x04 else "gsm7"
    if data_coding >= 0xE0:  # message waiting, store, UCS-2
        return "ucs2"
    if data_coding >= 0xC0:  # message waiting, discard or store, default alphabet
        return "gsm7"
    if data_coding < 0x80:  # general coding groups: alphabet in bits 3-2
        return _GSM_ALPHABETS[(data_coding >> 2) & 0x03]
    return "latin-1"  # reserved: keep the octets


def _gsm_tables() -> tuple[dict[int, str], dict[int, str]]:
    """The default and extension tables, read from the gsm0338 codec hub.text uses."""
    basic: dict[int, str] = {}
    extension: dict[int, str] = {}
    for septet in range(0x80):
        for table, raw in ((basic, bytes((septet,))), (extension, bytes((_ESC, septet)))):
            try:
                table[septet] = raw.decode("gsm03.38")
            except UnicodeDecodeError:
                continue
    # 23.038 6.2.1.1: an ESC the receiver cannot read shows as a space; an unknown
    # extension septet shows as its default-table character (the fallback below).
    basic[_ESC] = " "
    return basic, extension


_GSM_BASIC, _GSM_EXTENSION = _gsm_tables()


def _decode_gsm7(data: bytes) -> str:
    if not data.isascii():
        # Octets above 0x7F are not septets: an SMSC whose "default" is Latin-1.
        return data.decode("latin-1")
    if _ESC not in data:  # the common case, translated in C
        return data.decode("latin-1").translate(_GSM_BASIC)
    out: list[str] = []
    escaped = False
    for septet in data:
        if escaped:
            out.append(_GSM_EXTENSION.get(septet) or _GSM_BASIC[septet])
            escaped = False
        elif septet == _ESC:
            escaped = True
        else:
            out.append(_GSM_BASIC[septet])
    return "".join(out)  # a trailing lone ESC is dropped: it announced nothing
