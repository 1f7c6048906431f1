"""An HTTP upstream's settings as frozen records: the request, its authentication, how
its answer is read and its callbacks; `config.py` builds them from a carrier table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.model import Status


@dataclass(frozen=True, slots=True)
class Auth:
    """How requests prove who we are. Secrets stay out of repr (and so out of logs)."""

    kind: str = "none"  # none | basic | bearer | key | token
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    key_in: str = "header"  # header | form | query
    token_url: str = ""
    token_path: str = "token"  # noqa: S105 (a JSON path, not a secret)
    token_minutes_path: str = ""
    token_max_age: float = 3600.0


@dataclass(frozen=True, slots=True)
class RequestShape:
    """What one request looks like: where it goes and how messages are written into it."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = "form"  # form | json | none
    fields: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    message: Any = None  # the per-message object of a JSON batch
    batch_size: int = 1
    number_format: str = "e164"  # e164 (+27...) | digits (27...)
    default_sender: str = ""
    form_charset: str = "utf-8"
    ucs2_fields: Mapping[str, str] = field(default_factory=dict)
    ucs2_text: str = "plain"  # plain | hex (UTF-16BE octets)


@dataclass(frozen=True, slots=True)
class AnswerShape:
    """How to read the provider's answer: its message id, its error, and which answers
    are worth another attempt."""

    kind: str = "json"  # json | text
    id_path: str = ""
    error_path: str = ""
    code_path: str = ""
    regex: re.Pattern[str] | None = None
    ok_codes: frozenset[str] = frozenset()
    retry_codes: frozenset[str] = frozenset()
    faults_path: str = ""
    results_path: str = ""
    id_format: str = "{id}"
    retry_statuses: frozenset[int] = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class ReportFields:
    """Where a delivery-report callback keeps the message id, status word and error."""

    id: tuple[str, ...]
    status: tuple[str, ...]
    statuses: Mapping[str, Status]
    error: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyFields:
    """Where a reply (mobile-originated) callback keeps the handset, text and ids."""

    sender: tuple[str, ...]
    text: tuple[str, ...]
    id: tuple[str, ...] = ()
    recipient: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Callbacks:
    """The provider's callbacks to the hub and how they are authenticated."""

    auth: str = "path"  # path | header | basic
    secret: str = field(default="", repr=False)
    header: str = "X-Callback-Secret"
    username: str = ""
    reports: ReportFields | None = None
    replies: ReplyFields | None = None
    inbound_number: str = ""
    region: str = "ZA"

    @property
    def enabled(self) -> bool:
        return bool(self.secret)


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    name: str
    request: RequestShape
    auth: Auth
    answer: AnswerShape
    callbacks: Callbacks
    template: str = ""
    timeout: float = 10.0
    max_connections: int = 10
    max_throttle_wait: float = 5.0
    proxy: str = ""
    # Seconds a submitted message waits for its final report (0: validity + margin).
    receipt_timeout: float = 0.0
    receipt_margin: float = 3600.0
    price_per_segment: float = 0.0  # what the provider charges, for cost reports
