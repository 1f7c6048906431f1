"""GSM 03.38 / UCS-2 encoding choice, unit and segment counts, and splitting."""

from __future__ import annotations

import random

import gsm0338  # noqa: F401  (registers the codec used as the reference below)
import pytest

from hub.model import Encoding
from hub.text import GSM7_BASIC, GSM7_EXTENSION, measure, split

EMOJI = "\U0001f600"


def _reference_parts(text: str) -> tuple[Encoding, int, list[str]]:
    """Independent count through the gsm0338 codec itself, one character at a time."""
    try:
        # The codec would accept a lone ESC (U+001B); a handset would merge it with the
        # next character, so hub.text deliberately treats it as not GSM.
        if "\x1b" in text:
            raise UnicodeEncodeError("gsm03.38", text, 0, 1, "lone escape")
        widths = [len(c.encode("gsm03.38")) for c in text]
        encoding, single, part = Encoding.GSM7, 160, 153
    except UnicodeEncodeError:
        widths = [len(c.encode("utf-16-le", "surrogatepass")) // 2 for c in text]
        encoding, single, part = Encoding.UCS2, 70, 67
    units = sum(widths)
    if units <= single:
        return encoding, units, [text]
    parts, current, used = [], "", 0
    for char, width in zip(text, widths, strict=True):
        if used + width > part:
            parts.append(current)
            current, used = "", 0
        current += char
        used += width
    return encoding, units, [*parts, current]


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)]
)
def test_gsm_text_segments_at_160_then_153(length: int, segments: int) -> None:
    assert measure("a" * length) == (Encoding.GSM7, length, segments)


@pytest.mark.parametrize(("count", "segments"), [(80, 1), (81, 2)])
def test_extension_characters_count_two_septets(count: int, segments: int) -> None:
    assert measure("€" * count) == (Encoding.GSM7, 2 * count, segments)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_each_extension_character_is_gsm_and_counts_twice(char: str) -> None:
    assert measure(f"a{char}b") == (Encoding.GSM7, 4, 1)


def test_escape_pair_at_a_part_boundary_moves_to_the_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the € would need septets 153 and 154
    parts = split(text)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert measure(text) == (Encoding.GSM7, 164, 2)


def test_escape_pair_that_exactly_fills_a_part_stays_in_it() -> None:
    text = "a" * 151 + "€" + "b" * 10
    assert split(text) == ["a" * 151 + "€", "b" * 10]


def test_boundary_escape_pair_can_add_a_segment() -> None:
    text = "€" * 153  # 306 septets, but 76 pairs fill a part to 152 only
    assert measure(text) == (Encoding.GSM7, 306, 3)
    assert [len(part) for part in split(text)] == [76, 76, 1]


@pytest.mark.parametrize(
    "text", ["£ ¥ è é ù ì ò Ç Ø ø Å å Δ _ Φ Γ Λ Ω", "Π Ψ Σ Θ Ξ Æ æ ß É Ä Ö Ñ Ü § ¿ ä ö ñ ü à ¡ ¤"]
)
def test_non_ascii_basic_characters_stay_gsm_and_count_once(text: str) -> None:
    assert measure(text) == (Encoding.GSM7, len(text), 1)


@pytest.mark.parametrize("char", ["`", "ç", "á", "\x00", "\x1b", EMOJI])
def test_character_outside_gsm_forces_ucs2(char: str) -> None:
    assert measure(f"Hello {char}")[0] is Encoding.UCS2


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_text_segments_at_70_then_67(length: int, segments: int) -> None:
    assert measure("ç" * length) == (Encoding.UCS2, length, segments)


def test_emoji_counts_two_units() -> None:
    assert measure(EMOJI) == (Encoding.UCS2, 2, 1)
    assert measure("a" * 68 + EMOJI) == (Encoding.UCS2, 70, 1)
    assert measure("a" * 69 + EMOJI) == (Encoding.UCS2, 71, 2)


def test_emoji_at_a_part_boundary_is_not_split() -> None:
    text = "ç" * 66 + EMOJI + "ç" * 10  # the pair would need units 67 and 68
    assert split(text) == ["ç" * 66, EMOJI + "ç" * 10]
    assert measure(text) == (Encoding.UCS2, 78, 2)


def test_empty_text_is_one_empty_gsm_segment() -> None:
    assert measure("") == (Encoding.GSM7, 0, 1)
    assert split("") == [""]


def test_single_part_text_is_returned_whole() -> None:
    assert split("Your code is 123456") == ["Your code is 123456"]


def test_tables_come_from_the_codec_and_exclude_the_escape_itself() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points less ESC
    assert set("\f^{}\\[~]|€") == GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC
    assert not GSM7_BASIC & GSM7_EXTENSION


def test_fast_path_agrees_with_the_codec_on_random_text() -> None:
    rng = random.Random(338)
    basic = "aZ09 .,!?\n@£éΔ"
    gsm = basic + "€[]{}^~\\|\f"
    outsiders = "`çá\x1b" + EMOJI + "\u4e2d"
    for trial in range(4500):
        common = (basic, gsm, gsm)[trial % 3]
        rare = common + outsiders if trial % 2 else common
        # Mostly the common alphabet with a rare outsider, so that multipart GSM and
        # multipart UCS-2, with and without two-unit characters, all occur often.
        length = rng.randrange(0, 500)
        text = "".join(rng.choice(rare if rng.random() < 0.02 else common) for _ in range(length))
        encoding, units, parts = _reference_parts(text)
        assert measure(text) == (encoding, units, len(parts)), repr(text)
        assert split(text) == parts, repr(text)
