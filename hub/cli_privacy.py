"""`smshub privacy export|erase|log`: what the hub holds about a number, its erasure as
POPIA allows (texts go; opt-outs, status and billing stay), and the privacy log."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from hub import app, numbers, views
from hub.accounts import load_secret
from hub.cli_base import command, emit, open_spool
from hub.clock import utcnow
from hub.config import Config
from hub.privacy import Holdings, PrivacyEntry, pseudonym

ERASE_HELP = (
    "cancel (and refund) the unsent messages to NUMBER, replace the texts of the messages "
    "sent to it and of its replies by a marker, delete the push URLs (dlr-url, "
    "callback) and the FTP drop's filed originals that name it, and record it in the "
    "privacy log. Its opt-out entries stay (honouring an opt-out is "
    "a standing legal duty, and needs the number); status, cost and events stay for "
    "billing and audit. Asks for confirmation unless --yes")


def privacy_commands(sub: Any) -> None:
    privacy = sub.add_parser("privacy", help="what is held about a number (POPIA)"
                             ).add_subparsers(title="privacy", metavar="ACTION")
    export = command(privacy, "export", _export, "everything held about a number: "
                     "messages, replies, opt-outs, consent, FTP files")
    export.add_argument("number")
    erase = command(privacy, "erase", _erase, ERASE_HELP)
    erase.add_argument("number")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    log = command(privacy, "log", _log, "the latest purges and erasures, newest first")
    log.add_argument("--limit", type=int, default=20)


def _number(config: Config, raw: str) -> str:
    return numbers.normalise(raw, config.hub.default_region)


def _export(args: argparse.Namespace, config: Config) -> int:
    number = _number(config, args.number)
    spool = open_spool(config, create=False)
    try:
        held = spool.holdings(number)
    finally:
        spool.close()
    # The FTP drop's files on this node's disk (shared by the nodes that run the drop).
    files = app.ftp_files_naming(config, number)
    emit(args, {**holdings_view(held), "ftp_files": files},
         "\n".join([_holdings_text(held), *(f"ftp file {f}" for f in files)]))
    return 0


def holdings_view(held: Holdings) -> dict[str, Any]:
    return {
        "number": held.number,
        "messages": [views.message_view(m, []) for m in held.messages],
        "replies": [views.inbound_view(r) for r in held.replies],
        "optouts": [{**views.optout_view(o), "account_id": o.account_id}
                    for o in held.optouts],
        **{name: rows for name, rows in held.other.items()},
    }


def _holdings_text(held: Holdings) -> str:
    lines = [f"{held.number}: {len(held.messages)} message(s), {len(held.replies)} "
             f"reply(ies), {len(held.optouts)} opt-out entry(ies)"]
    lines += [f"message {m.id}  {m.accepted_at.isoformat(timespec='seconds')}  "
              f"{m.status.value:<11} {m.text}" for m in held.messages]
    lines += [f"reply   {r.id}  {r.received_at.isoformat(timespec='seconds')}  "
              f"{r.kind.value:<11} {r.text}" for r in held.replies]
    lines += [f"opt-out {'global' if o.account_id is None else f'account {o.account_id}'}  "
              f"{o.created_at.isoformat(timespec='seconds')}  {o.method.value}"
              for o in held.optouts]
    for name, rows in held.other.items():
        lines += [f"{name} {json.dumps(row, default=str)}" for row in rows]
    return "\n".join(lines)


def _erase(args: argparse.Namespace, config: Config) -> int:
    number = _number(config, args.number)
    if not args.yes and not _confirmed(number):
        return 1
    subject = pseudonym(number, load_secret(config.data_dir))
    spool = open_spool(config, create=False)
    try:
        # The FTP drop's originals hold the number's texts; its result and report files
        # (numbers and statuses, as the message rows) stay.
        originals = app.erase_ftp_originals(config, number)
        done = spool.erase_number(number, utcnow(), subject, f"cli:{_user()}",
                                  {"ftp_originals": originals})
    finally:
        spool.close()
    emit(args, {"number": number, "subject": subject, **done}, _erased_text(number, subject, done))
    return 0


def _erased_text(number: str, subject: str, done: dict[str, int]) -> str:
    said = (f"{number}: texts erased from {done['messages']} message(s) and "
            f"{done['replies']} reply(ies), {done['callbacks']} push URL(s) and "
            f"{done['ftp_originals']} FTP original(s) naming it deleted; "
            f"{done['cancelled']} unsent message(s) cancelled and refunded; "
            f"opt-out entries kept; recorded as {subject}")
    if done["in_flight"]:
        said += (f"\n{done['in_flight']} message(s) being sent now keep their text: run "
                 "the erasure again once they are sent")
    return said


def _confirmed(number: str) -> bool:
    if not sys.stdin.isatty():
        print("smshub: privacy erase needs --yes when not run at a terminal",
              file=sys.stderr)
        return False
    print(f"Erase the texts of every message to and from {number}? [y/N] ", end="",
          file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() in ("y", "yes"):
        return True
    print("smshub: nothing erased", file=sys.stderr)
    return False


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"


def _log(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        found = spool.privacy_log(args.limit)
    finally:
        spool.close()
    emit(args, [_entry_view(e) for e in found],
         "\n".join(_entry_line(e) for e in found) or "nothing purged or erased yet")
    return 0


def _entry_view(entry: PrivacyEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "action": entry.action,
            "subject": entry.subject, "actor": entry.actor, "detail": entry.detail}


def _entry_line(entry: PrivacyEntry) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in entry.detail.items())
    return (f"{entry.at.isoformat(timespec='seconds')}  {entry.action:<5}  "
            f"{entry.subject or '-'}  by {entry.actor}: {counts}")
