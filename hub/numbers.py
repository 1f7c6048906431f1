"""Turn a phone number as a customer typed it into E.164, or refuse it with a reason;
and mask numbers for logs."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult

from hub.errors import Rejected

MAX_LENGTH = 32
CACHE_SIZE = 65_536  # batch files repeat numbers; about 22 MB when full

# Digits (any script: phonenumbers folds them), whitespace, and the separators people
# type. Anything else, including phonenumbers' vanity letters and "ext." suffixes, is
# refused rather than interpreted.
_SHAPE = re.compile(r"\+?[\d\s\-.()/]+")
_ODD_CHAR = re.compile(r"[^\d\s\-.()/+]")

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country code",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}
_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
}


def normalise(raw: str, region: str) -> str:
    """Return `raw` as E.164 (`+27821234567`), reading national forms as `region`.

    Raises Rejected("invalid_number", reason) for anything not a valid number.
    """
    if len(raw) > MAX_LENGTH:
        # Checked before the cache so junk of any size is never kept in it.
        reason = f"'{raw[:MAX_LENGTH]}...' is too long (over {MAX_LENGTH} characters)"
        raise Rejected("invalid_number", reason)
    ok, value = _normalise_cached(raw, region)
    if ok:
        return value
    raise Rejected("invalid_number", value)


def with_plus(raw: str) -> str:
    """A number as vendor APIs write it internationally, without the '+' (`27821234567`,
    `447911123456`: Clickatell's `to`, WinSMS's `numbers`, providers' callbacks), given
    its '+'; a local form with its 0 (`0821234567`), one with a '+' already, or anything
    else, as written. Read as they are, bare digits would be national numbers of the
    hub's region: a foreign number refused, and every one parsed the slow way."""
    text = raw.strip()
    return f"+{text}" if text.isdigit() and not text.startswith("0") else raw


def mask(e164: str) -> str:
    """`+27821234567` -> `+27******567`: country code and last 3 digits survive."""
    digits = e164[1:]
    if not (e164.startswith("+") and digits.isascii() and digits.isdigit() and len(digits) > 3):
        return "*" * len(e164)  # not E.164: show nothing rather than guess
    keep = _country_code_length(digits)
    rest = len(digits) - keep
    tail = 3 if rest > 3 else 0  # too short to show any digits and still hide some
    return f"+{digits[:keep]}{'*' * (rest - tail)}{digits[len(digits) - tail :]}"


@functools.lru_cache(maxsize=CACHE_SIZE)
def _normalise_cached(raw: str, region: str) -> tuple[bool, str]:
    """(True, e164) or (False, reason); failures are cached too, as text, so each
    caller still gets a fresh exception."""
    try:
        return True, _deliverable(raw, _normalise(raw, region))
    except Rejected as exc:
        return False, exc.reason


def _normalise(raw: str, region: str) -> str:
    text = raw.strip()
    quick = _quick(text, region)
    if quick is not None:
        return quick
    if _SHAPE.fullmatch(text) is None:
        raise Rejected("invalid_number", _shape_reason(raw, text))
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "could not be read")
        raise Rejected("invalid_number", f"'{raw}' {reason}") from exc
    if not phonenumbers.is_valid_number(number):
        raise Rejected("invalid_number", _invalid_reason(raw, number))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Where phonenumbers' data calls numbers valid that no network delivers to, the lengths
# of national significant number that are: its South African mobile pattern
# (`8[1-4]\d{3,7}`) accepts 5 to 9 digits, but every ZA number has 9. Elsewhere its
# per-type possible lengths hold (only FI/AX and NU list mobiles 3+ digits shorter than
# their example, and those are real: Finnish mobiles vary, Niue moved from 4 to 7).
_NSN_LENGTHS = {"27": ("ZA", frozenset({9}))}


def _deliverable(raw: str, e164: str) -> str:
    for code, (country, lengths) in _NSN_LENGTHS.items():
        size = len(e164) - 1 - len(code)
        if e164.startswith(f"+{code}") and size not in lengths:
            want = " or ".join(str(n) for n in sorted(lengths))
            why = "too short" if size < min(lengths) else "too long"
            raise Rejected("invalid_number", f"'{raw}' is not a valid phone number for "
                           f"{country}: {why} ({size} digits after +{code}; {country} "
                           f"numbers have {want})")
    return e164


# The plain digit forms batch files are full of: +CC..., 00CC..., 0... (national).
_PLAIN = re.compile(r"(\+|00|0)?([0-9]{6,17})")


def _quick(text: str, region: str) -> str | None:
    """E.164 for plain digit forms without phonenumbers' general parser (about half of
    its cost), or None to take the full path. Only answers for numbers phonenumbers
    itself validates, so it never accepts what the full path would refuse."""
    found = _PLAIN.fullmatch(text)
    if found is None:
        return None
    prefix, digits = found.groups()
    if prefix == "+" or (prefix == "00" and _international_prefix(region) == "00"):
        split = _split_country_code(digits)
    elif prefix == "0":
        split = _national(digits, region)
    else:
        return None  # bare digits: national or with country code? phonenumbers decides
    if split is None:
        return None
    code, national = split
    if national.startswith("0"):
        return None  # Italian-style leading zeros need phonenumbers' own handling
    valid = _validator(code)
    if valid is None:
        number = PhoneNumber(country_code=code, national_number=int(national))
        return f"+{code}{national}" if phonenumbers.is_valid_number(number) else None
    return f"+{code}{national}" if valid(national) else None


# The number types phonenumbers tries; a number is valid when the region's general
# pattern and at least one type's pattern (and possible lengths) match.
_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
          "uan", "voicemail", "fixed_line", "mobile")
_Desc = tuple[str, frozenset[int]]


@functools.lru_cache(maxsize=512)
def _validator(code: int) -> Callable[[str], bool] | None:
    """phonenumbers' validity test for one single-region country code, as one regex per
    number length (the general pattern as a lookahead, then the types of that length as
    alternatives), compiled once: phonenumbers looks each pattern up again on every call
    and tries the types one by one, which is most of its cost. None for shared codes like
    +1 and non-geographic ones: they need its region lookup."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    if len(regions) != 1 or regions[0] == "001":
        return None
    meta = phonenumbers.PhoneMetadata.metadata_for_region(regions[0])
    general = None if meta is None else _desc(meta.general_desc)
    if meta is None or general is None:
        return None
    types = [d for d in (_desc(getattr(meta, name, None)) for name in _TYPES) if d is not None]
    by_length: dict[int, re.Pattern[str] | None] = {}  # filled as lengths turn up

    def valid(national: str) -> bool:
        size = len(national)
        if size not in by_length:
            by_length[size] = _joined(general, types, size)
        pattern = by_length[size]
        return pattern is not None and pattern.fullmatch(national) is not None

    return valid


def _desc(desc: Any) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return desc.national_number_pattern, frozenset(desc.possible_length or ())


def _joined(general: _Desc, types: list[_Desc], length: int) -> re.Pattern[str] | None:
    """One pattern that fully matches a national number of `length` digits exactly when
    phonenumbers would call it valid: the general pattern (a lookahead to the end) and
    any type whose possible lengths allow it. None where no type can match."""
    if general[1] and length not in general[1]:
        return None
    fits = [p for p, allowed in types if not allowed or length in allowed]
    if not fits:
        return None
    alternatives = "|".join(f"(?:{p})" for p in fits)
    return re.compile(f"(?=(?:{general[0]})\\Z)(?:{alternatives})")


_COUNTRY_CODES = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


def _split_country_code(digits: str) -> tuple[int, str] | None:
    for size in (1, 2, 3):  # country codes are prefix-free (and none starts with 0)
        code = _COUNTRY_CODES.get(digits[:size])
        if code is not None:
            return code, digits[size:]
    return None


@functools.lru_cache(maxsize=512)
def _national_prefix(region: str) -> tuple[int, str] | None:
    """(country code, national prefix) where that prefix is simply stripped ("0" in ZA)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.national_prefix is None or meta.country_code is None:
        return None
    if meta.national_prefix_for_parsing not in (None, meta.national_prefix):
        return None  # carrier codes and other rewriting rules: the full path handles them
    return meta.country_code, meta.national_prefix


@functools.lru_cache(maxsize=512)
def _international_prefix(region: str) -> str | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return None if meta is None else meta.international_prefix


def _national(digits: str, region: str) -> tuple[int, str] | None:
    rule = _national_prefix(region)
    if rule is None or rule[1] != "0":
        return None
    return rule[0], digits


def _shape_reason(raw: str, text: str) -> str:
    if not text:
        return "the phone number is empty"
    if any(char.isalpha() for char in text):
        return f"'{raw}' contains letters"
    odd = _ODD_CHAR.search(text)
    if odd is not None:
        return f"'{raw}' contains an unexpected character {odd.group()!r}"
    if "+" in text[1:]:
        return f"'{raw}' has a '+' that is not at the start"
    return f"'{raw}' has no digits"


def _invalid_reason(raw: str, number: PhoneNumber) -> str:
    code = number.country_code or 0  # always set once parse() has succeeded
    country = phonenumbers.region_code_for_country_code(code)
    # Non-geographic codes (+800, +882...) have region "001": name them by code.
    where = country if country.isalpha() and country != "ZZ" else f"+{code}"
    result = phonenumbers.is_possible_number_with_reason(number)
    if result == ValidationResult.INVALID_COUNTRY_CODE:
        return f"'{raw}' has an unknown country code +{code}"
    prefix = f"'{raw}' is not a valid phone number for {where}"
    if result in _LENGTH_REASONS:
        return f"{prefix}: {_LENGTH_REASONS[result]}"
    return f"{prefix}{_length_hint(number, country)}"


def _length_hint(number: PhoneNumber, country: str) -> str:
    """Compare with the region's example mobile number, as phonenumbers' own length
    rules allow short codes and so call almost any length 'possible'."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return ""
    have = len(phonenumbers.national_significant_number(number))
    want = len(phonenumbers.national_significant_number(example))
    if have == want:
        return ": no such number range"
    size = "too short" if have < want else "too long"
    code = number.country_code
    return f": {size} ({have} digits after +{code}; {country} mobile numbers have {want})"


def _country_code_length(digits: str) -> int:
    # Country codes are prefix-free, so the first known prefix is the code.
    for length in (1, 2, 3):
        if int(digits[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return length
    return 0
