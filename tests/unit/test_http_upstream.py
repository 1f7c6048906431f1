"""The HTTP upstream carrier's parts without a network: its configuration (templates,
overrides, errors naming the key), how requests are planned and written, how answers and
callbacks are read, and that credentials stay out of reprs and logs."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.carriers import service as carriers
from adapters.carriers.http import exchange, placeholders
from adapters.carriers.http.callbacks import (
    CallbackError,
    e164,
    reply_from,
    report_from,
)
from adapters.carriers.http.config import KEYS, settings_from
from adapters.carriers.http.settings import UpstreamSettings
from adapters.carriers.http.templates import TEMPLATES
from adapters.carriers.http.upstream import _HIDE_QUERY, retry_after
from hub.config import CarrierTable, load
from hub.errors import ConfigError
from hub.model import Encoding, Message, MessageClass, Source, Status, Verdict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREDENTIALS: dict[str, dict[str, Any]] = {
    "smsportal": {"username": "client", "password": "secret"},
    "bulksms": {"keys": {"username": "user", "password": "pass"}},
    "clickatell": {"keys": {"api_id": "1", "user": "user", "password": "pass"}},
}


def settings(**options: Any) -> UpstreamSettings:
    return settings_from(CarrierTable("up", "http", options, "hub.toml"))


def refusal(**options: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        settings(**options)
    return str(caught.value)


def message(recipient: str = "+27821234567", text: str = "Hello", **kw: Any) -> Message:
    fields: dict[str, Any] = dict(
        id=f"01J{recipient[-6:]}{len(text)}", account_id=1, source=Source.REST,
        recipient=recipient, text=text, encoding=Encoding.GSM7, segments=1,
        cost=Decimal("0.25"), status=Status.SENDING, attempts=1,
        message_class=MessageClass.TRANSACTIONAL, priority=0, accepted_at=NOW,
        updated_at=NOW, due_at=NOW, sender="ACME")
    return Message(**(fields | kw))


# --- configuration ------------------------------------------------------------------


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_builds_once_its_credentials_are_given(template: str) -> None:
    built = settings(template=template, **CREDENTIALS[template])
    assert built.template == template and built.request.url.startswith("https://")


def test_a_template_field_can_be_overridden_and_tables_merge() -> None:
    built = settings(template="smsportal", batch_size=10, dlr={"statuses": {"QUEUED": "submitted"}},
                     **CREDENTIALS["smsportal"])
    assert built.request.batch_size == 10
    assert built.callbacks.reports is not None
    assert built.callbacks.reports.statuses["QUEUED"] is Status.SUBMITTED
    assert built.callbacks.reports.statuses["DELIVRD"] is Status.DELIVERED  # kept


def test_a_body_template_is_replaced_whole() -> None:
    built = settings(template="bulksms", fields={"to": "{to}", "msg": "{text}"},
                     **CREDENTIALS["bulksms"])
    assert dict(built.request.fields) == {"to": "{to}", "msg": "{text}"}


@pytest.mark.parametrize(("options", "names"), [
    ({"template": "smsportal", "usernme": "x"}, "unknown key 'usernme'"),
    ({"template": "nope"}, "template: unknown template 'nope'"),
    ({"template": "bulksms", "keys": {"username": "u"}}, "keys.password: must not be empty"),
    ({"template": "smsportal", "username": "c"}, "password: missing"),
    ({"template": "smsportal", **CREDENTIALS["smsportal"], "dlr": {"statuses": {"X": "gone"}}},
     "dlr.statuses.X: must be one of"),
    ({"template": "smsportal", **CREDENTIALS["smsportal"], "mo": {"sendr": ["a"]}},
     "unknown key 'mo.sendr'"),
    ({"template": "smsportal", **CREDENTIALS["smsportal"], "timeout": 0}, "timeout: must be"),
    ({"template": "smsportal", **CREDENTIALS["smsportal"], "callback_secret": "short"},
     "callback_secret: must be at least 16"),
    ({"template": "smsportal", **CREDENTIALS["smsportal"], "callback_secret": "a/b" * 8},
     "callback_secret: goes in the URL path"),
    ({"template": "clickatell", **CREDENTIALS["clickatell"], "callback_secret": "x"},
     "callback_username: missing"),
    ({"url": "ftp://x"}, "url: must be an http"),
    ({"url": "https://x", "fields": {"to": "{too}"}, "answer": "json", "id_path": "id"},
     "fields: unknown placeholder {too}"),
    ({"url": "https://x", "fields": {"to": "{to"}, "answer": "json", "id_path": "id"},
     "fields: unpaired brace"),
    ({"url": "https://x", "fields": {"to": "{to}"}, "answer": "json"}, "id_path: missing"),
    ({"url": "https://x", "fields": {"to": "{to}"}, "answer": "text", "answer_regex": "(x)"},
     "answer_regex: needs a named group"),
    ({"url": "https://x", "fields": {"to": "{to}"}, "id_path": "id", "batch_size": 5},
     "batch_size: more than 1 needs a JSON body"),
    ({"url": "https://x", "fields": {"to": "{to}"}, "id_path": "id", "id_format": "x"},
     "id_format: must contain {id}"),
    ({"url": "https://x", "body": "json", "json": {"to": "{to}"}, "id_path": "id",
      "auth": "key", "key_in": "form", "keys": {"k": "v"}}, "key_in: \"form\" needs"),
    ({"url": "https://x", "body": "json", "json": {"m": "{messages}"}, "id_path": "id"},
     "message: missing"),
    ({"url": "https://x", "body": "json", "json": {"m": "{messages}", "t": "{to}"},
      "message": {"to": "{to}"}, "id_path": "id"}, "json: unknown placeholder {to}"),
    ({"url": "https://x", "fields": {"to": "{to}"}, "id_path": "id",
      "retry_statuses": [500]}, "retry_statuses: must be a list of 4xx"),
])
def test_a_bad_table_is_refused_naming_the_file_table_and_key(options: dict[str, Any],
                                                              names: str) -> None:
    text = refusal(**options)
    assert text.startswith("hub.toml: [carriers.up] ") and names in text, text


def test_an_unknown_key_is_named_before_anything_else_with_every_allowed_key() -> None:
    text = refusal(template="smsportal", bogus=1)  # credentials missing too
    assert "unknown key 'bogus'" in text and text.endswith(", ".join(sorted(KEYS)))


def test_keys_no_template_sets_are_read() -> None:
    built = settings(template="smsportal", **CREDENTIALS["smsportal"], proxy="http://p:3128",
                     receipt_timeout=600, token_max_age=600, callback_header="X-S",
                     inbound_number="31337", default_sender="ACME", code_path="code",
                     error_path="message", headers={"Accept": "application/json"})
    assert (built.proxy, built.receipt_timeout, built.auth.token_max_age) == (
        "http://p:3128", 600.0, 600.0)
    assert built.request.headers == {"Accept": "application/json"}


def test_a_config_file_with_a_bad_http_carrier_fails_at_build_naming_the_key(
        tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[carriers.bulk]\ntype = "http"\ntemplate = "bulksms"\n'
                    'keys = { username = "me" }\n')
    config = load(path, env={})
    with pytest.raises(ConfigError, match=r"hub.toml: \[carriers.bulk\] keys.password"):
        carriers.build(config)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    built = settings(template="bulksms", keys={"username": "u", "password": "hunter2-pass"},
                     callback_secret="callback-secret-xyz-123")
    assert "hunter2-pass" not in repr(built) and "callback-secret-xyz" not in repr(built)


# --- requests -------------------------------------------------------------------------


def test_a_batch_never_names_a_number_twice_nor_exceeds_batch_size() -> None:
    shape = settings(template="smsportal", batch_size=2, **CREDENTIALS["smsportal"]).request
    a, b, c = "+27821111111", "+27822222222", "+27823333333"
    msgs = [message(a, "1"), message(b, "2"), message(a, "3"), message(c, "4"), message(b, "5")]
    groups = exchange.plan(msgs, shape)
    assert [[m.text for m in g] for g in groups] == [["1", "2"], ["3", "4"], ["5"]]


def test_a_json_batch_is_written_with_one_object_per_message() -> None:
    shape = settings(template="smsportal", **CREDENTIALS["smsportal"]).request
    out = exchange.build([message("+27821111111", "a"), message("+27822222222", "b")], shape,
                         exchange.AuthParts(headers={"Authorization": "Bearer t"}))
    assert out.content is not None and json.loads(out.content) == {"Messages": [
        {"Content": "a", "Destination": "27821111111"},
        {"Content": "b", "Destination": "27822222222"}]}
    assert out.headers["Content-Type"] == "application/json"


def test_a_get_form_goes_in_the_query_with_keys() -> None:
    shape = settings(url="https://x/send?v=1", method="GET", fields={"to": "{to}", "t": "{text}"},
                     id_path="id", auth="key", key_in="query", keys={"apikey": "k&1"}).request
    out = exchange.build([message(text="a b")], shape, exchange.AuthParts(query={"apikey": "k&1"}))
    assert out.url == "https://x/send?v=1&to=%2B27821234567&t=a+b&apikey=k%261"
    assert out.content is None


def test_a_latin1_form_sends_unwritable_text_as_ucs2_hex() -> None:
    shape = settings(template="bulksms", **CREDENTIALS["bulksms"]).request
    out = exchange.build([message(text="Δ")], shape, exchange.AuthParts(form={"username": "u"}))
    assert out.content is not None
    assert b"dca=16bit" in out.content and b"message=0394" in out.content


def test_a_numeric_sender_follows_the_number_format() -> None:
    shape = settings(template="bulksms", **CREDENTIALS["bulksms"]).request
    assert exchange.values(message(sender="+27830000000"), shape)["from"] == "27830000000"
    assert exchange.values(message(sender="ACME"), shape)["from"] == "ACME"


# --- answers ---------------------------------------------------------------------------


def read(template: str, body: str, *msgs: Message, **over: Any) -> list[tuple[Any, ...]]:
    s = settings(template=template, **CREDENTIALS.get(template, {}), **over)
    results = exchange.read_success(list(msgs) or [message()], body, s.answer, s.request)
    return [(r.verdict, r.carrier_message_id, r.error and r.error.code,
             r.error and r.error.text) for r in results]


@pytest.mark.parametrize(("body", "expected"), [
    ("0|IN_PROGRESS|71070172", (Verdict.SUBMITTED, "71070172", None, None)),
    ("1|SCHEDULED|71070173", (Verdict.SUBMITTED, "71070173", None, None)),
    ("40|TEMPORARILY_UNAVAILABLE", (Verdict.RETRY, None, "upstream_40",
                                    "TEMPORARILY_UNAVAILABLE")),
    ("25|Insufficient credits", (Verdict.REJECTED, None, "upstream_25", "Insufficient credits")),
    ("<html>", (Verdict.REJECTED, None, "upstream_error", "unexpected answer: <html>")),
])
def test_bulksms_answers(body: str, expected: tuple[Any, ...]) -> None:
    assert read("bulksms", body) == [expected]


@pytest.mark.parametrize(("body", "expected"), [
    ("ID: 996f364775e24b8432f45d77da8eca47", (Verdict.SUBMITTED,
                                             "996f364775e24b8432f45d77da8eca47", None, None)),
    ("ERR: 114, Cannot route message", (Verdict.REJECTED, None, "upstream_114",
                                        "Cannot route message")),
    ("ERR: 130, Maximum MT limit exceeded", (Verdict.RETRY, None, "upstream_130",
                                             "Maximum MT limit exceeded")),
])
def test_clickatell_answers(body: str, expected: tuple[Any, ...]) -> None:
    assert read("clickatell", body) == [expected]


def test_smsportal_answer_gives_each_message_the_event_id_and_its_number() -> None:
    body = json.dumps({"EventId": 42, "ErrorReport": {"Faults": [
        {"Destination": "27822222222", "Reason": "Opted out"}, {"Other": "unmatched"}]}})
    assert read("smsportal", body, message("+27821111111"), message("+27822222222")) == [
        (Verdict.SUBMITTED, "42:27821111111", None, None),
        (Verdict.REJECTED, None, "upstream_fault", "Opted out")]


@pytest.mark.parametrize(("body", "code"), [("not json", "bad_answer"), ("{}", "no_message_id")])
def test_a_json_answer_without_an_id_refuses(body: str, code: str) -> None:
    [(verdict, _, error, _)] = read("smsportal", body)
    assert (verdict, error) == (Verdict.REJECTED, code)


def test_per_message_results_are_read_in_order() -> None:
    s = settings(url="https://x", body="json", json={"recipients": "{messages}"},
                 message={"mobileNumber": "{to}"}, batch_size=10, results_path="recipients",
                 id_path="apiMessageId", error_path="acceptError")
    body = json.dumps({"recipients": [{"apiMessageId": 7}, {"acceptError": "bad number"}]})
    results = exchange.read_success([message("+27821111111"), message("+27822222222")], body,
                                    s.answer, s.request)
    assert [(r.verdict, r.carrier_message_id) for r in results] == [
        (Verdict.SUBMITTED, "7"), (Verdict.REJECTED, None)]
    assert results[1].error is not None and results[1].error.text == "bad number"


def test_error_text_comes_from_error_path_then_the_body() -> None:
    s = settings(url="https://x", fields={"to": "{to}"}, id_path="id", error_path="error.message")
    assert exchange.error_text('{"error": {"message": "Bad number"}}', s.answer) == "Bad number"
    assert exchange.error_text("Service\n  Unavailable", s.answer) == "Service Unavailable"


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after("120") == 120.0
    later = (NOW + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after(later, now=NOW) == 30.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_query_in_an_httpx_log_line_is_hidden() -> None:
    record = logging.LogRecord("httpx", logging.INFO, "", 0, "HTTP Request: %s %s", (
        "GET", httpx.URL("https://x/send?apikey=secret-key")), None)
    assert _HIDE_QUERY.filter(record)
    assert "secret-key" not in record.getMessage() and "https://x/send" in record.getMessage()


# --- callbacks ------------------------------------------------------------------------


def report_fields(template: str) -> Any:
    fields = settings(template=template, **CREDENTIALS[template]).callbacks.reports
    assert fields is not None
    return fields


@pytest.mark.parametrize(("template", "record", "carrier_id", "status"), [
    ("smsportal", {"EventId": "1", "Msisdn": "2782", "Status": "DELIVRD"}, "1:2782",
     Status.DELIVERED),
    ("smsportal", {"EventID": "1", "Phonenumber": "2782", "Status": "BLIST"}, "1:2782",
     Status.REJECTED),
    ("smsportal", {"EventId": "1", "Msisdn": "2782", "Status": "STAGED"}, "1:2782",
     Status.SUBMITTED),
    ("smsportal", {"EventId": "1", "Msisdn": "2782", "Status": "EXPIRED"}, "1:2782",
     Status.EXPIRED),
    ("bulksms", {"batch_id": "9", "msisdn": "2782", "status": "11"}, "9", Status.DELIVERED),
    ("bulksms", {"batch_id": "9", "status": "51"}, "9", Status.UNDELIVERED),
    ("bulksms", {"batch_id": "9", "status": "53"}, "9", Status.EXPIRED),
    ("bulksms", {"batch_id": "9", "status": "31"}, "9", Status.REJECTED),
    ("clickatell", {"apiMsgId": "ab", "status": "004"}, "ab", Status.DELIVERED),
    ("clickatell", {"apiMsgId": "ab", "status": "007"}, "ab", Status.UNDELIVERED),
    ("clickatell", {"apiMsgId": "ab", "status": "003"}, "ab", Status.SUBMITTED),
    ("clickatell", {"apiMsgId": "ab", "status": "999"}, "ab", Status.SUBMITTED),  # unknown
])
def test_report_fields_and_status_words_map_to_the_model(
        template: str, record: dict[str, str], carrier_id: str, status: Status) -> None:
    report = report_from(record, "up", report_fields(template), NOW)
    assert (report.carrier_message_id, report.status) == (carrier_id, status)
    assert report.detail == next(v for k, v in record.items() if k.lower() == "status")
    assert (report.error is not None) == (status.final and status is not Status.DELIVERED)


def test_a_report_without_its_id_fields_is_unreadable() -> None:
    with pytest.raises(CallbackError, match="EventId"):
        report_from({"Status": "DELIVRD"}, "up", report_fields("smsportal"), NOW)


def test_a_reply_names_the_handset_in_e164_and_falls_back_to_inbound_number() -> None:
    s = settings(template="smsportal", inbound_number="31337", **CREDENTIALS["smsportal"])
    assert s.callbacks.replies is not None
    reply = reply_from({"Phonenumber": "27821234567", "IncomingData": "", "IncomingID": "5"},
                       "up", s.callbacks.replies, s.callbacks, NOW)
    assert (reply.sender, reply.recipient, reply.text, reply.carrier_message_id) == (
        "+27821234567", "31337", "", "5")


@pytest.mark.parametrize(("raw", "expected"), [
    ("27821234567", "+27821234567"), ("0821234567", "+27821234567"),
    ("+27821234567", "+27821234567"), ("31337", "31337")])
def test_handset_numbers_become_e164(raw: str, expected: str) -> None:
    assert e164(raw, "ZA") == expected


def test_placeholders_render_escaped_braces() -> None:
    assert placeholders.render("{{x}} {to}", {"to": "1"}) == "{x} 1"
    assert placeholders.names("{a}:{b}") == ["a", "b"]


def test_the_commented_http_carriers_in_hub_toml_build_once_uncommented() -> None:
    text = (Path(__file__).resolve().parents[2] / "hub.toml").read_text()
    examples = text.split("# Another provider's HTTP API")[1]
    key = re.compile(r"# (\[carriers\.[a-z]+\]|[A-Za-z\"][\w\"-]* = .*)$")
    lines = [m.group(1) for line in examples.splitlines() if (m := key.match(line))]
    tables = tomllib.loads("\n".join(lines))
    assert set(tables) == {"carriers"} and len(tables["carriers"]) == 3
    for name, table in tables["carriers"].items():
        kind = table.pop("type")
        assert kind == "http"
        settings_from(CarrierTable(name, kind, table, "hub.toml"))

