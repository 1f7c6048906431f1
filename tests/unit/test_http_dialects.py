"""The HTTP dialects' readers and answers without a server: WinSMS's number lists and
credits, Kannel's numeric fields read as smsbox's sscanf reads them and its charsets,
Clickatell's answer lines; the per-address count of failed logins they share; and
query strings read as urllib reads them."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.http.dialects import kannel, winsms
from adapters.http.dialects import params as params_module
from adapters.http.dialects.clickatell import send_lines
from adapters.http.dialects.params import Params
from hub.clock import utcnow
from hub.logins import FailedLogins
from hub.model import Accepted, Account, Refused, Status


def params(**values: str | bytes) -> Params:
    return Params(tuple((k.replace("_", "-"), v if isinstance(v, bytes) else v.encode())
                        for k, v in values.items()))


def account(balance: str, price: str) -> Account:
    return Account(1, "acme", Decimal(balance), Decimal(price), (), utcnow())


@pytest.mark.parametrize(("given", "expected"), [
    ("27825550101;27835550505", ["27825550101", "27835550505"]),
    ("0825550101;", ["0825550101"]),
    (" 27825550101 ; ;27835550505,27845550909 ", ["27825550101", "27835550505",
                                                   "27845550909"]),
    (";", []),
])
def test_winsms_numbers_split_on_semicolons_with_or_without_a_trailing_one(
        given: str, expected: list[str]) -> None:
    assert winsms.numbers(given) == expected


def test_winsms_credits_are_messages_the_balance_pays_for() -> None:
    assert winsms.credits(account("10", "0.25")) == 40
    assert winsms.credits(account("10.20", "0.25")) == 40  # rounded down: 40.8 pays for 40
    assert winsms.credits(account("12.5", "0")) == 13  # sends free: the balance, rounded


def test_winsms_answer_names_each_number_as_written() -> None:
    outcomes = [Accepted("01ID", Status.ACCEPTED, 1, Decimal("0.25")),
                Refused("invalid_number", "bad"), Refused("opted_out", "no")]
    assert winsms.sent_answer(["0825550101", "12", "27835550505"], outcomes) == (
        "0825550101=01ID;12=BADDEST;27835550505=INVALID;")


@pytest.mark.parametrize(("raw", "expected"), [
    (b"31", 31), (b" 31abc", 31), (b"-1", -1), (b"+2", 2), (b"abc", None), (b"", None),
    (None, None)])
def test_kannel_numbers_read_as_sscanf_reads_them(raw: bytes | None,
                                                  expected: int | None) -> None:
    assert kannel.integer(raw) == expected


def test_kannel_fields_in_range_and_the_deprecated_dlrmask() -> None:
    assert kannel.fields(params(dlrmask="9", priority="3")) == {"dlr-mask": 9, "priority": 3}
    with pytest.raises(kannel.FieldError, match=r"^MClass field misformed, rejected$"):
        kannel.fields(params(mclass="4"))


def test_kannel_fields_none_given_and_each_name_alone_among_others() -> None:
    assert kannel.fields(params(to="123", text="hi", username="u")) == {}
    assert kannel.fields(params(to="123", dlrmask="9")) == {"dlr-mask": 9}
    for name, _label, low, _high in kannel._RANGES:
        given = {"to": "123", name.replace("-", "_"): str(low + 1)}
        assert kannel.fields(params(**given)) == {name: low + 1}


def test_kannel_submissions_one_per_receiver_alike_but_for_the_number() -> None:
    first, second = kannel.submissions(params(text="hi", priority="2"), ["111", "222"])
    assert (first.to, second.to) == ("111", "222")
    assert (first.text, first.priority) == (second.text, second.priority) == ("hi", 2)


def test_kannel_text_in_its_charset_or_kannels_defaults() -> None:
    assert kannel.message_text(params(text=b"Gr\xfc\xdfe", charset="ISO-8859-1"), None) == (
        "Grüße")
    assert kannel.message_text(params(text=b"\x00H\x00i"), 2) == "Hi"
    assert kannel.message_text(params(text="€".encode()), 0) == "€"
    with pytest.raises(kannel.FieldError):
        kannel.message_text(params(text=b"x", charset="no-such-charset"), None)


def test_kannel_callback_needs_both_url_and_a_mask_with_known_bits() -> None:
    url = "https://dlr.example.com/?t=%d"
    found = kannel.callback(params(dlr_url=url), 31)
    assert found is not None and (found.url, found.mask) == (url, 31)
    assert kannel.callback(params(dlr_url=url), None) is None
    assert kannel.callback(params(dlr_url=url), 0) is None
    assert kannel.callback(params(), 31) is None


def test_clickatell_lines_carry_to_only_for_several_numbers() -> None:
    ok = Accepted("01ID", Status.ACCEPTED, 1, Decimal("0.25"))
    assert send_lines(["27821234567"], [ok]) == "ID: 01ID"
    assert send_lines(["27821234567", "12"], [ok, Refused("invalid_number", "x")]) == (
        "ID: 01ID To: 27821234567\nERR: 105, Invalid destination address To: 12")


def test_failed_logins_lock_one_address_until_they_age_out() -> None:
    now = [0.0]
    logins = FailedLogins(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert not logins.locked_out("192.0.2.1")
        logins.record("192.0.2.1")
    assert logins.locked_out("192.0.2.1") and not logins.locked_out("192.0.2.2")
    now[0] = 61
    assert not logins.locked_out("192.0.2.1")


# --- query strings: read from bytes exactly as urllib's parse_qsl reads them ----------


def _parse_qsl_reference(data: bytes) -> list[tuple[str, bytes]]:
    found = parse_qsl(data.decode("latin-1"), keep_blank_values=True, encoding="latin-1",
                      max_num_fields=params_module.MAX_FIELDS)
    return [(k, v.encode("latin-1")) for k, v in found]


@given(st.lists(st.sampled_from([b"a", b"to", b"=", b"&", b"+", b"%", b"%2B", b"%zz",
                                 b"%4", b"%e9", b"\xe9", b"\xc3\xa9", b" ", b"&&", b";"]),
                max_size=40).map(b"".join))
@settings(max_examples=500, deadline=None)
def test_query_pairs_are_what_parse_qsl_gives(data: bytes) -> None:
    assert params_module._pairs(data) == _parse_qsl_reference(data)


def test_query_with_too_many_fields_is_refused() -> None:
    params_module._pairs(b"a=1&" * (params_module.MAX_FIELDS - 1) + b"b")
    with pytest.raises(params_module.BadParameters):
        params_module._pairs(b"a=1&" * params_module.MAX_FIELDS + b"b")


def _first_scan(pairs: list[tuple[str, bytes]], names: tuple[str, ...],
                fold: bool) -> bytes | None:
    """Params.raw as a plain scan: the first value of the first name present."""
    for name in names:
        for key, value in pairs:
            if key == name or (fold and key.lower() == name):
                return value
    return None


@given(st.lists(st.tuples(st.sampled_from(["to", "TO", "To", "text", "user", "x"]),
                          st.binary(max_size=3)), max_size=8),
       st.lists(st.sampled_from(["to", "text", "user", "pass"]), min_size=1, max_size=3),
       st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_parameter_is_the_first_value_of_the_first_name_given(
        pairs: list[tuple[str, bytes]], names: list[str], fold: bool) -> None:
    found = Params(tuple(pairs))
    assert found.raw(*names, fold=fold) == _first_scan(pairs, tuple(names), fold)
    assert found.raw(*names, fold=not fold) == _first_scan(pairs, tuple(names), not fold)
