"""`smshub account ...` and `smshub batch ...`: accounts (disabled and enabled again),
credentials (API keys listed and revoked) and email settings, and the progress of batch
files."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from decimal import Decimal
from typing import Any

from hub import accounts
from hub.batches import Batch, BatchProgress
from hub.cli_base import command, decimal_arg, emit, open_spool
from hub.clock import utcnow
from hub.config import Config
from hub.mail import MailSettings, SubjectMode, TooLongMode
from hub.model import Account
from hub.ports import Spool


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
    command(acc, "password", _account_password,
             "set the password (read from standard input)").add_argument("name")
    command(acc, "api-key", _account_api_key,
             "create an API key and print it (shown only once)").add_argument("name")
    command(acc, "list", _account_list, "list accounts")
    command(acc, "api-keys", _account_api_keys,
             "list the account's API keys (ids and dates; the keys are never stored)"
             ).add_argument("name")
    revoke = command(acc, "revoke-key", _account_revoke_key,
                      "revoke an API key, named by its id or given whole; a running hub "
                      "may accept it for up to [accounts] credential_cache_seconds")
    revoke.add_argument("name")
    revoke.add_argument("key", help="the key id (as `api-keys` lists it) or the key itself")
    command(acc, "disable", _account_disable, DISABLE_HELP).add_argument("name")
    command(acc, "enable", _account_enable, "enable a disabled account again"
             ).add_argument("name")
    _account_mail_command(acc)


DISABLE_HELP = (
    "disable an account: every new submission (API, XML, FTP, email, CLI) and FTP login "
    "is refused. Messages it has already had accepted stay queued and are sent, as "
    "promised when they were accepted; `smshub message cancel --account NAME` cancels "
    "them and refunds their credit")


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
    }


def _account_text(account: Account) -> str:
    return (f"{account.name}: balance {account.balance}, "
            f"{account.price_per_segment} per segment, "
            f"sender ids: {', '.join(account.sender_ids) or '-'}, "
            f"password: {'set' if account.has_password else 'not set'}"
            + ("" if account.enabled else ", DISABLED"))


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
        account = spool.add_credits(args.name, args.amount)
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


def _account_api_key(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config)
    try:
        key = accounts.create_api_key(spool, accounts.load_secret(config.data_dir), args.name)
    finally:
        spool.close()
    emit(args, {"name": args.name, "api_key": key}, key)
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


def _account_api_keys(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        keys = spool.api_keys(args.name)
    finally:
        spool.close()
    data = [{"key_id": k.key_id, "created_at": k.created_at.isoformat(),
             "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None} for k in keys]
    emit(args, data, "\n".join(
        f"{d['key_id']}  created {d['created_at']}"
        + (f"  revoked {d['revoked_at']}" if d["revoked_at"] else "  active")
        for d in data) or "no API keys")
    return 0


def _account_revoke_key(args: argparse.Namespace, config: Config) -> int:
    key_id = args.key
    if key_id.startswith(f"{accounts.KEY_PREFIX}_"):  # the whole key: its id is inside
        key_id = key_id.split("_")[1]
    spool = open_spool(config, create=False)
    try:
        key = spool.revoke_api_key(args.name, key_id, utcnow())
    finally:
        spool.close()
    revoked = key.revoked_at.isoformat() if key.revoked_at else None
    emit(args, {"name": args.name, "key_id": key.key_id, "revoked_at": revoked},
          f"API key {key.key_id} of {args.name} revoked at {revoked}")
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
