"""Logins on the dialects' paths (the WinSMS, Clickatell and Kannel forms, HTTP and
XML): a name and password, or an smshub API key where the password goes, as some clients
send; failures counted per client address, an address past the limit refused unchecked."""

from __future__ import annotations

import logging

from starlette.requests import Request

from hub.accounts import KEY_PREFIX, Credentials
from hub.errors import AuthenticationError
from hub.logins import FailedLogins
from hub.model import Account
from hub.sections import DialectsSection

log = logging.getLogger(__name__)


class LockedOut(AuthenticationError):
    """Too many failed logins from this address lately: not even checked."""


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


class Logins:
    def __init__(self, credentials: Credentials, settings: DialectsSection) -> None:
        self.credentials = credentials
        self.lockout = settings.login_lockout_seconds
        self._failures = FailedLogins(settings.login_failures_per_ip, self.lockout)

    async def check(self, address: str, user: str | None, password: str | None) -> Account:
        """The account, or AuthenticationError (LockedOut when not even checked)."""
        if self._failures.locked_out(address):
            raise LockedOut(f"too many failed logins from {address}")
        try:
            if password and password.startswith(f"{KEY_PREFIX}_"):
                return await self.credentials.by_api_key(password)
            if not user or password is None:
                raise AuthenticationError("no user and password")
            return await self.credentials.by_password(user, password)
        except AuthenticationError:
            self._failures.record(address)
            if self._failures.locked_out(address):
                log.warning("failed logins on the dialects from %s: refused for %d s",
                            address, self.lockout, extra={"action": "dialect-lockout"})
            raise

    def cached(self, address: str, user: str | None, password: str | None) -> Account | None:
        """The account `check` would give, when the credentials' last check is still in
        the cache and the address is not locked out; None when only `check` can say
        (it also counts a failure). Lets a request be answered without a task."""
        if not password or self._failures.locked_out(address):
            return None
        if password.startswith(f"{KEY_PREFIX}_"):
            return self.credentials.cached_key(password)
        return self.credentials.cached_password(user, password) if user else None

    def retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(int(self.lockout))}
