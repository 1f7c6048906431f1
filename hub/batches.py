"""Batches: one uploaded file of messages, its progress through intake and delivery.
Pure records and rules; the spool stores them, adapters (FTP drop) create them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from hub.model import PublicState, Status


class BatchState(StrEnum):
    """Where a batch stands. Only `processing` and `accepted` can still change."""

    PROCESSING = "processing"  # rows are being read and handed to intake
    ACCEPTED = "accepted"  # every row read; messages not yet all final
    FINAL = "final"  # every accepted message has a final status
    DUPLICATE = "duplicate"  # same content as an earlier batch: nothing sent
    UNREADABLE = "unreadable"  # the file could not be read at all: nothing sent
    FAILED = "failed"  # stopped part-way (spool failure, hub restart): rows after a line unsent

    @property
    def open(self) -> bool:
        return self in (BatchState.PROCESSING, BatchState.ACCEPTED)


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    account_id: int
    file_name: str
    sha256: str
    format: str
    received_at: datetime
    state: BatchState
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicate_of: str | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A batch with its messages counted by status (delivered so far, pending, failed)."""

    batch: Batch
    by_status: dict[Status, int] = field(default_factory=dict)

    def count(self, state: PublicState) -> int:
        return sum(n for status, n in self.by_status.items() if status.public is state)

    @property
    def delivered(self) -> int:
        return self.count(PublicState.DELIVERED)

    @property
    def failed(self) -> int:
        return self.count(PublicState.FAILED)

    @property
    def pending(self) -> int:
        return self.count(PublicState.PENDING)

    @property
    def all_final(self) -> bool:
        """Every message of a fully read batch has a final status."""
        return self.batch.state is not BatchState.PROCESSING and self.pending == 0


def next_state(progress: BatchProgress) -> BatchState:
    """The state a batch moves to after a look at its messages."""
    if progress.batch.state is BatchState.ACCEPTED and progress.all_final:
        return BatchState.FINAL
    return progress.batch.state
