"""Automatic mail (RFC 3834): bounces and auto-replies are recognised here, so the
listener neither sends SMS for them nor answers them with a receipt (no mail loops)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import getaddresses

from adapters.smtp import text as mail_text

# Precedence values mail robots set (auto_reply: Microsoft's autoresponders).
_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond")
_DAEMON = "mailer-daemon"


def is_null(mail_from: str) -> bool:
    """`MAIL FROM:<>` (aiosmtpd hands over `<>`): the reverse path of bounces."""
    return mail_from in ("", "<>")


def by_envelope(mail_from: str) -> str | None:
    """Why the envelope sender shows an automatic mail, or None: `MAIL FROM:<>` is the
    null reverse path of bounces and other reports; MAILER-DAEMON sends bounces."""
    if is_null(mail_from):
        return "null sender (a bounce)"
    if mail_from.rpartition("@")[0].lower() == _DAEMON:
        return "sent by MAILER-DAEMON"
    return None


def by_headers(message: EmailMessage) -> str | None:
    """Why the headers show an automatic mail (a short reason), or None for a person's
    mail: a report (multipart/report), a MAILER-DAEMON sender, `Auto-Submitted` other
    than `no`, `Precedence` bulk/junk/list/auto_reply, `X-Autoreply`/`X-Autorespond`."""
    if message.get_content_type() == "multipart/report":
        return "a delivery or read report (multipart/report)"
    senders = getaddresses([mail_text.header(message, "From"), mail_text.header(message,
                                                                                "Sender")])
    if any(address.rpartition("@")[0].lower() == _DAEMON for _, address in senders):
        return "sent by MAILER-DAEMON"
    submitted = _word(mail_text.header(message, "Auto-Submitted"))
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = _word(mail_text.header(message, "Precedence"))
    if precedence in _PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in _AUTOREPLY_HEADERS:
        if mail_text.header(message, name).strip():
            return f"{name} present"
    return None


def _word(value: str) -> str:
    """A header's keyword without its parameters or comments: `Auto-Replied; x=1`."""
    return value.split(";", 1)[0].split("(", 1)[0].strip().lower()
