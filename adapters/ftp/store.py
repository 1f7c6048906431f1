"""The spool roles the FTP drop uses: accounts (logins, homes) and batches (the files,
their progress and report files)."""

from __future__ import annotations

from typing import Protocol

from hub.ports import AccountStore, BatchStore


class FtpStore(AccountStore, BatchStore, Protocol):
    """Accounts and batches: what the FTP drop may read and write in the spool."""
