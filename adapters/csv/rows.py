"""One row of a batch file, whatever its format: where it starts, the recipient as
written, and what to submit or why it cannot be; the leaf every format module builds on."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from hub.model import Refused, Submission, record

_SCIENTIFIC = re.compile(r"\d+(?:[.,]\d+)?[eE]\+?\d+")


@record
class Row:
    """One input row: where it started, the recipient as written, and what to submit."""

    line: int
    given: str
    submission: Submission | None = None
    refused: Refused | None = None


@dataclass(frozen=True, slots=True)
class FileRules:
    region: str
    timezone: str


def check_recipient(raw: str, region: str) -> Refused | None:
    """Refuse numbers a spreadsheet has changed: the digits lost cannot be recovered."""
    value = raw.strip()
    # The regex only where it can match: this runs once per row of a million-row file.
    if ("e" in value or "E" in value) and _SCIENTIFIC.fullmatch(value):
        return Refused("number_mangled", f"'{value}' is in scientific notation, so digits "
                       "were lost (a spreadsheet did this): format the column as text")
    if value.isdigit() and not value.startswith("0"):
        code = str(phonenumbers.country_code_for_region(region))
        if not value.startswith(code):
            return Refused("leading_zero_lost", f"'{value}' has no leading 0, + or country "
                           f"code {code}: was the 0 lost in a spreadsheet? Write it as "
                           f"0{value} or +{code}{value} if that is what is meant")
    return None


def make_row(line: int, given: str, submission: Submission, region: str) -> Row:
    refused = check_recipient(given, region)
    if refused is not None:
        return Row(line, given, refused=refused)
    return Row(line, given, submission=submission)
