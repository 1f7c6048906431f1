"""The `smshub` command: its parser and the serve, db, config, send, status and simulate
subcommands (accounts and batches are in cli_accounts)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from hub import app, logs, numbers, supervisor, views
from hub.accounts import load_secret
from hub.cli_accounts import account_commands, batch_commands
from hub.cli_base import command, emit, name_spool, open_spool
from hub.cli_carriers import carrier_commands
from hub.cli_consents import audit_commands, consent_commands
from hub.cli_messages import message_commands
from hub.cli_nodes import node_commands
from hub.cli_operators import operator_commands
from hub.cli_optouts import inbound_commands, optout_commands
from hub.cli_privacy import privacy_commands
from hub.cli_webhooks import webhook_commands
from hub.clock import parse_time, utcnow
from hub.config import Config, config_path, load
from hub.errors import ConfigError, HubError
from hub.model import Inbound, InboundMessage, MessageClass, Refused, Source, Submission
from hub.nodes import ROLES
from hub.spoolcall import SpoolThreads


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, so that a closed pipe is caught here too
    except BrokenPipeError:
        # `smshub batch list --json | head`: the reader left; say nothing more. Python
        # would flush stdout again at exit and complain, so stdout becomes /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
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
        if args.handler is _config_check and args.json:
            source = config_path(args.config, os.environ) or "(defaults)"
            emit(args, {"ok": False, "source": str(source), "error": str(exc)}, "")
        else:
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
    serve = command(sub, "serve", _serve, "run this node's services until signalled")
    serve.add_argument("--role", choices=ROLES, default=None,
                       help="all (default: [hub] role), ingress (listeners only) or "
                            "dispatch (dispatcher, carriers, upkeep, outbox)")
    # Internal: the dispatch process that a split `serve` starts (hub.supervisor).
    serve.add_argument("--wake-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--figures-fd", type=int, default=None, help=argparse.SUPPRESS)
    node_commands(sub)
    db = sub.add_parser("db", help="spool schema").add_subparsers(title="db", metavar="ACTION")
    command(db, "upgrade", _db_upgrade, "create or upgrade the spool schema")
    cfg = sub.add_parser("config", help="configuration").add_subparsers(metavar="ACTION")
    command(cfg, "check", _config_check, "validate the configuration without starting")
    account_commands(sub)
    carrier_commands(sub)
    operator_commands(sub)
    batch_commands(sub)
    message_commands(sub)
    inbound_commands(sub)
    optout_commands(sub)
    consent_commands(sub)
    audit_commands(sub)
    webhook_commands(sub)
    privacy_commands(sub)
    send = command(sub, "send", _send, "send one SMS and print its message id")
    send.add_argument("--account", required=True)
    send.add_argument("--to", required=True, help="recipient, e.g. 0821234567 or +27821234567")
    send.add_argument("--text", required=True)
    send.add_argument("--from", dest="sender", help="sender id (must be allowed)")
    send.add_argument("--at", help="send at this ISO 8601 time (local zone if no offset)")
    send.add_argument("--client-ref")
    send.add_argument("--class", dest="message_class", default="transactional",
                      choices=[c.value for c in MessageClass],
                      help="marketing messages stop at numbers that opted out")
    status = command(sub, "status", _status, "show a message's status and history")
    status.add_argument("message_id")
    sim = sub.add_parser("simulate", help="act as the simulator carrier's handsets")
    inbound = command(sim.add_subparsers(title="simulate", metavar="WHAT"), "inbound",
                       _simulate_inbound, "a handset sends an SMS to the hub")
    inbound.add_argument("--from", dest="sender", required=True, help="the handset's number")
    inbound.add_argument("--to", dest="recipient", required=True,
                         help="the hub's number or short code it was sent to")
    inbound.add_argument("--text", required=True)
    return p


def _logging(config: Config) -> None:
    logging.basicConfig(
        level=config.hub.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if config.hub.log_level != "debug":
        # Alembic says "Context impl SQLiteImpl" on every schema check; the hub logs
        # what matters itself ("created the spool schema", `db upgrade`'s summary).
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # httpx logs every request an HTTP upstream carrier makes at INFO.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    # aiosmtpd and pyftpdlib log every command; no library may log a number or a secret.
    # Numbers are named by a hash keyed with the data directory's secret, once it exists
    # (a command that only reads must not create it).
    secret = config.data_dir / "secret.key"
    logs.install(config.hub.log_level, load_secret(config.data_dir) if secret.exists() else None)


# --- commands ------------------------------------------------------------------------


def _serve(args: argparse.Namespace, config: Config) -> int:
    if args.role is not None:
        config = replace(config, hub=replace(config.hub, role=args.role))
    if args.wake_fd is not None:
        return supervisor.serve_child(config, args.wake_fd, _fast_loop(), args.figures_fd)
    if supervisor.process_count(config) == 2:
        return supervisor.serve_two(args.config, config, _fast_loop())
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
    name_spool(config)
    spool = app.open_configured_spool(config)
    try:
        before = spool.schema_state()
        spool.upgrade()
    finally:
        spool.close()
    emit(args, {"before": before.value, "now": "current"},
          f"spool schema upgraded (was {before.value}, now current)")
    return 0


def _config_check(args: argparse.Namespace, config: Config) -> int:
    emit(args, {"source": config.source, "ok": True}, f"{config.source}: OK")
    return 0


def _send(args: argparse.Namespace, config: Config) -> int:
    send_at = parse_time(args.at, config.hub.timezone) if args.at else None
    submission = Submission(to=args.to, text=args.text, sender=args.sender,
                            client_ref=args.client_ref, send_at=send_at,
                            message_class=MessageClass(args.message_class))
    outcome = asyncio.run(_submit_one(config, args.account, submission))
    if isinstance(outcome, Refused):
        emit(args, {"accepted": False, "code": outcome.code, "reason": outcome.reason},
              f"refused ({outcome.code}): {outcome.reason}")
        return 1
    emit(args, {"accepted": True, "id": outcome.message_id, "status": outcome.status.value,
                 "segments": outcome.segments, "cost": str(outcome.cost),
                 "duplicate": outcome.duplicate}, outcome.message_id)
    return 0


async def _submit_one(config: Config, account_name: str, submission: Submission) -> Any:
    spool = await asyncio.to_thread(open_spool, config)
    runner = SpoolThreads(spool, threads=1)
    try:
        account = await runner.call(spool.get_account, account_name)
        intake = app.build_intake(config, runner)
        return (await intake.submit(account, Source.CLI, [submission]))[0]
    finally:
        runner.shutdown()
        spool.close()


def _status(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
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
    emit(args, data, "\n".join(lines))
    return 0


def _simulate_inbound(args: argparse.Namespace, config: Config) -> int:
    sender = numbers.normalise(args.sender, config.hub.default_region)
    mo = InboundMessage("simulator", sender, args.recipient, args.text, utcnow())
    stored = asyncio.run(_receive(config, mo))
    emit(args, {"id": stored.id, "kind": stored.kind.value, "in_reply_to": stored.in_reply_to,
                 "account_id": stored.account_id},
          f"{stored.id} {stored.kind.value}"
          + (f", in reply to {stored.in_reply_to}" if stored.in_reply_to else ""))
    return 0


async def _receive(config: Config, mo: InboundMessage) -> Inbound:
    """The same core path a carrier's inbound message takes (committed, then routed);
    a running `smshub serve` delivers whatever routing queued."""
    spool = await asyncio.to_thread(open_spool, config)
    runner = SpoolThreads(spool, threads=1)
    try:
        desk = app.build_inbound_desk(config, runner, intake=app.build_intake(config, runner))
        return (await desk.receive([mo]))[0]
    finally:
        runner.shutdown()
        spool.close()
