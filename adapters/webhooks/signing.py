"""Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` under a `whsec_`-prefixed base64 secret, several signatures
space-separated while a rotated secret overlaps the new one."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hub.webhooks import SECRET_PREFIX


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one delivery, signed with every secret given (new first)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body)
                                      for s in secrets_),
    }
