"""The batch rules: which batches get a report file, and what a final report changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hub.batches import Batch, BatchProgress, BatchState, needs_report, reported
from hub.model import Status
from tests.factories import NOW

LATER = NOW + timedelta(minutes=5)
BATCH = Batch(id="01J0000000000000000000000A", account_id=1, file_name="a.csv",
              sha256="ab" * 32, format="csv", received_at=NOW, state=BatchState.ACCEPTED)
FAILED = replace(BATCH, state=BatchState.FAILED, finished_at=NOW)
DONE = {Status.DELIVERED: 3, Status.UNDELIVERED: 1}


def test_accepted_batch_becomes_final_when_its_report_is() -> None:
    progress = BatchProgress(BATCH, DONE)
    assert progress.all_final and needs_report(progress)
    assert reported(progress, LATER) == replace(BATCH, state=BatchState.FINAL,
                                                report_final=True, finished_at=LATER)


def test_failed_batch_stays_failed_when_its_report_is_final() -> None:
    progress = BatchProgress(FAILED, DONE)
    assert progress.all_final and needs_report(progress)
    assert reported(progress, LATER) == replace(FAILED, report_final=True)


def test_failed_batch_with_messages_pending_is_not_final() -> None:
    assert not BatchProgress(FAILED, {**DONE, Status.SUBMITTED: 1}).all_final


def test_only_a_failed_batch_without_messages_needs_no_report() -> None:
    assert not needs_report(BatchProgress(FAILED, {}))
    assert needs_report(BatchProgress(BATCH, {}))  # its summary says every row was rejected
