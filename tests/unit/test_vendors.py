"""The vendors' formats parsed once for every transport: Clickatell's key:value document
(text/data order, to: lists, unicode hex, templates) and WinSMS CCYYMMDDHHmm times."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.vendors import clickatell, winsms

SA = ZoneInfo("Africa/Johannesburg")


def _settings(document: str) -> clickatell.Settings:
    return clickatell.settings(clickatell.key_values(document.split("\n")))


def _messages(document: str) -> list[clickatell.Sms]:
    lines = document.split("\n")
    found = clickatell.settings(clickatell.key_values(lines))
    return list(clickatell.messages(clickatell.key_values(lines), found))


# --- Clickatell key:value ------------------------------------------------------------


def test_text_repeated_inserts_a_newline_and_data_joins_in_order() -> None:
    # The case email and FTP once disagreed on: lines join in the order written.
    found = _settings("text:Hello\ndata: world\ntext:again\nto:0821234567")
    assert found.text == "Hello world\nagain"


def test_data_first_then_text_gets_a_newline_before_the_text() -> None:
    assert _settings("data:a\ntext:b\ndata:c").text == "a\nbc"


def test_trailing_blanks_and_crlf_are_not_part_of_a_value() -> None:
    assert _settings("text:Hi  \r\ndata: there\r\n").text == "Hi there"


def test_a_to_line_may_list_several_numbers_and_to_repeats() -> None:
    [first, second] = _messages("text:Hi\nto: 0821234567, 0831234567,\nto:27841234567")
    assert first.numbers == ("0821234567", "0831234567") and first.line == 2
    assert second.numbers == ("27841234567",) and second.line == 3
    assert first.text == second.text == "Hi" and not first.template


def test_keys_in_any_case_and_other_lines_ignored() -> None:
    found = _settings("API_ID:1\nUser:bob\nPassword:x\nText:Hi\nnonsense\nhttp//x\nFrom: ACME ")
    assert found.text == "Hi" and found.sender == "ACME"


def test_unicode_text_is_ucs2_hex_across_text_lines() -> None:
    assert _settings("unicode:1\ntext:00430061\ntext:00660065").text == "Cafe"
    assert clickatell.ucs2_hex(" 0048 0069 ") == "Hi"


@pytest.mark.parametrize("bad", ["zz", "004", "004800"])
def test_bad_hex_raises_and_the_key_value_text_stays_as_written(bad: str) -> None:
    with pytest.raises(ValueError):
        clickatell.ucs2_hex(bad)
    assert _settings(f"unicode:1\ntext:{bad}").text == bad


def test_without_unicode_1_hex_looking_text_is_plain() -> None:
    assert _settings("unicode:0\ntext:0048").text == "0048"


def test_template_rows_number_first_at_the_delimiter() -> None:
    rows = _messages("text:Hi #field1#, pay #field2# #field3#\ndelimiter:|\n"
                     "csv: 0821234567|Fred|R15\ncsv:27831234567|Ann|#field2#")
    assert [(r.line, r.numbers, r.text, r.template) for r in rows] == [
        (3, ("0821234567",), "Hi Fred, pay R15 #field3#", True),
        (4, ("27831234567",), "Hi Ann, pay #field2# #field3#", True)]


def test_default_delimiter_is_a_comma() -> None:
    [row] = _messages("text:Hi #field1#\ncsv:0821234567,Fred")
    assert row.text == "Hi Fred"


def test_climsgid_only_for_a_document_of_one_sms() -> None:
    assert _settings("climsgid:abc\nto:0821234567").client_ref == "abc"
    assert _settings("climsgid:abc\nto:0821234567,0831234567").client_ref is None
    assert _settings("climsgid:abc\nto:0821234567\ncsv:0831234567").client_ref is None


def test_body_for_mail_keeps_to_numbers_and_rows_apart() -> None:
    body = clickatell.parse_body("text:Hi #field1#\nto:0821234567,0831234567\n"
                                 "csv:0841234567,Ann\nreply:a@x.co.za, b@x.co.za\n")
    assert body.to == ["0821234567", "0831234567"]
    assert body.rows == [("0841234567", "Hi Ann")]
    assert body.reply == ["a@x.co.za", "b@x.co.za"]


def test_first_line_detection() -> None:
    assert clickatell.looks_like_key_value("api_id:1234")
    assert clickatell.looks_like_key_value(" Text : Hi")
    assert not clickatell.looks_like_key_value("to,text")
    assert not clickatell.looks_like_key_value("hello: world")


# --- WinSMS times ----------------------------------------------------------------------


def test_winsms_time_in_the_zone_given() -> None:
    moment = winsms.parse_time(" 201811141025 ", SA)
    assert moment.astimezone(UTC) == datetime(2018, 11, 14, 8, 25, tzinfo=UTC)
    assert winsms.parse_time("201811141025", UTC).hour == 10
    assert winsms.format_time(moment, SA) == "201811141025"
    assert winsms.format_time(datetime(2018, 11, 14, 8, 25, tzinfo=UTC), SA) == "201811141025"


@pytest.mark.parametrize("bad", ["", "2018111410", "2018-11-14", "201813141025",
                                 "201811141060", "2018111410250"])
def test_winsms_time_refuses_anything_else(bad: str) -> None:
    with pytest.raises(ValueError, match="CCYYMMDDHHmm"):
        winsms.parse_time(bad, SA)


def test_winsms_shape_check_is_twelve_digits_only() -> None:
    assert winsms.is_time("201811141025") and winsms.is_time("201813141025")
    assert not winsms.is_time("Alert") and not winsms.is_time("2018111410")
