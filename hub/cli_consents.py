"""`smshub consent add/list/remove` (a recipient's consent to an account's marketing
outside CPA hours) and `smshub audit export` (each message's times, from the event
table, as CSV: the proof CPA regulation 4(3) asks of the marketer)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from hub import audit, numbers, views
from hub.cli_base import command, emit, open_spool
from hub.clock import parse_time, utcnow
from hub.config import Config
from hub.consents import Consent
from hub.errors import Rejected
from hub.ports import Spool

PAGE = 500


def consent_commands(sub: Any) -> None:
    con = sub.add_parser("consent", help="recipients' consent to marketing outside CPA "
                         "hours").add_subparsers(title="consent", metavar="ACTION")
    listing = command(con, "list", _list, "list an account's consents, by number")
    listing.add_argument("--account", required=True)
    add = command(con, "add", _add, "record that a number agreed to the account's "
                  "marketing outside CPA regulation 4's hours")
    add.add_argument("number")
    add.add_argument("--account", required=True)
    add.add_argument("--note", help="how the consent was given (kept with it)")
    remove = command(con, "remove", _remove, "withdraw a number's consent")
    remove.add_argument("number")
    remove.add_argument("--account", required=True)


def audit_commands(sub: Any) -> None:
    aud = sub.add_parser("audit", help="proof of what was sent when"
                         ).add_subparsers(title="audit", metavar="ACTION")
    export = command(aud, "export", _export, "write each message an account had accepted "
                     "in a period with its times (accepted, held, submitted, final) as CSV")
    export.add_argument("--account", required=True)
    export.add_argument("--from", dest="start", required=True,
                        help="first day (YYYY-MM-DD, the hub's zone) or an ISO 8601 time")
    export.add_argument("--to", dest="end", required=True,
                        help="last day, included (YYYY-MM-DD), or an ISO 8601 time (excluded)")
    export.add_argument("--output", help="write to this file (default: standard output)")


def _number(raw: str, config: Config) -> str:
    return numbers.normalise(raw.strip(), config.hub.default_region)


def _list(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        account = spool.get_account(args.account)
        found: list[Consent] = []
        while page := spool.list_consents(account.id, found[-1].number if found else "", PAGE):
            found += page
    finally:
        spool.close()
    lines = [f"{c.number}  {c.created_at.isoformat(timespec='seconds')}"
             + (f"  {c.note}" if c.note else "") for c in found]
    emit(args, [views.consent_view(c) for c in found], "\n".join(lines) or "no consents")
    return 0


def _add(args: argparse.Namespace, config: Config) -> int:
    number = _number(args.number, config)
    spool = open_spool(config)
    try:
        account = spool.get_account(args.account)
        consent, created, released = spool.add_consent(
            Consent(account.id, number, utcnow(), args.note or None))
    finally:
        spool.close()
    said = f"recorded consent for {number}" if created else f"{number} had consented already"
    if released:
        said += f"; released {released} held message(s) to send now"
    emit(args, {**views.consent_view(consent), "created": created, "released": released},
         said)
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    number = _number(args.number, config)
    spool = open_spool(config)
    try:
        removed = spool.remove_consent(spool.get_account(args.account).id, number)
    finally:
        spool.close()
    emit(args, {"number": number, "removed": removed},
         f"withdrew consent for {number}" if removed else f"no consent recorded for {number}")
    return 0 if removed else 1


def period(start: str, end: str, zone: str) -> tuple[datetime, datetime]:
    """[start, end) from the options: days are whole days in the hub's zone, the last
    one included; times are taken as they are."""
    first = _day(start, zone, 0) or parse_time(start, zone)
    last = _day(end, zone, 1) or parse_time(end, zone)
    if last <= first:
        raise Rejected("invalid_time", f"--to ({end}) must come after --from ({start})")
    return first, last


def _day(text: str, zone: str, plus: int) -> datetime | None:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=plus), time(), ZoneInfo(zone))


def _export(args: argparse.Namespace, config: Config) -> int:
    start, end = period(args.start, args.end, config.hub.timezone)
    spool = open_spool(config, create=False)
    try:
        account = spool.get_account(args.account)
        with _output(args.output) as out:
            count = write_audit(out, spool, account.id, start, end)
    finally:
        spool.close()
    if args.output:
        print(f"wrote {count} messages to {args.output}", file=sys.stderr)
    return 0


def write_audit(out: TextIO, spool: Spool, account_id: int, start: datetime,
                end: datetime) -> int:
    """The CSV, a page of messages at a time; returns how many messages it holds."""
    writer = csv.writer(out)
    writer.writerow(audit.HEADER)
    count, after = 0, ""
    while page := spool.audit_trail(account_id, start, end, after, PAGE):
        writer.writerows(audit.row(message, events) for message, events in page)
        count += len(page)
        after = page[-1][0].id
    return count


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        yield out
