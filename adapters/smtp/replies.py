"""The SMTP replies the email-to-SMS listener gives, by name: code, enhanced status
(RFC 3463) and text in one place, so the meaning of each answer can be read here."""

from __future__ import annotations

OK = "250 OK"
TEMPORARY = "451 4.3.0 Temporary failure, try again later"
NEED_MAIL_AND_RCPT = "503 5.5.1 Error: need MAIL and RCPT first"
NO_SMS_IN_MAIL = "550 5.6.0 No SMS in this mail: no to: or csv: lines"
LOCKED_OUT = "454 4.7.0 Too many failed logins from this address; try again later"
AUTH_TEMPORARY = "454 4.7.0 Temporary authentication failure"
AUTH_CANNOT_SPLIT = "501 5.5.2 Can't split auth value"
AUTH_NOT_BASE64 = "501 5.5.2 Can't decode base64"


def spool_unavailable(reason: str, full: bool) -> str:
    """451 with what is wrong; 4.3.1 (mail system full, RFC 3463) for a full disk."""
    return f"451 4.3.{1 if full else 0} Temporary failure: {reason}, try again later"


def auth_required(address: str) -> str:
    return (f"530 5.7.0 Authentication required: <{address}> is not an allowed "
            "sender of any account; log in with AUTH")


def sender_not_allowed(address: str) -> str:
    return (f"550 5.7.1 <{address}> may not send SMS here: it is not an allowed "
            "sender of any account")


def too_many_recipients(limit: int) -> str:
    return f"452 4.5.3 Too many recipients: at most {limit} per mail"


def bad_recipient(address: str, reason: str) -> str:
    return f"550 5.1.1 <{address}>: {reason}"


def too_complex(reason: str) -> str:
    """A mail whose structure is refused whole (too deep, too many parts, a header too
    long): 554, as no retry of the same mail can succeed."""
    return f"554 5.6.0 {reason}"


def refused_mail(reason: str) -> str:
    return f"550 5.6.0 {reason}"


def no_sms_sent(reasons: str) -> str:
    return "550 5.6.0 No SMS sent: " + reasons[:400]


def automatic_dropped(reason: str) -> str:
    return (f"250 2.0.0 Automatic mail ({reason}) accepted and dropped: no SMS sent, "
            "no receipt (RFC 3834)")


def queued(mail_id: str, accepted: int, also: str) -> str:
    return f"250 2.0.0 Ok: queued as {mail_id} ({accepted} SMS{also})"
