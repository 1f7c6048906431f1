"""The `smshub` command: serve, database, configuration, accounts, send and status."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hub import accounts, app, numbers, views
from hub.batches import Batch, BatchProgress
from hub.clock import parse_time, utcnow
from hub.config import Config, load
from hub.errors import ConfigError, HubError
from hub.intake import Intake
from hub.mail import MailSettings, SubjectMode, TooLongMode
from hub.model import Account, Inbound, InboundMessage, Refused, Source, Submission
from hub.ports import Spool
from hub.spoolcall import SpoolRunner

Handler = Callable[[argparse.Namespace, Config], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        config = load(args.config)
        _logging(config)
        result: int = args.handler(args, config)
        return result
    except ConfigError as exc:
        print(f"smshub: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"smshub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smshub", description="On-premise SMS integration hub.")
    p.add_argument("--config", type=Path, default=None,
                   help="configuration file (default: $SMSHUB_CONFIG, else ./hub.toml)")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    _command(sub, "serve", _serve, "run every enabled service until signalled")
    db = sub.add_parser("db", help="spool schema").add_subparsers(title="db", metavar="ACTION")
    _command(db, "upgrade", _db_upgrade, "create or upgrade the spool schema")
    cfg = sub.add_parser("config", help="configuration").add_subparsers(metavar="ACTION")
    _command(cfg, "check", _config_check, "validate the configuration without starting")
    _account_commands(sub)
    _batch_commands(sub)
    send = _command(sub, "send", _send, "send one SMS and print its message id")
    send.add_argument("--account", required=True)
    send.add_argument("--to", required=True, help="recipient, e.g. 0821234567 or +27821234567")
    send.add_argument("--text", required=True)
    send.add_argument("--from", dest="sender", help="sender id (must be allowed)")
    send.add_argument("--at", help="send at this ISO 8601 time (local zone if no offset)")
    send.add_argument("--client-ref")
    status = _command(sub, "status", _status, "show a message's status and history")
    status.add_argument("message_id")
    sim = sub.add_parser("simulate", help="act as the simulator carrier's handsets")
    inbound = _command(sim.add_subparsers(title="simulate", metavar="WHAT"), "inbound",
                       _simulate_inbound, "a handset sends an SMS to the hub")
    inbound.add_argument("--from", dest="sender", required=True, help="the handset's number")
    inbound.add_argument("--to", dest="recipient", required=True,
                         help="the hub's number or short code it was sent to")
    inbound.add_argument("--text", required=True)
    return p


def _account_commands(sub: Any) -> None:
    acc = sub.add_parser("account", help="accounts and credentials").add_subparsers(
        title="account", metavar="ACTION")
    create = _command(acc, "create", _account_create, "create an account")
    create.add_argument("name")
    create.add_argument("--credits", type=_decimal, default=Decimal(0))
    create.add_argument("--price-per-segment", type=_decimal, default=Decimal(1))
    create.add_argument("--sender-id", action="append", default=[], dest="sender_ids")
    _command(acc, "show", _account_show, "show an account").add_argument("name")
    credit = _command(acc, "credit", _account_credit, "add (or with -N remove) credits")
    credit.add_argument("name")
    credit.add_argument("amount", type=_decimal)
    _command(acc, "password", _account_password,
             "set the password (read from standard input)").add_argument("name")
    _command(acc, "api-key", _account_api_key,
             "create an API key and print it (shown only once)").add_argument("name")
    _command(acc, "list", _account_list, "list accounts")
    _account_mail_command(acc)


def _batch_commands(sub: Any) -> None:
    batch = sub.add_parser("batch", help="batch files (FTP drop)").add_subparsers(
        title="batch", metavar="ACTION")
    listing = _command(batch, "list", _batch_list, "list recent batches and their progress")
    listing.add_argument("--account", help="only this account's batches")
    listing.add_argument("--limit", type=int, default=20)
    _command(batch, "show", _batch_show, "show one batch's progress").add_argument("batch_id")


def _command(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text,
                                                     description=help_text)
    parser.add_argument("--json", action="store_true", help="print data as JSON")
    parser.set_defaults(handler=handler)
    return parser


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def _logging(config: Config) -> None:
    logging.basicConfig(
        level=config.hub.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _spool(config: Config) -> Spool:
    spool = app.open_configured_spool(config)
    app.ensure_schema(spool, create_if_empty=True)
    return spool


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


# --- commands ------------------------------------------------------------------------


def _serve(args: argparse.Namespace, config: Config) -> int:
    with asyncio.Runner(loop_factory=_fast_loop()) as runner:
        runner.run(app.serve(config))
    return 0


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed: a faster event loop for the servers."""
    try:
        import uvloop  # noqa: PLC0415 - optional: not on every platform
    except ImportError:
        return None
    return uvloop.new_event_loop


def _db_upgrade(args: argparse.Namespace, config: Config) -> int:
    spool = app.open_configured_spool(config)
    try:
        before = spool.schema_state()
        spool.upgrade()
    finally:
        spool.close()
    _emit(args, {"before": before.value, "now": "current"},
          f"spool schema upgraded (was {before.value}, now current)")
    return 0


def _config_check(args: argparse.Namespace, config: Config) -> int:
    _emit(args, {"source": config.source, "ok": True}, f"{config.source}: OK")
    return 0


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
            f"password: {'set' if account.has_password else 'not set'}")


def _account_create(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        account = spool.create_account(args.name, args.credits, args.price_per_segment,
                                       args.sender_ids)
    finally:
        spool.close()
    _emit(args, _account_json(account), f"created {_account_text(account)}")
    return 0


def _account_show(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        account = spool.get_account(args.name)
    finally:
        spool.close()
    _emit(args, _account_json(account), _account_text(account))
    return 0


def _account_credit(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        account = spool.add_credits(args.name, args.amount)
    finally:
        spool.close()
    _emit(args, _account_json(account), _account_text(account))
    return 0


def _account_password(args: argparse.Namespace, config: Config) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("smshub: the password must have at least 8 characters", file=sys.stderr)
        return 1
    spool = _spool(config)
    try:
        spool.set_password_hash(args.name, accounts.hash_password(password))
    finally:
        spool.close()
    _emit(args, {"name": args.name, "password": "set"}, f"password set for {args.name}")
    return 0


def _account_api_key(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        key = accounts.create_api_key(spool, accounts.load_secret(config.data_dir), args.name)
    finally:
        spool.close()
    _emit(args, {"name": args.name, "api_key": key}, key)
    return 0


def _account_list(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        found = spool.list_accounts()
    finally:
        spool.close()
    _emit(args, [_account_json(a) for a in found],
          "\n".join(_account_text(a) for a in found) or "no accounts")
    return 0


def _send(args: argparse.Namespace, config: Config) -> int:
    send_at = parse_time(args.at, config.hub.timezone) if args.at else None
    submission = Submission(to=args.to, text=args.text, sender=args.sender,
                            client_ref=args.client_ref, send_at=send_at)
    outcome = asyncio.run(_submit_one(config, args.account, submission))
    if isinstance(outcome, Refused):
        _emit(args, {"accepted": False, "code": outcome.code, "reason": outcome.reason},
              f"refused ({outcome.code}): {outcome.reason}")
        return 1
    _emit(args, {"accepted": True, "id": outcome.message_id, "status": outcome.status.value,
                 "segments": outcome.segments, "cost": str(outcome.cost),
                 "duplicate": outcome.duplicate}, outcome.message_id)
    return 0


async def _submit_one(config: Config, account_name: str, submission: Submission) -> Any:
    spool = await asyncio.to_thread(_spool, config)
    runner = SpoolRunner(spool, threads=1)
    try:
        account = await runner.call(spool.get_account, account_name)
        intake = Intake(runner, app.intake_rules(config))
        return (await intake.submit(account, Source.CLI, [submission]))[0]
    finally:
        runner.shutdown()
        spool.close()


def _status(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        message = spool.get_message(args.message_id)
        events = spool.events(args.message_id) if message else []
    finally:
        spool.close()
    if message is None:
        print(f"smshub: no message '{args.message_id}'", file=sys.stderr)
        return 1
    data = views.message_view(message, events)
    lines = [f"{message.id}  {message.status.value} ({message.status.public.value})  "
             f"to {message.recipient}  {message.segments} segment(s)"]
    if message.error is not None:
        lines.append(f"last error: {message.error.code}: {message.error.text}")
    lines += [f"  {e.at.isoformat(timespec='milliseconds')}  {e.status.value:<11} {e.detail}"
              for e in events]
    _emit(args, data, "\n".join(lines))
    return 0


def _simulate_inbound(args: argparse.Namespace, config: Config) -> int:
    sender = numbers.normalise(args.sender, config.hub.default_region)
    mo = InboundMessage("simulator", sender, args.recipient, args.text, utcnow())
    stored = asyncio.run(_receive(config, mo))
    _emit(args, {"id": stored.id, "kind": stored.kind.value, "in_reply_to": stored.in_reply_to,
                 "account_id": stored.account_id},
          f"{stored.id} {stored.kind.value}"
          + (f", in reply to {stored.in_reply_to}" if stored.in_reply_to else ""))
    return 0


async def _receive(config: Config, mo: InboundMessage) -> Inbound:
    """The same core path a carrier's inbound message takes (committed, then routed);
    a running `smshub serve` delivers whatever routing queued."""
    spool = await asyncio.to_thread(_spool, config)
    runner = SpoolRunner(spool, threads=1)
    try:
        desk = app.build_inbound_desk(config, runner)
        return (await desk.receive([mo]))[0]
    finally:
        runner.shutdown()
        spool.close()


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
    }


def _batch_text(p: BatchProgress) -> str:
    b = p.batch
    extra = f" (duplicate of {b.duplicate_of})" if b.duplicate_of else ""
    return (f"{b.id}  {b.state.value:<10} {b.file_name}{extra}: {b.rows} rows read, "
            f"{b.accepted} accepted, {b.rejected} rejected, {p.delivered} delivered, "
            f"{p.failed} failed, {p.pending} pending")


def _batch_list(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        account_id = spool.get_account(args.account).id if args.account else None
        found = [_batch_progress(spool, b) for b in spool.list_batches(account_id, args.limit)]
    finally:
        spool.close()
    _emit(args, [_batch_json(p) for p in found],
          "\n".join(_batch_text(p) for p in found) or "no batches")
    return 0


def _batch_show(args: argparse.Namespace, config: Config) -> int:
    spool = _spool(config)
    try:
        batch = spool.get_batch(args.batch_id)
        progress = _batch_progress(spool, batch) if batch is not None else None
    finally:
        spool.close()
    if progress is None:
        print(f"smshub: no batch '{args.batch_id}'", file=sys.stderr)
        return 1
    _emit(args, _batch_json(progress), _batch_text(progress))
    return 0


# --- email-to-SMS settings (docs/smtp.md) ------------------------------------------------


def _account_mail_command(acc: Any) -> None:
    mail = _command(acc, "mail", _account_mail,
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
    spool = _spool(config)
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
    _emit(args, data, "\n".join(f"{k}: {v}" for k, v in data.items()))
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
