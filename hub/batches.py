"""Batches: one uploaded file of messages, its progress through intake and delivery.
Pure records and rules; the spool stores them, adapters (FTP drop) create them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from hub.model import PublicState, Status


class BatchState(StrEnum):
    """Where a batch stands. Only `processing` and `accepted` can still change; the report
    file of a failed batch is still followed (`Batch.report_final`)."""

    PROCESSING = "processing"  # rows are being read and handed to intake
    ACCEPTED = "accepted"  # every row read; messages not yet all final
    FINAL = "final"  # every accepted message has a final status
    DUPLICATE = "duplicate"  # same content as an earlier batch: nothing sent
    UNREADABLE = "unreadable"  # the file could not be read at all: nothing sent
    # Stopped part-way (spool failure, hub restart): rows after a line unsent; the messages
    # it had accepted are sent and reported on like those of an accepted batch.
    FAILED = "failed"

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
    # Nothing more will be reported: the report file is final, or a failed batch held no
    # message to report. Apart from `state`, so a failed batch stays failed meanwhile.
    report_final: bool = False


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A batch with its messages counted by status (delivered so far, pending, failed)."""

    batch: Batch
    by_status: dict[Status, int] = field(default_factory=dict)

    def count(self, state: PublicState) -> int:
        return sum(n for status, n in self.by_status.items() if status.public is state)

    @property
    def messages(self) -> int:
        """Every message the spool holds for the batch."""
        return sum(self.by_status.values())

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


def needs_report(progress: BatchProgress) -> bool:
    """An accepted batch always gets a report file (even with every row rejected, its
    summary line says so); a failed batch only if the spool holds messages of it."""
    return progress.batch.state is not BatchState.FAILED or progress.messages > 0


def reported(progress: BatchProgress, now: datetime) -> Batch:
    """The batch once its report is final: an accepted batch becomes final; a failed one
    keeps its state and finish time, and only its report is marked final."""
    batch = progress.batch
    return replace(batch, state=next_state(progress), report_final=True,
                   finished_at=batch.finished_at or now)
