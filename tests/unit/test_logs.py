"""The privacy filter's rewriting, record by record (hub/logs.py)."""

from __future__ import annotations

import logging

import pytest

from hub.logs import PrivacyFilter, scrub


@pytest.mark.parametrize(("raw", "shown"), [
    ("b'RCPT TO:<27821234590@sms.example>'", "b'RCPT TO:<27******590@sms.example>'"),
    ("to +27821234590.", "to +27******590."),
    ("AUTH PLAIN AGFjbWUAc2VjcmV0", "AUTH PLAIN [redacted]"),
    ("<- PASS hunter2", "<- PASS [redacted]"),
    ("{'authorization': 'Bearer abc.def'}", "{'authorization': 'Bearer [redacted]'}"),
    ("GET /x?api_key=abc&password=pw", "GET /x?api_key=[redacted]&password=[redacted]"),
    ("key shk_0123ab_Zx-9", "key [redacted]"),
    ("batch 1234567 of 3", "batch 1234567 of 3"),  # 7 digits: not a number to mask
])
def test_scrub_masks_numbers_and_redacts_secrets(raw: str, shown: str) -> None:
    assert scrub(raw) == shown


def test_aiosmtpd_auth_and_data_lines_keep_only_their_format() -> None:
    record = logging.LogRecord("mail.log", logging.DEBUG, __file__, 1, "DATA readline: %s",
                               (b"the secret text",), None, func="smtp_DATA")
    assert PrivacyFilter().filter(record)
    assert "secret" not in record.getMessage()
