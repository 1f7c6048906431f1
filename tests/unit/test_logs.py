"""The privacy filter's rewriting, record by record (hub/logs.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from hub import logs
from hub.logs import PrivacyFilter, scrub
from hub.privacy import pseudonym

KEY = b"k" * 32
TAG = pseudonym("+27821234590", KEY).partition("#")[2]  # the number's keyed hash


@pytest.fixture(autouse=True)
def keyed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(logs, "_key", [KEY])
    yield


@pytest.mark.parametrize(("raw", "shown"), [
    ("b'RCPT TO:<27821234590@sms.example>'", f"b'RCPT TO:<27******590#{TAG}@sms.example>'"),
    ("to +27821234590.", f"to +27******590#{TAG}."),
    ("AUTH PLAIN AGFjbWUAc2VjcmV0", "AUTH PLAIN [redacted]"),
    ("<- PASS hunter2", "<- PASS [redacted]"),
    ("{'authorization': 'Bearer abc.def'}", "{'authorization': 'Bearer [redacted]'}"),
    ("GET /x?api_key=abc&password=pw", "GET /x?api_key=[redacted]&password=[redacted]"),
    ("key shk_0123ab_Zx-9", "key [redacted]"),
    ("batch 1234567 of 3", "batch 1234567 of 3"),  # 7 digits: not a number to mask
    # An id with eight digits in a row by chance stays whole; a number beside it does not.
    ("batch 01M93KRG1TMBD77WVN24060000 (paused.csv) to 27821234590",
     f"batch 01M93KRG1TMBD77WVN24060000 (paused.csv) to 27******590#{TAG}"),
    ("file 01M93KRG1TMBD77WVN24060000.csv", "file 01M93KRG1TMBD77WVN24060000.csv"),
    # Not an id: 26 characters with no letter, or 27 characters, are masked as before.
    ("x 27821234590123456789012345",
     "x " + pseudonym("+27821234590123456789012345", KEY)[1:]),
    ("x 01M93KRG1TMBD77WVN24060000A",
     "x 01M93KRG1TMBD77WVN" + pseudonym("+24060000", KEY)[1:] + "A"),
])
def test_scrub_masks_numbers_and_redacts_secrets_and_texts(raw: str, shown: str) -> None:
    assert scrub(raw) == shown


def test_a_number_has_one_pseudonym_per_key_and_our_lines_use_it() -> None:
    assert logs.number("+27821234590") == f"+27******590#{TAG}"
    assert pseudonym("+27821234590", b"another key") != f"+27******590#{TAG}"
    assert pseudonym("+27821234591", KEY).partition("#")[2] != TAG


def test_aiosmtpd_auth_and_data_lines_keep_only_their_format() -> None:
    record = logging.LogRecord("mail.log", logging.DEBUG, __file__, 1, "DATA readline: %s",
                               (b"the secret text",), None, func="smtp_DATA")
    assert PrivacyFilter().filter(record)
    assert "secret" not in record.getMessage()


def test_sqlalchemy_parameters_and_rows_are_dropped_at_debug() -> None:
    for msg, args in (("[generated in 0.0001s] %r", (("Canary text", "+27821234590"),)),
                      ("Row %r", (("01J", "Canary text"),))):
        record = logging.LogRecord("sqlalchemy.engine.Engine", logging.DEBUG, __file__, 1,
                                   msg, args, None)
        assert PrivacyFilter().filter(record)
        assert "Canary" not in record.getMessage() and "821234590" not in record.getMessage()
