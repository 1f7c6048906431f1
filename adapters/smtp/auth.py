"""SMTP AUTH for the email-to-SMS listener: PLAIN and LOGIN against account passwords,
with each failure answered late and a per-IP cap on failures (like the FTP drop's)."""

from __future__ import annotations

import asyncio
import base64
import logging

from aiosmtpd.smtp import SMTP, AuthResult

from adapters.smtp import replies
from hub.accounts import Credentials
from hub.errors import AuthenticationError, TemporaryFailure
from hub.logins import FailedLogins
from hub.sections import SmtpSection

log = logging.getLogger(__name__)

class SmtpAuth:
    """The listener's auth_PLAIN and auth_LOGIN hooks delegate here."""

    def __init__(self, section: SmtpSection, credentials: Credentials) -> None:
        self._credentials = credentials
        self._delay = section.failed_auth_delay
        self._failures = FailedLogins(section.auth_failures_per_ip,
                                      section.auth_lockout_seconds)

    async def plain(self, server: SMTP, args: list[str]) -> AuthResult:
        if self._failures.locked_out(_peer(server)):
            return await self._refuse(server, replies.LOCKED_OUT)
        blob = await _initial_or_challenge(server, args, "")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\0")
        if len(parts) != 3:
            await server.push(replies.AUTH_CANNOT_SPLIT)
            return AuthResult(success=False, handled=True)
        return await self._check(server, parts[1], parts[2])

    async def login(self, server: SMTP, args: list[str]) -> AuthResult:
        if self._failures.locked_out(_peer(server)):
            return await self._refuse(server, replies.LOCKED_OUT)
        name = await _initial_or_challenge(server, args, "Username:")
        if name is None:
            return AuthResult(success=False, handled=True)
        password = await _challenge(server, "Password:")
        if password is None:
            return AuthResult(success=False, handled=True)
        return await self._check(server, name, password)

    async def _check(self, server: SMTP, name: bytes, password: bytes) -> AuthResult:
        """An account name and password, checked off the event loop (argon2)."""
        try:
            account = await self._credentials.by_password(
                name.decode("utf-8", "replace"), password.decode("utf-8", "replace"))
        except AuthenticationError:
            self._failures.record(_peer(server))
            log.info("SMTP AUTH failed", extra={"action": "smtp-auth"})
            return await self._refuse(server, None)
        except TemporaryFailure:
            return AuthResult(success=False, handled=False,
                              message=replies.AUTH_TEMPORARY)
        return AuthResult(success=True, auth_data=account)

    async def _refuse(self, server: SMTP, message: str | None) -> AuthResult:
        # Answering late slows password guessing on this connection; the per-IP cap
        # bounds guessing over many connections (and the argon2 work it would cost).
        await asyncio.sleep(self._delay)
        return AuthResult(success=False, handled=False, message=message)


def _peer(server: SMTP) -> str:
    peer = server.session.peer if server.session is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


async def _initial_or_challenge(server: SMTP, args: list[str], prompt: str) -> bytes | None:
    if len(args) == 1:
        return await _challenge(server, prompt)
    try:
        return base64.b64decode(args[1].encode(), validate=True)
    except ValueError:
        await server.push(replies.AUTH_NOT_BASE64)
        return None


async def _challenge(server: SMTP, prompt: str) -> bytes | None:
    answer = await server.challenge_auth(prompt)
    return answer if isinstance(answer, bytes) else None
