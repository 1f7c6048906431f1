"""SMPP delivery receipts: the text dialects, TLV precedence, state mapping, id
normalisation, and hostile input that must never raise."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.carriers.smpp.receipts import (
    _CANONICAL,
    MESSAGE_STATES,
    TAG_MESSAGE_PAYLOAD,
    TAG_MESSAGE_STATE,
    TAG_NETWORK_ERROR_CODE,
    TAG_RECEIPTED_MESSAGE_ID,
    _any_fields,
    _text_fields,
    is_receipt,
    normalise_id,
    parse_receipt,
)
from hub.model import ErrorInfo, Status

TEN = (b"id:1234567890 sub:001 dlvrd:001 submit date:2511251430 done date:2511251431 "
       b"stat:DELIVRD err:000 text:Hello there")
TWELVE = (b"id:0A1B2C sub:001 dlvrd:000 submit date:251125143005 done date:251125143159 "
          b"stat:UNDELIV err:0A3 text:Hello")


def test_common_receipt_with_10_digit_dates() -> None:
    receipt = parse_receipt(TEN)
    assert receipt is not None
    assert (receipt.message_id, receipt.id_source) == ("1234567890", "text")
    assert (receipt.status, receipt.state, receipt.err) == (Status.DELIVERED, "DELIVERED", "000")
    assert receipt.error is None
    assert receipt.submitted_at == datetime(2025, 11, 25, 14, 30)
    assert receipt.done_at == datetime(2025, 11, 25, 14, 31)


def test_receipt_with_12_digit_dates_and_alphanumeric_err() -> None:
    receipt = parse_receipt(TWELVE)
    assert receipt is not None
    assert receipt.message_id == "0A1B2C"
    assert receipt.status is Status.UNDELIVERED
    assert receipt.err == "0A3"
    assert receipt.error == ErrorInfo("smsc_undeliverable",
                                      "the SMSC reported UNDELIVERABLE, err 0A3")
    assert receipt.done_at == datetime(2025, 11, 25, 14, 31, 59)


def test_fields_in_any_order_and_case_with_some_missing() -> None:
    receipt = parse_receipt("Stat:expired ID:77 Done_Date:2511251431")
    assert receipt is not None
    assert (receipt.message_id, receipt.status) == ("77", Status.EXPIRED)
    assert receipt.done_at == datetime(2025, 11, 25, 14, 31)
    assert receipt.submitted_at is None
    assert receipt.error is not None
    assert receipt.error.code == "smsc_expired"


def test_quoted_text_cannot_pass_for_a_field() -> None:
    receipt = parse_receipt(b"id:5 stat:DELIVRD text:your id: 99 stat: REJECTD err:7")
    assert receipt is not None
    assert (receipt.message_id, receipt.status) == ("5", Status.DELIVERED)
    assert receipt.err == "7"  # a field not yet seen still ends the text


def test_an_empty_value_does_not_swallow_the_next_field() -> None:
    receipt = parse_receipt("id:5 sub: dlvrd:001 stat:DELIVRD")
    assert receipt is not None
    assert receipt.status is Status.DELIVERED


def test_unreadable_dates_are_none_not_errors() -> None:
    receipt = parse_receipt("id:1 submit date:2513991299 done date:12345 stat:DELIVRD")
    assert receipt is not None
    assert (receipt.submitted_at, receipt.done_at) == (None, None)


@pytest.mark.parametrize(("word", "status", "code"), [
    ("DELIVRD", Status.DELIVERED, None),
    ("delivered", Status.DELIVERED, None),
    ("EXPIRED", Status.EXPIRED, "smsc_expired"),
    ("DELETED", Status.UNDELIVERED, "smsc_deleted"),
    ("UNDELIV", Status.UNDELIVERED, "smsc_undeliverable"),
    ("REJECTD", Status.REJECTED, "smsc_rejected"),
    ("ENROUTE", Status.SUBMITTED, None),
    ("ACCEPTD", Status.SUBMITTED, None),
    ("UNKNOWN", Status.SUBMITTED, None),
    ("BOGUS", Status.SUBMITTED, None),  # unrecognised: not final, the timeout settles it
    ("2", Status.DELIVERED, None),  # the message_state number as a word
])
def test_stat_words_map_to_hub_statuses(word: str, status: Status, code: str | None) -> None:
    receipt = parse_receipt(f"id:1 stat:{word} err:042")
    assert receipt is not None
    assert receipt.status is status
    assert (receipt.error.code if receipt.error else None) == code
    if receipt.error:
        assert "err 042" in receipt.error.text


@pytest.mark.parametrize(("state", "status"), [
    (1, Status.SUBMITTED), (2, Status.DELIVERED), (3, Status.EXPIRED),
    (4, Status.UNDELIVERED), (5, Status.UNDELIVERED), (6, Status.SUBMITTED),
    (7, Status.SUBMITTED), (8, Status.REJECTED),
])
def test_message_state_values_map_to_hub_statuses(state: int, status: Status) -> None:
    receipt = parse_receipt(b"", [(TAG_RECEIPTED_MESSAGE_ID, b"abc\0"),
                                  (TAG_MESSAGE_STATE, bytes([state]))])
    assert receipt is not None
    assert (receipt.status, receipt.state) == (status, MESSAGE_STATES[state])


def test_every_status_is_final_or_submitted() -> None:
    for word in ("DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD", "ENROUTE", "X"):
        receipt = parse_receipt(f"id:1 stat:{word}")
        assert receipt is not None
        assert receipt.status.final or receipt.status is Status.SUBMITTED


def test_tlvs_win_over_the_text() -> None:
    tlvs = [(TAG_RECEIPTED_MESSAGE_ID, b"ABC123\0"), (TAG_MESSAGE_STATE, b"\x05")]
    receipt = parse_receipt(TEN, tlvs)
    assert receipt is not None
    assert (receipt.message_id, receipt.id_source) == ("ABC123", "tlv")
    assert receipt.status is Status.UNDELIVERED
    assert receipt.err == "000"  # the text still supplies what the TLVs do not


def test_empty_or_unknown_tlvs_fall_back_to_the_text() -> None:
    tlvs = [(TAG_RECEIPTED_MESSAGE_ID, b"\0"), (TAG_MESSAGE_STATE, b"\x63")]
    receipt = parse_receipt(TEN, tlvs)
    assert receipt is not None
    assert (receipt.message_id, receipt.id_source) == ("1234567890", "text")
    assert receipt.status is Status.DELIVERED


def test_network_error_code_tlv_is_named_in_the_error() -> None:
    network = (TAG_NETWORK_ERROR_CODE, b"\x03\x00\x22")  # GSM, error 34
    receipt = parse_receipt(b"id:1 stat:UNDELIV err:001", [network])
    assert receipt is not None
    assert receipt.error is not None
    assert receipt.error.text.endswith("err 001, network error GSM 34")


def test_receipt_text_in_message_payload() -> None:
    receipt = parse_receipt(b"", [(TAG_MESSAGE_PAYLOAD, TEN)])
    assert receipt is not None
    assert receipt.message_id == "1234567890"


def test_a_receipt_with_no_id_is_none() -> None:
    assert parse_receipt(b"sub:001 stat:DELIVRD") is None
    assert parse_receipt(b"") is None
    assert parse_receipt(b"id: stat:DELIVRD") is None


@pytest.mark.parametrize(("esm_class", "receipt"), [
    (0x00, False), (0x04, True), (0x08, True), (0x20, True), (0x40, False), (0x44, True),
    (0x10, False), (0x18, False),
])
def test_is_receipt_reads_the_message_type_bits(esm_class: int, receipt: bool) -> None:
    assert is_receipt(esm_class) is receipt


def test_garbage_never_raises() -> None:
    rng = random.Random(20261125)
    keys = [b"id:", b"stat:", b"err:", b"submit date:", b"done date:", b"text:", b" "]
    for _ in range(3000):
        pieces = [rng.choice(keys) if rng.random() < 0.5 else rng.randbytes(rng.randint(0, 12))
                  for _ in range(rng.randint(0, 12))]
        tlvs = [(rng.choice([TAG_RECEIPTED_MESSAGE_ID, TAG_MESSAGE_STATE,
                             TAG_NETWORK_ERROR_CODE, TAG_MESSAGE_PAYLOAD]),
                 rng.randbytes(rng.randint(0, 6))) for _ in range(rng.randint(0, 3))]
        receipt = parse_receipt(b"".join(pieces), tlvs)
        if receipt is not None:
            assert receipt.message_id
            assert receipt.status.final or receipt.status is Status.SUBMITTED


# --- ids ---------------------------------------------------------------------------


def test_hex_response_and_decimal_receipt_give_the_same_id() -> None:
    # Kannel's msg-id-type case: submit_sm_resp in hex, the receipt in decimal.
    assert normalise_id("0001A2B", "hex") == normalise_id("0000006699", "dec") == "6699"


@pytest.mark.parametrize(("raw", "fmt", "canonical"), [
    ("00ABC", "as-is", "abc"),
    (" AbC\0", "as-is", "abc"),
    ("000", "as-is", "0"),
    ("0", "dec", "0"),
    ("", "as-is", ""),
    ("0x1F", "hex", "31"),
    ("ff", "hex", "255"),
    ("000", "hex", "0"),
    ("msg-42", "hex", "msg-42"),  # not hex: kept as as-is would keep it
    ("12ab", "dec", "12ab"),  # not decimal: likewise
    ("f" * 65, "hex", "f" * 65),  # longer than any SMPP id: not converted
])
def test_normalise_id(raw: str, fmt: str, canonical: str) -> None:
    assert normalise_id(raw, fmt) == canonical  # type: ignore[arg-type]


def test_a_huge_decimal_id_does_not_hit_the_int_conversion_limit() -> None:
    assert normalise_id("0" + "9" * 5000, "dec") == "9" * 5000


_WORD = st.text(st.characters(codec="latin-1", exclude_characters=":"), min_size=0,
                max_size=12)


@settings(max_examples=400, deadline=None)
@given(words=st.lists(_WORD, min_size=8, max_size=8), case=st.booleans(),
       quoted=st.one_of(st.none(), st.text(st.characters(codec="latin-1"), max_size=30)))
def test_the_usual_form_reads_as_the_general_reading_does(
    words: list[str], case: bool, quoted: str | None,
) -> None:
    """The one-match reading of the usual receipt form gives the fields the general
    reading gives, whatever the values (spaces, colons, empty ones, case) and text."""
    keys = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err")
    text = " ".join(f"{k.upper() if case else k}:{v}" for k, v in zip(keys, words, strict=False))
    if quoted is not None:
        text += f" text:{quoted}"
    assert _text_fields(text) == _any_fields(text)


def test_the_usual_form_is_read_in_one_match() -> None:
    text = TEN.decode()
    assert _CANONICAL.fullmatch(text) is not None
    assert _text_fields(text) == _any_fields(text) == {
        "id": "1234567890", "sub": "001", "dlvrd": "001", "submitdate": "2511251430",
        "donedate": "2511251431", "stat": "DELIVRD", "err": "000", "text": "Hello there"}
