"""The outgoing SMTP relay, the one place that talks to it: sends one mail and turns its
answer into Rejected (5xx) or TemporaryFailure (anything else that fails)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from hub.errors import Rejected, TemporaryFailure
from hub.sections import SmtpSection


@dataclass(frozen=True, slots=True)
class Relay:
    """The outgoing SMTP relay; the one place that talks to it."""

    host: str
    port: int
    security: str  # starttls, tls, none
    username: str = ""
    password: str = ""
    timeout: float = 30.0

    @classmethod
    def from_section(cls, s: SmtpSection) -> Relay:
        return cls(s.relay_host, s.relay_port, s.relay_security, s.relay_username,
                   s.relay_password, s.relay_timeout)

    async def send(self, message: EmailMessage) -> None:
        """Send one mail; 5xx is Rejected, anything else that fails is temporary."""
        try:
            await aiosmtplib.send(
                message, hostname=self.host, port=self.port,
                username=self.username or None, password=self.password or None,
                use_tls=self.security == "tls",
                start_tls=self.security == "starttls",
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _translate(min(r.code for r in exc.recipients),
                             "; ".join(r.message for r in exc.recipients)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _translate(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"relay {self.host}:{self.port}: {exc}") from exc


def _translate(code: int, text: str) -> Exception:
    if 500 <= code < 600:
        return Rejected("relay_rejected", f"the relay refused the mail: {code} {text}")
    return TemporaryFailure(f"the relay answered {code} {text}")
