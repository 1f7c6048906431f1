"""Consent records: a recipient's agreement, kept per account, to direct marketing
outside CPA regulation 4's hours. The only thing that lifts the rule for that number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Consent:
    """One account's record that `number` (E.164) agreed to marketing at other times;
    `note` says how (a signed form, a recorded call), for whoever must prove it."""

    account_id: int
    number: str
    created_at: datetime
    note: str | None = None


class ConsentStore(Protocol):
    """The spool's consent role; intake's commit and the claim read it themselves."""

    def add_consent(self, new: Consent) -> tuple[Consent, bool, int]:
        """The account's consent for the number, whether it was recorded now, and how
        many of the account's messages to it that CPA hours held it released to go now."""
        ...

    def remove_consent(self, account_id: int, number: str) -> bool: ...
    def list_consents(self, account_id: int, after: str, limit: int) -> list[Consent]:
        """One page of the account's consents by number, after `after` ("" first)."""
        ...
