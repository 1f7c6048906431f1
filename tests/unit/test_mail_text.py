"""Mail to SMS text: body choice and decoding, reply/signature stripping, cut markers,
subject conventions, truncation and Clickatell's key:value body."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from adapters.smtp import text as mail_text
from adapters.vendors import clickatell
from hub.errors import Rejected
from hub.mail import DEFAULT_CUT_MARKERS, SubjectMode, TooLongMode
from hub.text import measure
from tests.factories import nested_multipart


def _mail(plain: str | None = None, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    if plain is not None:
        message.set_content(plain)
    if html is not None:
        if plain is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return mail_text.parse(message.as_bytes())


def test_plain_text_is_preferred_over_html() -> None:
    assert mail_text.body(_mail("plain words", "<p>html words</p>")).text == "plain words"


def test_html_only_mail_becomes_readable_text() -> None:
    found = mail_text.body(_mail(html="<html><body><p>Server <b>down</b></p>"
                                      "<p>Call&nbsp;ops &amp; dev</p></body></html>"))
    assert found.text == "Server down\n\nCall ops & dev"


def test_quoted_reply_and_signature_are_stripped() -> None:
    text = ("Restart it please.\n\nRegards,\nBob\n\nOn Mon, 1 Jan 2024 at 10:00, Alice "
            "<a@example.com> wrote:\n> Is the server down?")
    assert mail_text.strip_reply(text, DEFAULT_CUT_MARKERS) == "Restart it please."


def test_cut_markers_cut_disclaimers_and_sig_dashes() -> None:
    text = "Meet at 3\n-- \nBob\nThis email and any attachments are confidential."
    assert mail_text.strip_reply(text, DEFAULT_CUT_MARKERS) == "Meet at 3"
    assert mail_text.cut("Hi\nCONFIDENTIAL: x", ("confidential",)) == "Hi"


def test_hyphen_lists_are_kept() -> None:
    text = "Todo:\n- restart\n- check logs"
    assert mail_text.strip_reply(text, DEFAULT_CUT_MARKERS) == text


def test_winsms_subject_schedules_in_south_african_time() -> None:
    text, at = mail_text.apply_subject("hi", "203001020830", SubjectMode.WINSMS,
                                       "Africa/Johannesburg")
    assert text == "hi" and at is not None
    assert at.astimezone(UTC) == datetime(2030, 1, 2, 6, 30, tzinfo=UTC)


def test_winsms_subject_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(Rejected):
        mail_text.apply_subject("hi", "203013020830", SubjectMode.WINSMS, "Africa/Johannesburg")


def test_other_subjects_are_ignored_or_prepended() -> None:
    assert mail_text.apply_subject("hi", "Ref 1", SubjectMode.WINSMS, "UTC") == ("hi", None)
    assert mail_text.apply_subject("hi", "Ref 1", SubjectMode.IGNORE, "UTC") == ("hi", None)
    assert mail_text.apply_subject("hi", "Ref 1", SubjectMode.PREPEND, "UTC") == (
        "Ref 1: hi", None)


def test_truncate_fits_the_segment_limit_and_reject_leaves_it_to_intake() -> None:
    long = "word " * 400
    assert measure(mail_text.fit(long, 2, TooLongMode.TRUNCATE))[2] == 2
    assert mail_text.fit(long, 2, TooLongMode.REJECT) == long
    unicode = "Ünïcödé ✓ " * 40
    assert measure(mail_text.fit(unicode, 1, TooLongMode.TRUNCATE))[2] == 1


def test_clickatell_body_is_parsed() -> None:
    body = clickatell.parse_body(
        "api_id:1234\r\nuser:bob\npassword:secret\nreply:ops@example.com\n"
        "text:Server down\ntext:call ops\ndata: now\nto:27821234567\nto:27831234567\n"
        "climsgid:abc\nfrom:ACME\nnonsense line\n")
    assert body.to == ["27821234567", "27831234567"]
    assert body.text == "Server down\ncall ops now"
    assert body.reply == ["ops@example.com"]
    # climsgid names one SMS: with two to: numbers the shared rule drops it.
    assert body.sender == "ACME" and body.client_ref is None


def test_undecodable_charset_degrades_instead_of_failing() -> None:
    raw = (b"Content-Type: text/plain; charset=x-unknown\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\nhello \xff there\r\n")
    assert mail_text.body(mail_text.parse(raw)).text.startswith("hello")


def test_clickatell_template_fills_fields_from_csv_rows_at_the_delimiter() -> None:
    body = clickatell.parse_body(
        "text:Hi #field1#, your balance is #field2#\ncsv:27821234567|Fred|R15.50\n"
        "delimiter:|\ncsv: 0831234567|Ann|R2\n")
    assert body.rows == [("27821234567", "Hi Fred, your balance is R15.50"),
                         ("0831234567", "Hi Ann, your balance is R2")]
    assert body.to == []


def test_clickatell_unicode_text_is_hex_ucs2() -> None:
    body = clickatell.parse_body("unicode:1\ntext:0043006100660065\nto:27821234567\n")
    assert body.text == "Cafe"


def _nested(depth: int) -> bytes:
    return nested_multipart(depth, "From: a@acme.co.za\r\nMIME-Version: 1.0\r\n")


def test_a_mail_declaring_more_boundaries_than_the_depth_limit_is_refused_unparsed(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser's cost is lines x open boundaries: such a mail never reaches it."""
    parsed: list[bytes] = []
    real = mail_text._OUTLINE.parsebytes
    monkeypatch.setattr(mail_text._OUTLINE, "parsebytes",
                        lambda raw: parsed.append(raw) or real(raw))
    with pytest.raises(mail_text.TooComplex, match="too deeply nested or too complex"):
        mail_text.check_outline(_nested(mail_text.MAX_DEPTH + 1))
    assert parsed == []
    # Up to the limit the parse decides, and a mail at it is read.
    mail_text.check_outline(_nested(mail_text.MAX_DEPTH - 1))
    assert len(parsed) == 1
