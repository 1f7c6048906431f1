"""`smshub message ...`: messages listed by account, status and age, and unsent ones
cancelled with their credit refunded."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta
from typing import Any

from hub import views
from hub.cli_base import command, emit, open_spool
from hub.clock import parse_time, utcnow
from hub.config import Config
from hub.model import Message, Status
from hub.ports import MessageFilter

_AGO = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
CANCEL_HELP = ("cancel unsent messages (accepted, scheduled or queued): they become "
               "cancelled and their credit is refunded; one being sent at this moment "
               "cannot be stopped")


def message_commands(sub: Any) -> None:
    msg = sub.add_parser("message", help="messages: list and cancel").add_subparsers(
        title="message", metavar="ACTION")
    listing = command(msg, "list", _list, "list messages, newest first")
    listing.add_argument("--account", help="only this account's messages")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--since", help="accepted since: an ISO 8601 time, or 30m, 2h, 7d")
    listing.add_argument("--limit", type=int, default=50)
    cancel = command(msg, "cancel", _cancel, CANCEL_HELP)
    cancel.add_argument("message_ids", nargs="*", metavar="ID")
    cancel.add_argument("--account", help="every unsent message of this account")


def since_arg(text: str | None, zone: str) -> datetime | None:
    """`--since`: an ISO 8601 time, or 30m, 2h, 7d ago."""
    if text is None:
        return None
    ago = _AGO.fullmatch(text.strip())
    if ago is None:
        return parse_time(text, zone)
    return utcnow() - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})


def _line(m: Message) -> str:
    when = m.accepted_at.isoformat(timespec="seconds")
    return f"{m.id}  {when}  {m.status.value:<11} to {m.recipient}  {m.segments} segment(s)"


def _list(args: argparse.Namespace, config: Config) -> int:
    since = since_arg(args.since, config.hub.timezone)
    spool = open_spool(config, create=False)
    try:
        account_id = spool.get_account(args.account).id if args.account else None
        status = Status(args.status) if args.status else None
        found = spool.list_messages(MessageFilter(account_id, status, since, args.limit))
    finally:
        spool.close()
    emit(args, [views.message_view(m, []) for m in found],
         "\n".join(_line(m) for m in found) or "no messages")
    return 0


def _cancel(args: argparse.Namespace, config: Config) -> int:
    if bool(args.message_ids) == bool(args.account):
        print("smshub: name message ids or --account (not both)", file=sys.stderr)
        return 2
    spool = open_spool(config)
    try:
        account_id = spool.get_account(args.account).id if args.account else None
        count = spool.cancel(args.message_ids, account_id, utcnow())
        left = [spool.get_message(i) for i in args.message_ids]
    finally:
        spool.close()
    missing = [i for i, m in zip(args.message_ids, left, strict=True) if m is None]
    kept = [m for m in left if m is not None and m.status is not Status.CANCELLED]
    notes = [f"no message '{i}'" for i in missing]
    notes += [f"{m.id} is {m.status.value}: not cancelled" for m in kept]
    emit(args, {"cancelled": count, "not_cancelled": [*missing, *(m.id for m in kept)]},
         "\n".join([f"cancelled {count} message(s)", *notes]))
    return 1 if notes else 0
