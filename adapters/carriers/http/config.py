"""An HTTP upstream's settings: one `[carriers.NAME]` table with `type = "http"`, over its
provider template if it names one, checked key by key into frozen dataclasses; anything
unknown or invalid is a ConfigError naming the file, the table and the key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.carriers.http import placeholders
from adapters.carriers.http.settings import (
    AnswerShape,
    Auth,
    Callbacks,
    ReplyFields,
    ReportFields,
    RequestShape,
    UpstreamSettings,
)
from adapters.carriers.http.templates import TEMPLATES
from hub.config import CarrierTable
from hub.errors import ConfigError
from hub.model import Status

# Body templates are replaced whole by a table that sets them; other tables merge.
_REPLACED_WHOLE = frozenset({"json", "message", "fields"})
_REPORT_STATUSES = {s.value: s for s in (Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED,
                                         Status.REJECTED, Status.SUBMITTED)}
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
# Every key of a table (docs/http-upstream.md), so a misspelt one is named before any
# other complaint; `_Keys.done` checks again that nothing went unread.
KEYS = frozenset({
    "template", "url", "method", "headers", "body", "fields", "json", "message", "batch_size",
    "number_format", "default_sender", "form_charset", "ucs2_fields", "ucs2_text",
    "auth", "username", "password", "token", "keys", "key_in", "token_url", "token_path",
    "token_minutes_path", "token_max_age",
    "answer", "id_path", "error_path", "code_path", "answer_regex", "ok_codes", "retry_codes",
    "faults_path", "results_path", "id_format", "retry_statuses",
    "callback_auth", "callback_secret", "callback_header", "callback_username", "dlr", "mo",
    "inbound_number", "timeout", "max_connections", "max_throttle_wait", "proxy",
    "receipt_timeout", "receipt_margin", "price_per_segment",
})


def settings_from(table: CarrierTable, region: str = "ZA") -> UpstreamSettings:
    """Check a `type = "http"` table (over its template) and build its settings."""
    where = f"{table.source}: [carriers.{table.name}]"
    options = dict(table.options)
    unknown = sorted(set(options) - KEYS)
    if unknown:
        raise ConfigError(f"{where} unknown key '{unknown[0]}'; allowed: {', '.join(sorted(KEYS))}")
    template = options.pop("template", "")
    if not isinstance(template, str):
        raise ConfigError(f"{where} template: must be a string, got {template!r}")
    if template != "" and template not in TEMPLATES:
        raise ConfigError(f"{where} template: unknown template {template!r}; "
                          f"ready-made: {', '.join(TEMPLATES)}")
    merged = _merge(TEMPLATES.get(template, {}), options)
    keys = _Keys(where, merged)
    settings = UpstreamSettings(
        name=table.name, template=template,
        request=_request(keys), auth=_auth(keys), answer=_answer(keys),
        callbacks=_callbacks(keys, region),
        timeout=keys.number("timeout", 10.0, 0.1, 300.0),
        max_connections=int(keys.number("max_connections", 10, 1, 1000, whole=True)),
        max_throttle_wait=keys.number("max_throttle_wait", 5.0, 0.0, 60.0),
        proxy=keys.text("proxy", ""),
        receipt_timeout=keys.number("receipt_timeout", 0.0, 0.0, 30 * 86_400.0),
        receipt_margin=keys.number("receipt_margin", 3600.0, 0.0, 30 * 86_400.0),
        price_per_segment=keys.number("price_per_segment", 0.0, 0.0, 1000.0),
    )
    keys.done()
    _check_together(keys, settings)
    return settings


def _merge(base: Mapping[str, Any], over: Mapping[str, Any], top: bool = True) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if (isinstance(value, Mapping) and isinstance(old, Mapping)
                and not (top and key in _REPLACED_WHOLE)):
            merged[key] = _merge(old, value, top=False)
        else:
            merged[key] = value
    return merged


class _Keys:
    """Reads keys of one table with their types, remembering which were read so any
    left over can be refused by name."""

    def __init__(self, where: str, values: Mapping[str, Any], prefix: str = "") -> None:
        self.where, self.values, self.prefix = where, values, prefix
        self.used: set[str] = set()

    def error(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.where} {self.prefix}{key}: {why}")

    def raw(self, key: str, default: Any) -> Any:
        self.used.add(key)
        return self.values.get(key, default)

    def text(self, key: str, default: str, choices: tuple[str, ...] = ()) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def number(self, key: str, default: float, low: float, high: float,
               whole: bool = False) -> float:
        value = self.raw(key, default)
        kinds = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            raise self.error(key, f"must be {kind} from {low:g} to {high:g}, got {value!r}")
        return float(value)

    def names(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def strings(self, key: str) -> dict[str, str]:
        value = self.raw(key, {})
        if not isinstance(value, Mapping) or not all(
                isinstance(v, str) for v in value.values()):
            raise self.error(key, f"must be a table of strings, got {value!r}")
        return dict(value)

    def table(self, key: str) -> _Keys | None:
        value = self.raw(key, None)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a table, got {value!r}")
        return _Keys(self.where, value, f"{self.prefix}{key}.")

    def done(self) -> None:
        unknown = [k for k in self.values if k not in self.used]
        if unknown:
            raise ConfigError(f"{self.where} unknown key '{self.prefix}{unknown[0]}'; "
                              f"allowed: {', '.join(sorted(self.used))}")


def _request(keys: _Keys) -> RequestShape:
    url = keys.text("url", "")
    if not url.startswith(("http://", "https://")):
        raise keys.error("url", f"must be an http:// or https:// URL, got {url!r}")
    body = keys.text("body", "form", ("form", "json", "none"))
    json_template = keys.raw("json", None)
    message = keys.raw("message", None)
    for key, value in (("json", json_template), ("message", message)):
        if value is not None and not isinstance(value, Mapping):
            raise keys.error(key, f"must be a table (the JSON object to send), got {value!r}")
    if body == "json" and json_template is None:
        raise keys.error("json", "missing: body = \"json\" needs the JSON object to send")
    fields = keys.strings("fields")
    if body == "form" and not fields:
        raise keys.error("fields", "missing: body = \"form\" needs the form fields to send")
    charset = keys.text("form_charset", "utf-8", ("utf-8", "iso-8859-1"))
    return RequestShape(
        url=url, method=keys.text("method", "POST", ("GET", "POST", "PUT")),
        headers=keys.strings("headers"), body=body, fields=fields,
        json=json_template, message=message,
        batch_size=int(keys.number("batch_size", 1, 1, 1000, whole=True)),
        number_format=keys.text("number_format", "e164", ("e164", "digits")),
        default_sender=keys.text("default_sender", ""), form_charset=charset,
        ucs2_fields=keys.strings("ucs2_fields"),
        ucs2_text=keys.text("ucs2_text", "plain", ("plain", "hex")),
    )


def _auth(keys: _Keys) -> Auth:
    auth = Auth(
        kind=keys.text("auth", "none", ("none", "basic", "bearer", "key", "token")),
        username=keys.text("username", ""), password=keys.text("password", ""),
        token=keys.text("token", ""), keys=keys.strings("keys"),
        key_in=keys.text("key_in", "header", ("header", "form", "query")),
        token_url=keys.text("token_url", ""), token_path=keys.text("token_path", "token"),
        token_minutes_path=keys.text("token_minutes_path", ""),
        token_max_age=keys.number("token_max_age", 3600.0, 60.0, 86_400.0),
    )
    needed = {"basic": ("username", "password"), "bearer": ("token",),
              "token": ("token_url", "username", "password")}.get(auth.kind, ())
    for key in needed:
        if not getattr(auth, key):
            raise keys.error(key, f"missing: auth = \"{auth.kind}\" needs it")
    if auth.kind == "key":
        if not auth.keys:
            raise keys.error("keys", "missing: auth = \"key\" needs the key name(s) and value(s)")
        empty = [k for k, v in auth.keys.items() if not v]
        if empty:
            raise keys.error(f"keys.{empty[0]}", "must not be empty (the template leaves it "
                                                 "for you to fill in)")
    return auth


def _answer(keys: _Keys) -> AnswerShape:
    kind = keys.text("answer", "json", ("json", "text"))
    pattern = keys.text("answer_regex", "")
    regex = None
    if pattern:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise keys.error("answer_regex", f"not a valid regular expression: {exc}") from None
        if "id" not in regex.groupindex:
            raise keys.error("answer_regex", "needs a named group (?P<id>...) for the message id")
    statuses = keys.raw("retry_statuses", [408, 429])
    if not isinstance(statuses, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 400 <= s <= 499 for s in statuses):
        raise keys.error("retry_statuses", f"must be a list of 4xx status codes, got {statuses!r}")
    answer = AnswerShape(
        kind=kind, id_path=keys.text("id_path", ""), error_path=keys.text("error_path", ""),
        code_path=keys.text("code_path", ""), regex=regex,
        ok_codes=frozenset(keys.names("ok_codes")),
        retry_codes=frozenset(keys.names("retry_codes")),
        faults_path=keys.text("faults_path", ""), results_path=keys.text("results_path", ""),
        id_format=keys.text("id_format", "{id}"), retry_statuses=frozenset(statuses),
    )
    if kind == "json" and not answer.id_path:
        raise keys.error("id_path", "missing: answer = \"json\" needs where the message id is")
    if kind == "text" and regex is None:
        raise keys.error("answer_regex", "missing: answer = \"text\" needs a regular "
                                         "expression with (?P<id>...)")
    return answer


def _callbacks(keys: _Keys, region: str) -> Callbacks:
    callbacks = Callbacks(
        auth=keys.text("callback_auth", "path", ("path", "header", "basic")),
        secret=keys.text("callback_secret", ""),
        header=keys.text("callback_header", "X-Callback-Secret"),
        username=keys.text("callback_username", ""),
        reports=_report_fields(keys.table("dlr")), replies=_reply_fields(keys.table("mo")),
        inbound_number=keys.text("inbound_number", ""), region=region,
    )
    if callbacks.secret and callbacks.auth != "basic" and len(callbacks.secret) < 16:
        raise keys.error("callback_secret", "must be at least 16 characters (it is all "
                                            "that authenticates the provider's callbacks)")
    if callbacks.secret and callbacks.auth == "path" and not _URL_SAFE.fullmatch(
            callbacks.secret):
        raise keys.error("callback_secret", "goes in the URL path: letters, digits, . _ ~ - only")
    if callbacks.secret and callbacks.auth == "basic" and not callbacks.username:
        raise keys.error("callback_username", "missing: callback_auth = \"basic\" needs it")
    return callbacks


def _report_fields(keys: _Keys | None) -> ReportFields | None:
    if keys is None:
        return None
    words = keys.strings("statuses")
    statuses: dict[str, Status] = {}
    for word, name in words.items():
        if name not in _REPORT_STATUSES:
            raise keys.error(f"statuses.{word}", f"must be one of "
                                                 f"{', '.join(_REPORT_STATUSES)}; got {name!r}")
        statuses[word] = _REPORT_STATUSES[name]
    fields = ReportFields(id=keys.names("id"), status=keys.names("status"), statuses=statuses,
                          error=keys.names("error"))
    for key in ("id", "status"):
        if not getattr(fields, key):
            raise keys.error(key, "missing: a delivery report needs it")
    for template in fields.id:
        try:
            placeholders.names(template)
        except ValueError as exc:
            raise keys.error("id", str(exc)) from None
    keys.done()
    return fields


def _reply_fields(keys: _Keys | None) -> ReplyFields | None:
    if keys is None:
        return None
    fields = ReplyFields(sender=keys.names("sender"), text=keys.names("text"),
                         id=keys.names("id"), recipient=keys.names("recipient"))
    for key in ("sender", "text"):
        if not getattr(fields, key):
            raise keys.error(key, "missing: a reply needs it")
    keys.done()
    return fields


def _check_together(keys: _Keys, settings: UpstreamSettings) -> None:
    """What only the keys together decide: placeholders, batching, where keys can go."""
    request, answer = settings.request, settings.answer
    batched = request.body == "json" and placeholders.MESSAGES in placeholders.json_strings(
        request.json)
    if batched and request.message is None:
        raise keys.error("message", "missing: \"{messages}\" in the JSON body needs the "
                                    "object to send per message")
    if request.batch_size > 1 and not batched:
        raise keys.error("batch_size", "more than 1 needs a JSON body with \"{messages}\" "
                                       "and a message table")
    allowed = placeholders.MESSAGE_FIELDS
    checks: list[tuple[str, str, frozenset[str]]] = [
        *(("fields", v, allowed) for v in request.fields.values()),
        *(("ucs2_fields", v, allowed) for v in request.ucs2_fields.values()),
        *(("message", v, allowed) for v in placeholders.json_strings(request.message)),
        *(("json", v, frozenset() if batched else allowed)
          for v in placeholders.json_strings(request.json) if v != placeholders.MESSAGES),
        ("id_format", answer.id_format, allowed | {"id"}),
    ]
    for key, template, names in checks:
        why = placeholders.check(template, names)
        if why is not None:
            raise keys.error(key, why)
    if "id" not in placeholders.names(answer.id_format):
        raise keys.error("id_format", "must contain {id}, the provider's message id")
    if settings.auth.key_in == "form" and settings.auth.kind == "key" and request.body != "form":
        raise keys.error("key_in", "\"form\" needs body = \"form\"")
    if request.ucs2_fields and request.body != "form":
        raise keys.error("ucs2_fields", "only form bodies take extra fields for UCS-2")
