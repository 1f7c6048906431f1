"""SMPP message bodies: GSM-7/UCS-2 parts with UDH, SAR or message_payload, decoding of
deliver_sm bodies (hostile ones included) with their concatenation headers."""

from __future__ import annotations

import random

import pytest

from adapters.carriers.smpp.encoding import (
    ESM_UDHI,
    TAG_MESSAGE_PAYLOAD,
    TAG_SAR_MSG_REF_NUM,
    TAG_SAR_SEGMENT_SEQNUM,
    TAG_SAR_TOTAL_SEGMENTS,
    Concat,
    Decoded,
    Encoded,
    decode_short_message,
    decode_text,
    encode_message,
)
from hub.text import GSM7_BASIC, GSM7_EXTENSION, measure

EMOJI = "\U0001f600"
GREEK = "αβγδεζηθικλμνξοπρστυφχψω"


def _round_trip(encoded: Encoded) -> str:
    """Every part through decode_short_message, in reverse order, joined by sequence."""
    texts: dict[int, str] = {}
    for part in reversed(encoded.parts):
        decoded = decode_short_message(encoded.data_coding, part.esm_class,
                                       part.short_message, part.tlvs)
        if decoded.concat is None:
            return decoded.text
        assert decoded.concat.total == len(encoded.parts)
        texts[decoded.concat.seq] = decoded.text
    return "".join(texts[seq] for seq in sorted(texts))


def _units(encoded: Encoded, header: int) -> list[int]:
    """Septets or UCS-2 units in each part's text, its `header` octets of UDH left out."""
    width = 2 if encoded.data_coding == 8 else 1
    return [(len(p.short_message) - header) // width for p in encoded.parts]


def _texts(count: int, seed: int) -> list[str]:
    """Random texts across both alphabets, extension characters and emoji included,
    of every length from one part to six."""
    rng = random.Random(seed)
    pools = ["abc XYZ 0123.,", "".join(sorted(GSM7_BASIC)), "".join(sorted(GSM7_EXTENSION)),
             GREEK, EMOJI + "é€"]
    texts = []
    for _ in range(count):
        alphabet = "".join(rng.sample(pools, rng.randint(1, 3)))
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 900))))
    return texts


# --- choosing the alphabet and fitting one part ------------------------------------


def test_160_gsm_characters_are_one_plain_part() -> None:
    encoded = encode_message("a" * 160, long_mode="udh", ref=1)
    assert encoded.data_coding == 0
    assert len(encoded.parts) == 1
    assert encoded.parts[0].short_message == b"a" * 160
    assert encoded.parts[0].esm_class == 0
    assert encoded.parts[0].tlvs == ()


def test_161_gsm_characters_are_two_udh_parts_of_153_and_8() -> None:
    encoded = encode_message("a" * 161, long_mode="udh", ref=0x1234)
    assert [p.short_message[:6] for p in encoded.parts] == [
        bytes([5, 0, 3, 0x34, 2, 1]), bytes([5, 0, 3, 0x34, 2, 2])]
    assert [len(p.short_message) - 6 for p in encoded.parts] == [153, 8]
    assert all(p.esm_class == ESM_UDHI for p in encoded.parts)


def test_gsm_is_unpacked_septets_with_extension_characters_as_escape_pairs() -> None:
    encoded = encode_message("@£$ €{}", long_mode="udh", ref=0)
    assert encoded.parts[0].short_message == b"\x00\x01\x02\x20\x1b\x65\x1b\x28\x1b\x29"


def test_70_ucs2_units_are_one_part_and_71_are_two() -> None:
    single = encode_message("ж" * 70, long_mode="udh", ref=0)
    assert single.data_coding == 8
    assert single.parts[0].short_message == ("ж" * 70).encode("utf-16-be")
    double = encode_message("ж" * 71, long_mode="udh", ref=0)
    assert [len(p.short_message) - 6 for p in double.parts] == [134, 8]


def test_data_coding_values_come_from_the_carrier_settings() -> None:
    assert encode_message("hi", long_mode="udh", ref=0, gsm7_data_coding=1).data_coding == 1
    assert encode_message("ж", long_mode="udh", ref=0, ucs2_data_coding=0x18).data_coding == 0x18


# --- splitting ---------------------------------------------------------------------


def test_euro_at_septet_153_moves_whole_to_the_second_part() -> None:
    text = "a" * 152 + "€" + "b" * 20
    parts = encode_message(text, long_mode="udh", ref=9).parts
    first, second = (p.short_message[6:] for p in parts)
    assert first == b"a" * 152  # one short: the ESC may not be cut from its '€'
    assert second.startswith(b"\x1b\x65")
    assert _round_trip(Encoded(0, parts)) == text


def test_emoji_at_the_ucs2_boundary_is_never_split() -> None:
    text = "ж" * 66 + EMOJI + "ж" * 10  # the pair would need units 67 and 68
    parts = encode_message(text, long_mode="udh", ref=3).parts
    assert len(parts[0].short_message) - 6 == 66 * 2
    assert parts[1].short_message[6:8] == EMOJI.encode("utf-16-be")[:2]
    assert _round_trip(Encoded(8, parts)) == text


def test_400_character_ucs2_message_splits_into_six_and_reassembles() -> None:
    text = (GREEK * 20)[:400]
    encoded = encode_message(text, long_mode="udh", ref=200)
    assert encoded.data_coding == 8
    assert len(encoded.parts) == 6 == measure(text)[2]
    assert all(len(p.short_message) <= 140 for p in encoded.parts)
    assert _round_trip(encoded) == text


@pytest.mark.parametrize("mode", ["udh", "sar"])
def test_part_count_always_equals_what_intake_billed(mode: str) -> None:
    for text in _texts(400, seed=11):
        encoded = encode_message(text, long_mode=mode, ref=5)  # type: ignore[arg-type]
        assert len(encoded.parts) == measure(text)[2], text
        if len(encoded.parts) == 1:
            assert _units(encoded, 0)[0] <= (70 if encoded.data_coding == 8 else 160)
        else:
            limit = 67 if encoded.data_coding == 8 else 153
            assert max(_units(encoded, 6 if mode == "udh" else 0)) <= limit
        assert _round_trip(encoded) == text


def test_sar_mode_puts_plain_text_in_short_message_and_position_in_tlvs() -> None:
    encoded = encode_message("x" * 200, long_mode="sar", ref=0x1_0203)
    assert [p.short_message for p in encoded.parts] == [b"x" * 153, b"x" * 47]
    assert all(p.esm_class == 0 for p in encoded.parts)
    assert encoded.parts[1].tlvs == (
        (TAG_SAR_MSG_REF_NUM, b"\x02\x03"), (TAG_SAR_TOTAL_SEGMENTS, b"\x02"),
        (TAG_SAR_SEGMENT_SEQNUM, b"\x02"))


def test_payload_mode_sends_one_pdu_with_the_whole_text_in_message_payload() -> None:
    text = "€" * 100 + "z" * 300
    encoded = encode_message(text, long_mode="payload", ref=0)
    (part,) = encoded.parts
    assert part.short_message == b""
    assert part.esm_class == 0
    assert part.tlvs == ((TAG_MESSAGE_PAYLOAD, b"\x1b\x65" * 100 + b"z" * 300),)
    decoded = decode_short_message(0, 0, part.short_message, part.tlvs)
    assert decoded == Decoded(text)


def test_payload_mode_sends_a_short_text_in_short_message() -> None:
    assert encode_message("hi", long_mode="payload", ref=0).parts[0].short_message == b"hi"


def test_16_bit_reference_header_leaves_152_septets_per_part() -> None:
    encoded = encode_message("a" * 306, long_mode="udh", ref=0xABCD, ref16=True)
    assert [p.short_message[:7] for p in encoded.parts] == [
        bytes([6, 8, 4, 0xAB, 0xCD, 3, seq]) for seq in (1, 2, 3)]
    assert [len(p.short_message) - 7 for p in encoded.parts] == [152, 152, 2]
    assert _round_trip(encoded) == "a" * 306


def test_16_bit_reference_parts_keep_pairs_whole_and_fit_152_or_66_units() -> None:
    for text in _texts(200, seed=12):
        encoded = encode_message(text, long_mode="udh", ref=0x4242, ref16=True)
        if len(encoded.parts) > 1:
            assert max(_units(encoded, 7)) <= (66 if encoded.data_coding == 8 else 152)
        assert measure(text)[2] <= len(encoded.parts) <= measure(text)[2] + 1
        assert _round_trip(encoded) == text


@pytest.mark.parametrize(("text", "first_units"), [
    ("a" * 151 + "€" + "b" * 10, 151),  # the pair would need septets 152 and 153
    ("ж" * 65 + EMOJI + "ж" * 10, 65),  # the surrogate pair would need units 66 and 67
])
def test_16_bit_reference_parts_never_split_a_pair(text: str, first_units: int) -> None:
    encoded = encode_message(text, long_mode="udh", ref=1, ref16=True)
    assert _units(encoded, 7)[0] == first_units
    assert _round_trip(encoded) == text


def test_more_than_255_parts_is_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        encode_message("a" * 153 * 256, long_mode="udh", ref=0)


# --- decoding ----------------------------------------------------------------------


def test_udh_with_other_elements_before_the_concat_one_is_read() -> None:
    header = bytes([10, 0x24, 1, 0x01, 0x08, 4, 0x01, 0x02, 3, 2, 0x70, 0])  # + 2 junk
    decoded = decode_short_message(0, ESM_UDHI, header[:1] + header[1:11] + b"hi")
    assert decoded.concat == Concat(0x0102, 3, 2)  # 16-bit, big-endian
    assert decoded.text == "hi"


def test_udh_length_beyond_the_message_is_read_as_text() -> None:
    decoded = decode_short_message(0, ESM_UDHI, bytes([200, 0, 3, 1]) + b"abc")
    assert decoded.concat is None
    assert decoded.text.endswith("abc")


def test_zero_length_udh_leaves_the_text_and_no_concat() -> None:
    assert decode_short_message(0, ESM_UDHI, b"\x00hello") == Decoded("hello")


def test_udhi_on_an_empty_message_gives_empty_text() -> None:
    assert decode_short_message(0, ESM_UDHI, b"") == Decoded("")


@pytest.mark.parametrize("element", [
    bytes([0, 3, 7, 0, 1]),  # total 0
    bytes([0, 3, 7, 2, 3]),  # seq beyond total
    bytes([0, 3, 7, 2, 0]),  # seq 0
    bytes([0, 9, 7, 2, 1]),  # element length beyond the header
])
def test_impossible_concat_elements_are_ignored(element: bytes) -> None:
    decoded = decode_short_message(0, ESM_UDHI, bytes([len(element)]) + element + b"ok")
    assert decoded == Decoded("ok")


def test_sar_tlvs_give_the_position() -> None:
    tlvs = [(TAG_SAR_MSG_REF_NUM, b"\x01\x02"), (TAG_SAR_TOTAL_SEGMENTS, b"\x03"),
            (TAG_SAR_SEGMENT_SEQNUM, b"\x01")]
    assert decode_short_message(0, 0, b"part", tlvs) == Decoded("part", Concat(0x102, 3, 1))


def test_malformed_sar_tlvs_are_ignored() -> None:
    tlvs = [(TAG_SAR_MSG_REF_NUM, b""), (TAG_SAR_TOTAL_SEGMENTS, b"\x03"),
            (TAG_SAR_SEGMENT_SEQNUM, b"\x01")]
    assert decode_short_message(0, 0, b"part", tlvs) == Decoded("part")


def test_message_payload_replaces_an_empty_short_message() -> None:
    payload = "ж" * 100
    decoded = decode_short_message(8, 0, b"", [(TAG_MESSAGE_PAYLOAD, payload.encode("utf-16-be"))])
    assert decoded == Decoded(payload)


@pytest.mark.parametrize(("data_coding", "data", "text"), [
    (0, b"\x00\x01\x1b\x65", "@£€"),
    (0, b"caf\xe9", "café"),  # octets above 0x7F: Latin-1 under the "default" alphabet
    (0, b"a\x1b\x41b", "aAb"),  # unknown extension: the default-table character
    (0, b"ab\x1b", "ab"),  # trailing lone ESC
    (1, b"plain", "plain"),
    (1, b"\xe9t\xe9", "été"),
    (3, b"\xe9t\xe9", "été"),
    (8, "€".encode("utf-16-be"), "€"),
    (8, b"\x00a\x00", "a\ufffd"),  # odd length
    (8, b"\xd8\x3d\x00a", "\ufffda"),  # lone high surrogate
    (0xF0, b"\x1b\x65", "€"),  # message class group, default alphabet
    (0xF4, b"\xe9", "é"),  # message class group, 8-bit
    (0x08 | 0x10, "ж".encode("utf-16-be"), "ж"),  # GSM general group with class, UCS-2
    (0x99, b"\xe9", "é"),  # reserved: the octets kept
])
def test_each_data_coding_decodes_by_its_alphabet(data_coding: int, data: bytes,
                                                  text: str) -> None:
    assert decode_text(data_coding, data) == text


def test_gsm_decoding_agrees_with_the_codec_on_every_gsm_character() -> None:
    text = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
    assert decode_text(0, text.encode("gsm03.38")) == text


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20261125)
    codings = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 0x18, 0xC0, 0xE0, 0xF0, 0xF4, 0x99]
    for _ in range(3000):
        data = rng.randbytes(rng.randint(0, 160))
        tlvs = [(rng.choice([TAG_SAR_MSG_REF_NUM, TAG_SAR_TOTAL_SEGMENTS,
                             TAG_SAR_SEGMENT_SEQNUM, TAG_MESSAGE_PAYLOAD, 0x1234]),
                 rng.randbytes(rng.randint(0, 4))) for _ in range(rng.randint(0, 4))]
        decoded = decode_short_message(rng.choice(codings), rng.randrange(256), data, tlvs)
        assert isinstance(decoded.text, str)
        if decoded.concat is not None:
            assert 1 <= decoded.concat.seq <= decoded.concat.total


