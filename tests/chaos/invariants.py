"""After the last kill: wait until the hub has settled, then check each promise against
the spool (the SQLite file, read only), the answer files, the SMSC's count of
submit_sm, the relay's mails and the JSON API. Each check names what broke it."""

from __future__ import annotations

import csv
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from adapters.ftp.homes import Homes
from hub.model import FINAL_STATUSES
from tests.chaos.load import Ledger
from tests.chaos.rig import ACCOUNT, SMSC_PREFIX, UNDELIVERED_SUFFIX, RelaySink, Smsc

FINAL = {s.value for s in FINAL_STATUSES}
SAMPLE = 200  # acknowledged messages also read back through GET /v1/messages/{id}


@dataclass
class Spool:
    """One read of everything the checks need from the spool."""

    # id -> status, source, batch id, batch line, recipient, text, error code
    messages: dict[str, tuple[str, str, str | None, int | None, str, str, str | None]]
    events: dict[str, Counter[str]]  # message id -> event status -> count
    releases: set[str]  # messages whose lease was released or expired at some point
    outbox: dict[str, str]  # item id -> status
    notices: dict[str, set[str]]  # mail id -> outbox item ids of its receipts
    batches: dict[str, tuple[str, str]]  # file name -> (batch id, state)

    @classmethod
    def read(cls, db_path: Path) -> Spool:
        with sqlite3.connect(db_path, timeout=30) as db:
            # One snapshot for every table (the driver would read each in its own): a
            # batch finished between two reads would show done without its last rows.
            db.execute("BEGIN")
            messages = {r[0]: r[1:] for r in db.execute(
                "SELECT id, status, source, batch_id, batch_line, recipient, text, "
                "error_code FROM messages")}
            events: dict[str, Counter[str]] = {}
            releases: set[str] = set()
            for mid, status, detail in db.execute(
                    "SELECT message_id, status, detail FROM message_events"):
                events.setdefault(mid, Counter())[status] += 1
                if status == "queued" and detail.startswith(
                        ("released by", "lease of", "outcome unknown")):
                    releases.add(mid)
            outbox = dict(db.execute("SELECT id, status FROM outbox").fetchall())
            notices: dict[str, set[str]] = {}
            for item, mail in db.execute("SELECT item_id, mail_id FROM mail_notices "
                                         "WHERE kind = 'receipt'"):
                notices.setdefault(mail, set()).add(item)
            batches = {name: (bid, state) for bid, name, state in db.execute(
                "SELECT id, file_name, state FROM batches")}
        return cls(messages, events, releases, outbox, notices, batches)


@dataclass
class Verdict:
    """Each invariant's result ("ok" or what broke it) and the run's figures."""

    checks: dict[str, str] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)

    def require(self, name: str, problems: list[str]) -> None:
        self.checks[name] = "ok" if not problems else (
            f"{len(problems)} problem(s): " + "; ".join(problems[:8]))

    @property
    def failed(self) -> dict[str, str]:
        return {k: v for k, v in self.checks.items() if v != "ok"}


def result_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def unsettled(data: Path, ledger: Ledger) -> list[str]:
    """What the hub still owes; empty once everything has settled."""
    # The work area before the spool: an upload leaves it only once its rows are
    # committed, so one gone here has its messages in the read below (read the other way
    # round, one finished between the two reads was settled with its messages unseen).
    claimed = len(claimed_uploads(data))
    spool = Spool.read(data / "spool.db")
    results = data / "ftp" / ACCOUNT / "results"
    owed = [f"{sum(s[0] not in FINAL for s in spool.messages.values())} messages not final",
            f"{sum(s[1] == 'processing' for s in spool.batches.values())} batches processing",
            f"{sum(not (results / f'{n[:-4]}.result.csv').exists() for n in ledger.uploads)}"
            " acknowledged uploads without a result file",
            f"{sum(s not in ('sent', 'failed') for s in spool.outbox.values())} outbox items "
            "unsent",
            f"{sum(m.mail_id not in spool.notices for m in ledger.mails)} acknowledged mails "
            "without a receipt queued",
            f"{claimed} uploads claimed, not yet processed"]
    return [o for o in owed if not o.startswith("0 ")]


def claimed_uploads(data: Path) -> list[Path]:
    """Originals still in the FTP work area (`<batch id>-<name>`). A kill between an
    upload's claim and its record leaves one no client was answered for: the hub takes it
    up only once a lease has passed, so the run has not settled while one waits (a check
    made before would see its messages reach the SMSC and its result file appear)."""
    return [path for _, path in Homes(data).claimed_originals()]


def settle(data: Path, ledger: Ledger, timeout: float,
           progress: Callable[[str], None] = lambda _: None) -> tuple[float, list[str]]:
    """Poll until nothing is owed or `timeout` passes; (seconds taken, what is left)."""
    started = time.monotonic()
    last = ""
    while True:
        left = unsettled(data, ledger)
        if not left or time.monotonic() - started > timeout:
            return time.monotonic() - started, left
        if "; ".join(left) != last:
            last = "; ".join(left)
            progress(f"settling: {last}")
        time.sleep(0.25)


def check(data: Path, ledger: Ledger, smsc: Smsc, sink: RelaySink, http: str,
          key: str) -> Verdict:
    spool, verdict = Spool.read(data / "spool.db"), Verdict()
    _stored_once(spool, ledger, verdict)
    _final(spool, ledger, http, key, verdict)
    _submissions(spool, smsc, verdict)
    _batches(spool, ledger, data / "ftp" / ACCOUNT / "results", verdict)
    _outbox(spool, ledger, sink, verdict)
    return verdict


def _stored_once(spool: Spool, ledger: Ledger, verdict: Verdict) -> None:
    problems = [f"{source} ack {mid} not stored" for source, ids in
                (("rest", ledger.rest), ("xml", ledger.xml)) for mid in ids
                if mid not in spool.messages]
    problems += [f"{source} ack {mid} stored with source {spool.messages[mid][1]}"
                 for source, ids in (("rest", ledger.rest), ("xml", ledger.xml))
                 for mid in ids if mid in spool.messages and spool.messages[mid][1] != source]
    per_mail = Counter(s[2] for s in spool.messages.values() if s[1] == "smtp")
    problems += [f"mail {m.mail_id}: {per_mail[m.mail_id]} SMS stored for {m.recipients} "
                 "recipients" for m in ledger.mails if per_mail[m.mail_id] != m.recipients]
    same = Counter((s[4], s[5]) for s in spool.messages.values())
    problems += [f"{n} rows for one submission (text {text})"
                 for (_, text), n in same.items() if n > 1]
    lines = Counter((s[2], s[3]) for s in spool.messages.values() if s[1] == "ftp")
    problems += [f"batch {b} line {line} stored {n} times"
                 for (b, line), n in lines.items() if n > 1]
    verdict.require("every acknowledged message stored exactly once", problems)
    acked = set(ledger.rest) | set(ledger.xml)
    verdict.figures.update(stored=len(spool.messages),
                           stored_without_ack_http=sum(  # the kill took the answer: allowed
                               s[1] in ("rest", "xml") and mid not in acked
                               for mid, s in spool.messages.items()), acked_rest=len(ledger.rest),
                           acked_xml=len(ledger.xml), acked_mails=len(ledger.mails),
                           acked_smtp_sms=sum(m.recipients for m in ledger.mails),
                           acked_uploads=len(ledger.uploads))


def _final(spool: Spool, ledger: Ledger, http: str, key: str, verdict: Verdict) -> None:
    problems = [f"{mid} {s[0]}" for mid, s in spool.messages.items() if s[0] not in FINAL]
    sample = (ledger.rest + ledger.xml)[::max(1, len(ledger.rest + ledger.xml) // SAMPLE)]
    with httpx.Client(base_url=http, headers={"Authorization": f"Bearer {key}"},
                      timeout=10) as client:
        for mid in sample:
            body = client.get(f"/v1/messages/{mid}").json()
            if body.get("state") not in ("delivered", "failed"):
                problems.append(f"GET {mid}: state {body.get('state')}")
    verdict.require("every message reached a final status", problems)
    # The SMSC delivers everything; the simulator fails the numbers with one suffix only.
    wrong = [f"{mid} {s[0]} ({s[6]})" for mid, s in spool.messages.items()
             if s[0] in FINAL and s[0] != _expected(s[4])]
    verdict.require("every message ended as its carrier reported (none failed by a kill)",
                    wrong)
    verdict.figures["api_sampled"] = len(sample)
    for status, n in Counter(s[0] for s in spool.messages.values()).items():
        verdict.figures[f"status_{status}"] = n


def _expected(recipient: str) -> str:
    if not recipient.startswith(SMSC_PREFIX) and recipient.endswith(UNDELIVERED_SUFFIX):
        return "undelivered"
    return "delivered"


def _submissions(spool: Spool, smsc: Smsc, verdict: Verdict) -> None:
    """P7: at least once to the carrier, a second submit_sm only for a message whose
    lease a restart took back (the kill fell between submit_sm and recording its answer),
    and never more submissions than claims."""
    with smsc.lock:
        submits = Counter(smsc.submits)
    ours = {(s[4].lstrip("+"), s[5]): mid for mid, s in spool.messages.items()}
    problems = [f"SMSC got {key[1]} that the spool does not hold" for key in submits
                if key not in ours]
    twice = 0
    for mid, s in spool.messages.items():
        counted = spool.events.get(mid, Counter())
        if counted["submitted"] > 1:
            problems.append(f"{mid} recorded submitted {counted['submitted']} times")
        if not s[4].startswith(SMSC_PREFIX):
            continue
        n = submits[(s[4].lstrip("+"), s[5])]
        if n > counted["sending"]:
            problems.append(f"{mid}: {n} submit_sm for {counted['sending']} claims")
        if n > 1:
            twice += 1
            if mid not in spool.releases:
                problems.append(f"{mid}: {n} submit_sm without a lease taken back")
        if s[0] == "delivered" and n == 0:
            problems.append(f"{mid} delivered but never submitted")
    verdict.require("no duplicate submission outside the crash window (P7)", problems)
    verdict.figures.update(smsc_submits=sum(submits.values()), smsc_resubmitted=twice,
                           leases_taken_back=len(spool.releases))


def _batches(spool: Spool, ledger: Ledger, results: Path, verdict: Verdict) -> None:
    problems: list[str] = []
    by_batch: dict[str | None, set[str]] = {}
    for mid, s in spool.messages.items():
        if s[1] == "ftp":
            by_batch.setdefault(s[2], set()).add(mid)
    answered = duplicates = 0
    for path in sorted(results.glob("*.result.csv")):
        name = path.name.removesuffix(".result.csv") + ".csv"
        rows = result_rows(path)
        body, summary = rows[1:-1], rows[-1]
        if summary[0] != "summary":
            problems.append(f"{path.name}: no summary row")
        listed = Counter(int(r[0]) for r in body if r[0].isdigit())
        if any(n > 1 for n in listed.values()):
            problems.append(f"{path.name}: a line listed twice")
        if sorted(listed) != list(range(2, len(listed) + 2)):
            problems.append(f"{path.name}: lines not 2..{len(listed) + 1}")
        batch_id, state = spool.batches.get(name, ("?", "?"))
        ids = {r[4] for r in body if r[3] == "accepted"}
        if ids != by_batch.get(batch_id, set()):
            problems.append(f"{path.name}: {len(ids)} accepted rows listed, the spool holds "
                            f"{len(by_batch.get(batch_id, set()))} messages of batch {batch_id}")
        if name in ledger.resent_uploads and [r[3] for r in body] == ["duplicate"]:
            duplicates += 1  # the first copy had arrived whole: nothing sent twice
        elif any(r[3] != "accepted" for r in body):
            problems.append(f"{path.name}: rows not accepted ({state}): "
                            + "; ".join(r[7][:120] for r in body if r[3] != "accepted")[:300])
        answered += 1
    problems += [f"upload {n} answered 226 but has no result file" for n in ledger.uploads
                 if not (results / f"{n[:-4]}.result.csv").exists()]
    verdict.require("every batch's result file lists each row once", problems)
    verdict.figures.update(result_files=answered, resent_uploads_duplicate=duplicates,
                           acked_ftp_rows=sum(len(v) for v in by_batch.values()))


def _outbox(spool: Spool, ledger: Ledger, sink: RelaySink, verdict: Verdict) -> None:
    with sink.lock:
        seen = Counter(sink.items)
    problems = [f"outbox {item} {status}" for item, status in spool.outbox.items()
                if status != "sent"]
    problems += [f"outbox {item} never reached the relay" for item in spool.outbox
                 if seen[item] == 0]
    problems += [f"mail {m.mail_id} acknowledged, no receipt queued" for m in ledger.mails
                 if m.mail_id not in spool.notices]
    verdict.require("no outbox item lost (each receipt reached the relay)", problems)
    acked = {m.mail_id for m in ledger.mails}
    verdict.figures.update(
        outbox_items=len(spool.outbox), relay_mails=sum(seen.values()),
        relay_duplicates=sum(n - 1 for n in seen.values() if n > 1),
        unacked_mails_with_sms=len({s[2] for s in spool.messages.values()
                                    if s[1] == "smtp"} - acked))
