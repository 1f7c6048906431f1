"""One request to an HTTP upstream and its answer: messages grouped into requests, each
request written from the configured template, and the provider's answer read back into
one SubmitResult per message (its id, or its error and whether it is worth retrying)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from adapters.carriers.http import placeholders
from adapters.carriers.http.settings import AnswerShape, RequestShape
from hub.model import Encoding, ErrorInfo, Message, SubmitResult, Verdict

log = logging.getLogger(__name__)

_ERROR_TEXT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class AuthParts:
    """What authentication adds to a request: headers, form fields, query parameters."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    form: Mapping[str, str] = field(default_factory=dict, repr=False)
    query: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Outgoing:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    content: bytes | None = field(default=None, repr=False)


def plan(messages: Sequence[Message], shape: RequestShape) -> list[list[Message]]:
    """Requests of at most batch_size messages, none naming a number twice: providers
    that answer with one id per request tell a batch's messages apart by number."""
    groups: list[list[Message]] = []
    numbers: set[str] = set()
    for message in messages:
        if (not groups or len(groups[-1]) >= shape.batch_size
                or message.recipient in numbers):
            groups.append([])
            numbers = set()
        groups[-1].append(message)
        numbers.add(message.recipient)
    return groups


def number(e164: str, shape: RequestShape) -> str:
    return e164[1:] if shape.number_format == "digits" and e164.startswith("+") else e164


def _sender(message: Message, shape: RequestShape) -> str:
    sender = message.sender or shape.default_sender
    numeric = sender.startswith("+") and sender[1:].isdigit()
    return number(sender, shape) if numeric else sender


def as_ucs2(message: Message, shape: RequestShape) -> bool:
    """Whether the message goes as UCS-2: so encoded, or not writable in the form's charset."""
    if message.encoding is Encoding.UCS2:
        return True
    if shape.form_charset == "utf-8":
        return False
    try:
        message.text.encode(shape.form_charset)
    except UnicodeEncodeError:
        return True
    return False


def values(message: Message, shape: RequestShape) -> dict[str, str]:
    """The placeholders a request template may use for this message."""
    text = message.text
    if shape.ucs2_text == "hex" and as_ucs2(message, shape):
        text = message.text.encode("utf-16-be").hex().upper()
    return {"to": number(message.recipient, shape), "from": _sender(message, shape),
            "text": text, "id": message.id, "client_ref": message.client_ref or ""}


def build(group: Sequence[Message], shape: RequestShape, auth: AuthParts) -> Outgoing:
    """The request for one group of messages (one message unless the body is a batch)."""
    headers = {**shape.headers, **auth.headers}
    query = dict(auth.query)
    content: bytes | None = None
    if shape.body == "form":
        form = _form(group[0], shape) | dict(auth.form)
        if shape.method == "GET":
            query = form | query
        else:
            content = urlencode(form, encoding=shape.form_charset, errors="replace").encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif shape.body == "json":
        content = json.dumps(_json(group, shape), ensure_ascii=False).encode()
        headers.setdefault("Content-Type", "application/json")
    url = shape.url
    if query:
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}{urlencode(query, encoding=shape.form_charset, errors='replace')}"
    return Outgoing(shape.method, url, headers, content)


def _form(message: Message, shape: RequestShape) -> dict[str, str]:
    given = values(message, shape)
    fields = dict(shape.fields)
    if as_ucs2(message, shape):
        fields |= shape.ucs2_fields
    rendered = {name: placeholders.render(t, given) for name, t in fields.items()}
    # A field that renders empty (an optional sender) is left out, not sent blank.
    return {name: value for name, value in rendered.items() if value != ""}


def _json(group: Sequence[Message], shape: RequestShape) -> Any:
    if shape.message is None:
        return placeholders.render_json(shape.json, values(group[0], shape))
    items = [placeholders.render_json(shape.message, values(m, shape)) for m in group]
    return placeholders.render_json(shape.json, {}, items)


# --- answers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Said:
    """What an answer (or one entry of it) says: an id, a code, an error text."""

    id: str | None = None
    code: str | None = None
    error: str | None = None


def read_success(group: Sequence[Message], body: str, answer: AnswerShape,
                 shape: RequestShape) -> list[SubmitResult]:
    """One result per message from a 2xx answer."""
    if answer.kind == "text":
        return [_judge(m, _said_by_regex(body, answer), answer, shape) for m in group]
    try:
        document = json.loads(body)
    except ValueError:
        error = ErrorInfo("bad_answer", f"the answer is not JSON: {_snippet(body)}")
        return [SubmitResult(m.id, Verdict.REJECTED, error=error) for m in group]
    if answer.results_path:
        entries = placeholders.path(document, answer.results_path)
        entries = entries if isinstance(entries, list) else []
        return [_judge(m, _said_in(entries[i] if i < len(entries) else None, answer),
                       answer, shape) for i, m in enumerate(group)]
    results = [_judge(m, _said_in(document, answer), answer, shape) for m in group]
    if answer.faults_path:
        results = _apply_faults(group, results, placeholders.path(document,
                                                                    answer.faults_path), shape)
    return results


def _said_in(entry: Any, answer: AnswerShape) -> _Said:
    def at(dotted: str) -> str | None:
        return placeholders.scalar(placeholders.path(entry, dotted)) if dotted else None

    return _Said(at(answer.id_path), at(answer.code_path), at(answer.error_path))


def _said_by_regex(body: str, answer: AnswerShape) -> _Said:
    assert answer.regex is not None  # config: answer = "text" needs answer_regex
    match = answer.regex.search(body)
    if match is None:
        return _Said(error=f"unexpected answer: {_snippet(body)}")
    groups = match.groupdict()
    return _Said(groups.get("id") or None, groups.get("code") or None,
                 (groups.get("error") or "").strip() or None)


def _judge(message: Message, said: _Said, answer: AnswerShape,
           shape: RequestShape) -> SubmitResult:
    """A code in retry_codes is retried; one outside ok_codes (when given) is refused;
    otherwise an id means submitted, and no id means refused with whatever reason there is."""
    code = said.code
    error = ErrorInfo(f"upstream_{code}" if code else "upstream_error",
                      said.error or f"code {code}")
    if code is not None and code in answer.retry_codes:
        return SubmitResult(message.id, Verdict.RETRY, error=error)
    refused = code is not None and bool(answer.ok_codes) and code not in answer.ok_codes
    if said.id is not None and not refused:
        carrier_id = placeholders.render(answer.id_format,
                                         {**values(message, shape), "id": said.id})
        return SubmitResult(message.id, Verdict.SUBMITTED, carrier_message_id=carrier_id)
    if said.error is None and code is None:
        error = ErrorInfo("no_message_id", "the provider's answer holds no message id")
    return SubmitResult(message.id, Verdict.REJECTED, error=error)


def _apply_faults(group: Sequence[Message], results: list[SubmitResult], faults: Any,
                  shape: RequestShape) -> list[SubmitResult]:
    """Reject the messages a fault names by their number, with the fault's other text."""
    if not isinstance(faults, list) or not faults:
        return results
    index = {number(m.recipient, shape).lstrip("+"): i for i, m in enumerate(group)}
    unmatched = 0
    for fault in faults:
        texts = _fault_texts(fault)
        hits = [index[t.lstrip("+")] for t in texts if t.lstrip("+") in index]
        if not hits:
            unmatched += 1
            continue
        reason = "; ".join(t for t in texts if t.lstrip("+") not in index) or "refused"
        for i in hits:
            results[i] = SubmitResult(group[i].id, Verdict.REJECTED,
                                      error=ErrorInfo("upstream_fault", reason[:200]))
    if unmatched:
        log.warning("%d faults in the provider's answer name no number of the request; "
                    "their messages stay submitted", unmatched, extra={"action": "submit"})
    return results


def _fault_texts(fault: Any) -> list[str]:
    if isinstance(fault, Mapping):
        found = [placeholders.scalar(v) for v in fault.values()]
    else:
        found = [placeholders.scalar(fault)]
    return [t for t in found if t]


def error_text(body: str, answer: AnswerShape) -> str:
    """The provider's reason in a refusal: at error_path, in the regex's error group, or
    the start of the body."""
    if answer.error_path:
        try:
            found = placeholders.scalar(placeholders.path(json.loads(body), answer.error_path))
        except ValueError:
            found = None
        if found:
            return found[:_ERROR_TEXT_LIMIT]
    if answer.regex is not None:
        match = answer.regex.search(body)
        if match is not None and match.groupdict().get("error"):
            return str(match.group("error")).strip()[:_ERROR_TEXT_LIMIT]
    return _snippet(body)


def _snippet(body: str) -> str:
    return " ".join(body.split())[:_ERROR_TEXT_LIMIT] or "(empty answer)"
