"""The spool roles the FTP drop uses: accounts (logins, homes), batches (the files,
their progress and report files) and the privacy log (originals purged)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from hub.ports import AccountStore, BatchStore


class FtpStore(AccountStore, BatchStore, Protocol):
    """Accounts and batches: what the FTP drop may read and write in the spool."""

    def record_privacy(self, at: datetime, action: str, subject: str | None, actor: str,
                       detail: dict[str, int]) -> None:
        """A row of the privacy log (hub.privacy.PrivacyStore's)."""
        ...
