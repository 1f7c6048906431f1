"""Phone number normalisation to E.164, its refusals, and log masking."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from hub import numbers
from hub.errors import Rejected
from hub.numbers import MAX_LENGTH, mask, normalise, with_plus


@pytest.mark.parametrize(
    "raw",
    [
        "0821234567",
        "+27 82 123 4567",
        "27821234567",
        "0027821234567",
        "082-123-4567",
        "(082) 123 4567",
        "082.123.4567",
        " 082 123 4567\n",
        "\u00a0082\u00a0123\u00a04567",  # non-breaking spaces, as spreadsheets export
    ],
)
def test_every_written_form_of_a_za_mobile_is_the_same_recipient(raw: str) -> None:
    assert normalise(raw, "ZA") == "+27821234567"


@pytest.mark.parametrize(("raw", "read"), [
    ("27821234567", "+27821234567"),
    (" 447911123456 ", "+447911123456"),  # foreign: as a ZA national number, refused
    ("0821234567", "0821234567"),  # a local form keeps its 0 and its region
    ("+27821234567", "+27821234567"),
    ("27 82 123 4567", "27 82 123 4567"),  # written by hand: normalise decides
    ("12", "+12"),
    ("", ""),
])
def test_numbers_vendors_write_international_without_a_plus_get_it(raw: str,
                                                                   read: str) -> None:
    assert with_plus(raw) == read


def test_a_foreign_number_without_its_plus_is_refused_as_national_but_read_with_it() -> None:
    with pytest.raises(Rejected):
        normalise("447911123456", "ZA")
    assert normalise(with_plus("447911123456"), "ZA") == "+447911123456"


def test_international_number_keeps_its_own_country_code() -> None:
    assert normalise("+4916012345678", "ZA") == "+4916012345678"


def test_national_form_is_read_in_the_given_region() -> None:
    assert normalise("01601 2345678", "DE") == "+4916012345678"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12345", "'12345' is not a valid phone number for ZA: too short"),
        ("08212345678", "'08212345678' is not a valid phone number for ZA: too long"),
        # phonenumbers' ZA mobile pattern takes 5-9 digits; no ZA network delivers those.
        ("082123", "'082123' is not a valid phone number for ZA: too short (5 digits"),
        ("+27821234", "'+27821234' is not a valid phone number for ZA: too short (6 digits"),
        ("08212345", "'08212345' is not a valid phone number for ZA: too short"),
        ("+4916012", "'+4916012' is not a valid phone number for DE: too short"),
        ("+999 1234567", "'+999 1234567' has an unknown country code"),
        ("0", "'0' is not a phone number"),
        ("+", "'+' has no digits"),
        ("082+1234567", "'082+1234567' has a '+' that is not at the start"),
        ("++27821234567", "'++27821234567' has a '+' that is not at the start"),
        ("082#1234567", "'082#1234567' contains an unexpected character '#'"),
        ("", "the phone number is empty"),
        ("   ", "the phone number is empty"),
    ],
)
def test_invalid_number_is_rejected_with_a_specific_reason(raw: str, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        normalise(raw, "ZA")
    assert caught.value.code == "invalid_number"
    assert caught.value.reason.startswith(reason)


@pytest.mark.parametrize("raw", ["1-800-FLOWERS", "0821234567 ext. 12", "082123456O"])
def test_letters_are_rejected_not_read_as_vanity_digits(raw: str) -> None:
    with pytest.raises(Rejected, match="contains letters"):
        normalise(raw, "ZA")


def test_over_long_input_is_rejected_without_echoing_all_of_it() -> None:
    raw = "0" * (MAX_LENGTH + 1000)
    with pytest.raises(Rejected, match="too long") as caught:
        normalise(raw, "ZA")
    assert len(caught.value.reason) < MAX_LENGTH + 50


def test_input_of_exactly_the_maximum_length_is_still_parsed() -> None:
    raw = "082 123 4567".ljust(MAX_LENGTH)
    assert normalise(raw, "ZA") == "+27821234567"


def test_repeated_invalid_number_raises_a_fresh_rejection_each_time() -> None:
    caught = []
    for _ in range(2):
        with pytest.raises(Rejected) as info:
            normalise("12345", "ZA")
        caught.append(info.value)
    first, second = caught
    assert first is not second
    assert first.reason == second.reason


def test_cached_result_depends_on_the_region() -> None:
    assert normalise("0821234567", "ZA") == "+27821234567"
    with pytest.raises(Rejected, match="for GB"):
        normalise("0821234567", "GB")


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+27821234567", "+27******567"),
        ("+4916012345678", "+49********678"),
        ("+16502530000", "+1*******000"),
        ("+35312345678", "+353*****678"),
    ],
)
def test_mask_keeps_only_country_code_and_last_three_digits(e164: str, masked: str) -> None:
    assert mask(e164) == masked


@pytest.mark.parametrize("text", ["0821234567", "+27 82 123 4567", "+2712", ""])
def test_mask_never_shows_a_whole_number(text: str) -> None:
    digits = "".join(c for c in text if c.isdigit())
    masked = mask(text)
    assert digits == "" or digits not in masked
    assert sum(c.isdigit() for c in masked) <= 6


EVERY_CODE = [str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]


def test_quick_path_agrees_with_phonenumbers_wherever_it_answers() -> None:
    """The digit-only fast path may decline, but whenever it answers it must give what
    phonenumbers' full parse and validation give (seeded random forms, many regions)."""
    def reference(text: str, region: str) -> str | None:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    rnd = random.Random(20261125)
    answered = 0
    for _ in range(60_000):
        region = rnd.choice(["ZA", "GB", "DE", "US", "IT", "AR", "MX", "BR", "NG", "KE", "IN"])
        form = rnd.choice(["+", "00", "0"])
        code = rnd.choice([*EVERY_CODE, "27", "27", "27", "44", "1", "39", ""])
        body = rnd.choice(["", "82", "83", "7"]) + "".join(
            rnd.choice("0123456789") for _ in range(rnd.randint(5, 11)))
        text = form + (code if form != "0" else "") + body
        quick = numbers._quick(text, region)
        if quick is not None:
            answered += 1
            assert quick == reference(text, region), (text, region)
    assert answered > 3000  # the fast path really is exercised


def test_compiled_validator_agrees_with_phonenumbers_both_ways() -> None:
    """The per-length joined patterns accept exactly the national numbers phonenumbers
    validates: valid ones (from its own examples) and random digits alike."""
    rnd = random.Random(112358)
    checked = valid_seen = 0
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        valid = numbers._validator(code)
        if valid is None:
            continue
        region = phonenumbers.region_code_for_country_code(code)
        candidates = [
            str(example.national_number)
            for kind in phonenumbers.PhoneNumberType.values()
            if (example := phonenumbers.example_number_for_type(region, kind)) is not None
        ]
        candidates += ["".join(rnd.choice("0123456789") for _ in range(rnd.randint(4, 13)))
                       for _ in range(40)]
        for national in candidates:
            if national.startswith("0"):
                continue  # the quick path leaves these to phonenumbers
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
            expected = phonenumbers.is_valid_number(number)
            assert valid(national) is expected, (code, national)
            checked += 1
            valid_seen += expected
    assert checked > 5000 and valid_seen > 500
