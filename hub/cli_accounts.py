"""`smshub account ...` and `smshub batch ...`: accounts (disabled, enabled again and
deleted), passwords and email settings, and the progress of batch files; API keys are
hub/cli_keys.py's."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from decimal import Decimal
from typing import Any

from hub import accounts
from hub.batches import Batch, BatchProgress
from hub.cli_base import command, decimal_arg, emit, open_spool
from hub.cli_keys import key_commands
from hub.cli_optouts import account_settings_command
from hub.cli_pushes import pushes_command
from hub.clock import utcnow
from hub.config import Config
from hub.errors import Conflict
from hub.mail import MailSettings, SubjectMode, TooLongMode
from hub.model import Account
from hub.ports import AccountDeletion, Spool


def account_commands(sub: Any) -> None:
    acc = sub.add_parser("account", help="accounts and credentials").add_subparsers(
        title="account", metavar="ACTION")
    create = command(acc, "create", _account_create, "create an account")
    create.add_argument("name")
    create.add_argument("--credits", type=decimal_arg, default=Decimal(0))
    create.add_argument("--price-per-segment", type=decimal_arg, default=Decimal(1))
    create.add_argument("--sender-id", action="append", default=[], dest="sender_ids")
    command(acc, "show", _account_show, "show an account").add_argument("name")
    credit = command(acc, "credit", _account_credit, "add (or with -N remove) credits")
    credit.add_argument("name")
    credit.add_argument("amount", type=decimal_arg)
    credit.add_argument("--reason", default="",
                        help="why, kept in the account's credit ledger (the portal's /admin)")
    command(acc, "password", _account_password,
             "set the password (read from standard input)").add_argument("name")
    key_commands(acc)
    command(acc, "list", _account_list, "list accounts")
    command(acc, "disable", _account_disable, DISABLE_HELP).add_argument("name")
    command(acc, "enable", _account_enable, "enable a disabled account again"
             ).add_argument("name")
    delete = command(acc, "delete", _account_delete, DELETE_HELP)
    delete.add_argument("name")
    delete.add_argument("--cancel-queued", action="store_true",
                        help="cancel its unsent messages (credit refunded) and delete it")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _account_mail_command(acc)
    account_settings_command(acc)
    pushes_command(acc)


DISABLE_HELP = (
    "disable an account: every new submission (API, XML, FTP, email, CLI) and FTP login "
    "is refused. Messages it has already had accepted stay queued and are sent, as "
    "promised when they were accepted; `smshub message cancel --account NAME` cancels "
    "them and refunds their credit")


DELETE_HELP = (
    "delete an account: it is disabled for good, its API keys are revoked, its password "
    "and email senders removed, so every protocol and FTP/SMTP login refuses it. Its "
    "messages, events and batches are kept for audit and billing, and its name stays "
    "taken (a new account needs another name). Refused while it has unsent messages "
    "(accepted, scheduled, queued) unless --cancel-queued cancels them and refunds their "
    "credit, and while one is being handed to a carrier (try again a moment later); "
    "messages already with a carrier keep their delivery reports. Asks for confirmation "
    "unless --yes")


def batch_commands(sub: Any) -> None:
    batch = sub.add_parser("batch", help="batch files (FTP drop)").add_subparsers(
        title="batch", metavar="ACTION")
    listing = command(batch, "list", _batch_list, "list recent batches and their progress")
    listing.add_argument("--account", help="only this account's batches")
    listing.add_argument("--limit", type=int, default=20)
    command(batch, "show", _batch_show, "show one batch's progress").add_argument("batch_id")


def _account_json(account: Account) -> dict[str, Any]:
    return {
        "name": account.name, "balance": str(account.balance),
        "price_per_segment": str(account.price_per_segment),
        "sender_ids": list(account.sender_ids), "enabled": account.enabled,
        "has_password": account.has_password, "created_at": account.created_at.isoformat(),
        "deleted_at": account.deleted_at.isoformat() if account.deleted_at else None,
    }


def _account_text(account: Account) -> str:
    return (f"{account.name}: balance {account.balance}, "
            f"{account.price_per_segment} per segment, "
            f"sender ids: {', '.join(account.sender_ids) or '-'}, "
            f"password: {'set' if account.has_password else 'not set'}"
            + (f", DELETED {account.deleted_at.isoformat()}" if account.deleted_at
               else "" if account.enabled else ", DISABLED"))


def _account_create(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config)
    try:
        account = spool.create_account(args.name, args.credits, args.price_per_segment,
                                       args.sender_ids)
    finally:
        spool.close()
    emit(args, _account_json(account), f"created {_account_text(account)}")
    return 0


def _account_show(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        account = spool.get_account(args.name)
    finally:
        spool.close()
    emit(args, _account_json(account), _account_text(account))
    return 0


def _account_credit(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config)
    try:
        # Written to the credit ledger with its reason, as an operator's page does.
        account = spool.credit_account(args.name, args.amount, args.reason or "(none given)",
                                       "cli", utcnow())
    finally:
        spool.close()
    emit(args, _account_json(account), _account_text(account))
    return 0


def _account_password(args: argparse.Namespace, config: Config) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("smshub: the password must have at least 8 characters", file=sys.stderr)
        return 1
    spool = open_spool(config)
    try:
        spool.set_password_hash(args.name, accounts.hash_password(password))
    finally:
        spool.close()
    emit(args, {"name": args.name, "password": "set"}, f"password set for {args.name}")
    return 0


def _account_list(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        found = spool.list_accounts()
    finally:
        spool.close()
    emit(args, [_account_json(a) for a in found],
          "\n".join(_account_text(a) for a in found) or "no accounts")
    return 0


def _account_disable(args: argparse.Namespace, config: Config) -> int:
    return _set_enabled(args, config, False)


def _account_enable(args: argparse.Namespace, config: Config) -> int:
    return _set_enabled(args, config, True)


def _set_enabled(args: argparse.Namespace, config: Config, enabled: bool) -> int:
    spool = open_spool(config, create=False)
    try:
        account = spool.set_enabled(args.name, enabled)
    finally:
        spool.close()
    emit(args, _account_json(account),
          f"{account.name} {'enabled' if enabled else 'disabled'}")
    return 0


def _account_delete(args: argparse.Namespace, config: Config) -> int:
    if not args.yes and not _confirmed(args):
        return 2
    spool = open_spool(config, create=False)
    try:
        done = spool.delete_account(args.name, args.cancel_queued, utcnow())
    finally:
        spool.close()
    data = {"name": args.name, "deleted": done.deleted, "keys_revoked": done.keys_revoked,
            "cancelled": done.cancelled, "refunded": str(done.refunded),
            "unsent": done.unsent, "sending": done.sending,
            "account": _account_json(done.account)}
    if not done.deleted:
        if args.json:
            emit(args, data, "")
        print(f"smshub: {args.name} not deleted: {_why_not(done)}", file=sys.stderr)
        return 1
    emit(args, data, f"{args.name} deleted: {done.keys_revoked} API key(s) revoked, "
         f"{done.cancelled} unsent message(s) cancelled and {done.refunded} credit refunded; "
         f"its messages are kept, balance {done.account.balance}")
    return 0


def _confirmed(args: argparse.Namespace) -> bool:
    what = (f"Delete account {args.name}"
            + (", cancelling its unsent messages" if args.cancel_queued else "")
            + "? Its keys and logins stop working for good. [y/N] ")
    if not sys.stdin.isatty():
        print("smshub: account delete needs --yes when not run at a terminal",
              file=sys.stderr)
        return False
    print(what, end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() in ("y", "yes"):
        return True
    print("smshub: not deleted", file=sys.stderr)
    return False


def _why_not(done: AccountDeletion) -> str:
    if done.sending:
        return (f"{done.sending} of its messages are being handed to a carrier right now; "
                "try again in a moment")
    return (f"it has {done.unsent} unsent message(s) (accepted, scheduled or queued); "
            "add --cancel-queued to cancel them and refund their credit, or wait until "
            "they are sent")


def _batch_progress(spool: Spool, batch: Batch) -> BatchProgress:
    return BatchProgress(batch, spool.batch_status_counts(batch.id))


def _batch_json(p: BatchProgress) -> dict[str, Any]:
    b = p.batch
    return {
        "id": b.id, "file": b.file_name, "format": b.format, "state": b.state.value,
        "received_at": b.received_at.isoformat(), "rows": b.rows, "accepted": b.accepted,
        "rejected": b.rejected, "delivered": p.delivered, "failed": p.failed,
        "pending": p.pending, "duplicate_of": b.duplicate_of,
        "finished_at": b.finished_at.isoformat() if b.finished_at else None,
        "report_final": b.report_final,
    }


def _batch_text(p: BatchProgress) -> str:
    b = p.batch
    extra = f" (duplicate of {b.duplicate_of})" if b.duplicate_of else ""
    return (f"{b.id}  {b.state.value:<10} {b.file_name}{extra}: {b.rows} rows read, "
            f"{b.accepted} accepted, {b.rejected} rejected, {p.delivered} delivered, "
            f"{p.failed} failed, {p.pending} pending")


def _batch_list(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        account_id = spool.get_account(args.account).id if args.account else None
        found = [_batch_progress(spool, b) for b in spool.list_batches(account_id, args.limit)]
    finally:
        spool.close()
    emit(args, [_batch_json(p) for p in found],
          "\n".join(_batch_text(p) for p in found) or "no batches")
    return 0


def _batch_show(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        batch = spool.get_batch(args.batch_id)
        progress = _batch_progress(spool, batch) if batch is not None else None
    finally:
        spool.close()
    if progress is None:
        print(f"smshub: no batch '{args.batch_id}'", file=sys.stderr)
        return 1
    emit(args, _batch_json(progress), _batch_text(progress))
    return 0


def _account_mail_command(acc: Any) -> None:
    mail = command(acc, "mail", _account_mail,
                    "show or change the account's email-to-SMS settings")
    mail.add_argument("name")
    mail.add_argument("--allow-sender", action="append", dest="senders", metavar="ADDRESS",
                      help="an address or a whole domain that may send as this account "
                           "(repeat; replaces the list)")
    mail.add_argument("--clear-senders", action="store_true", help="allow no sender address")
    mail.add_argument("--subject", choices=[m.value for m in SubjectMode],
                      help="ignore the subject, prepend it, or winsms: YYYYMMDDHHMM schedules")
    mail.add_argument("--too-long", choices=[m.value for m in TooLongMode],
                      help="a text over the segment limit is rejected or truncated")
    for flag, what in (("receipts", "mail the sender a receipt of each mail"),
                       ("final-receipts", "and a delivery report once all are final"),
                       ("replies", "mail handset replies back to the sender")):
        mail.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, help=what)
    mail.add_argument("--cut-marker", action="append", dest="cut_markers", metavar="TEXT",
                      help="text is cut at a line starting with this (repeat; replaces)")


def _account_mail(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config)
    try:
        account = spool.get_account(args.name)
        if account.deleted_at is not None:
            raise Conflict(f"account {args.name!r} was deleted")
        settings = _mail_changes(args, spool.get_mail_settings(account.id))
        spool.save_mail_settings(settings)
        settings = spool.get_mail_settings(account.id)  # as stored (senders lower-cased)
    finally:
        spool.close()
    data = {"name": account.name, "allowed_senders": list(settings.allowed_senders),
            "subject": settings.subject_mode.value, "too_long": settings.too_long.value,
            "receipts": settings.receipts, "final_receipts": settings.final_receipts,
            "replies": settings.replies, "cut_markers": list(settings.cut_markers)}
    emit(args, data, "\n".join(f"{k}: {v}" for k, v in data.items()))
    return 0


def _mail_changes(args: argparse.Namespace, current: MailSettings) -> MailSettings:
    senders = () if args.clear_senders else current.allowed_senders
    changes: dict[str, Any] = {"allowed_senders": tuple(args.senders or senders)}
    if args.subject:
        changes["subject_mode"] = SubjectMode(args.subject)
    if args.too_long:
        changes["too_long"] = TooLongMode(args.too_long)
    for key in ("receipts", "final_receipts", "replies"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.cut_markers:
        changes["cut_markers"] = tuple(args.cut_markers)
    return replace(current, **changes)
