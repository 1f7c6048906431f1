"""The portal's signed session cookies and their CSRF tokens: a cookie carries the
account's (or operator's) id, when it was issued and a nonce, signed with a key derived
from the data directory's secret, one key for customers and another for operators. The
server keeps only the sessions signed out before they expired (by a digest)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

COOKIE = "smshub_portal"
LOGIN_COOKIE = "smshub_login"  # the double-submit token of the sign-in form
# The operators' own, sent only to /admin; `account_id` then carries the operator's id.
ADMIN_COOKIE = "smshub_operator"
ADMIN_LOGIN_COOKIE = "smshub_operator_login"
ADMIN_PURPOSE = b"smshub operator session"


@dataclass(frozen=True, slots=True)
class Session:
    account_id: int
    issued: float
    nonce: str

    def bound_to(self, stamp: str) -> bool:
        """Whether the session was issued bound to `stamp` (signed with the rest)."""
        return bool(stamp) and self.nonce.startswith(f"{stamp}.")


class Sessions:
    def __init__(self, secret: bytes, max_age: float,
                 purpose: bytes = b"smshub portal session") -> None:
        # A key of its own: a session signature can never pass for an API-key digest, nor
        # (another purpose) a customer's session for an operator's.
        self._key = hmac.new(secret, purpose, hashlib.sha256).digest()
        self.max_age = max_age

    def issue(self, account_id: int, bound: str = "") -> str:
        """A signed cookie value; `bound` starts its nonce (Session.bound reads it back)."""
        nonce = f"{bound}.{secrets.token_urlsafe(16)}" if bound else secrets.token_urlsafe(16)
        body = json.dumps({"a": account_id, "t": int(time.time()), "n": nonce},
                          separators=(",", ":"))
        payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session the cookie carries; None if absent, forged or too old."""
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(int(data["a"]), float(data["t"]), str(data["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= time.time() - session.issued <= self.max_age:
            return None
        return session

    def ended_key(self, session: Session) -> str:
        """The name the spool keeps a signed-out session under: a digest of its nonce,
        with this side's key (a customer's and an operator's never share one)."""
        return self._sign(f"ended:{session.nonce}")

    def expires(self, session: Session) -> datetime:
        return datetime.fromtimestamp(session.issued + self.max_age, UTC)

    def csrf(self, session: Session) -> str:
        """The session's CSRF token: bound to its nonce, so another session's is refused."""
        return self._sign(f"csrf:{session.nonce}")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
