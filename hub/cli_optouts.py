"""`smshub inbound list`, `smshub optout list/add/remove/import` (an account's opt-out
list, or with --global the operator's block list for every account) and `smshub account
set` (an account's opt-out settings)."""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from hub import numbers, views
from hub.cli_base import command, emit, open_spool
from hub.cli_messages import since_arg
from hub.clock import utcnow
from hub.config import Config
from hub.errors import Rejected
from hub.model import Inbound
from hub.optouts import NewOptOut, OptOut, OptOutMethod, OptOutScope
from hub.ports import Spool
from hub.waspa import MarketingOptOut

PAGE = 500
SCOPE_HELP = ("which messages the account's opt-outs stop: 'marketing' (the default; "
              "transactional messages still reach the number) or 'all'")
CONFIRM_HELP = ("'on': send a handset that opts out by reply a confirmation SMS ([inbound] "
                "opt_out_confirmation), charged to the account; 'off' (the default)")
MARKETING_HELP = ("WASPA: a marketing message that says nothing of how to opt out gets "
                  "[messages] marketing_optout_text appended, counted and charged "
                  "('append', the default), or is refused with no_opt_out ('refuse')")
GLOBAL_HELP = "the operator's global block list: no account may send to these numbers"


def inbound_commands(sub: Any) -> None:
    inbound = sub.add_parser("inbound", help="inbound messages (replies, opt-outs)"
                             ).add_subparsers(title="inbound", metavar="ACTION")
    listing = command(inbound, "list", _inbound_list,
                      "list inbound messages in the order they were received")
    listing.add_argument("--account", help="only this account's (default: every one, "
                         "unlinked ones too)")
    listing.add_argument("--since", help="received since: an ISO 8601 time, or 30m, 2h, 7d")
    listing.add_argument("--limit", type=int, default=100)


def optout_commands(sub: Any) -> None:
    opt = sub.add_parser("optout", help="opt-out lists (WASPA) and the global block list"
                         ).add_subparsers(title="optout", metavar="ACTION")
    listing = command(opt, "list", _list, "list an account's opt-outs, oldest first")
    _which_list(listing)
    add = command(opt, "add", _add, "put a number on a list")
    add.add_argument("number")
    _which_list(add)
    add.add_argument("--reason", help="why (kept with the entry)")
    remove = command(opt, "remove", _remove, "take a number off a list")
    remove.add_argument("number")
    _which_list(remove)
    imports = command(opt, "import", _import, "put every number of a file on a list: one "
                      "a line, or a CSV whose first column is the number ('-': stdin)")
    imports.add_argument("file")
    _which_list(imports)
    imports.add_argument("--reason", help="why (kept with each entry)")


def account_settings_command(acc: Any) -> None:
    """`smshub account set NAME ...`, registered by cli_accounts with the account actions."""
    settings = command(acc, "set", _account_set,
                       "change an account's opt-out settings (none given: show them)")
    settings.add_argument("name")
    settings.add_argument("--optout-scope", choices=[s.value for s in OptOutScope],
                          help=SCOPE_HELP)
    settings.add_argument("--optout-confirm", choices=["on", "off"], help=CONFIRM_HELP)
    settings.add_argument("--marketing-optout", choices=[m.value for m in MarketingOptOut],
                          help=MARKETING_HELP)


def _which_list(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--account", help="the account's opt-out list")
    which.add_argument("--global", dest="global_list", action="store_true", help=GLOBAL_HELP)


def _list_of(spool: Spool, args: argparse.Namespace) -> int | None:
    return None if args.global_list else spool.get_account(args.account).id


def _number(raw: str, config: Config) -> str:
    return numbers.normalise(raw.strip(), config.hub.default_region)


def _line(o: OptOut) -> str:
    how = o.method.value + (f" ({o.inbound_id})" if o.inbound_id else "")
    why = f"  {o.reason}" if o.reason else ""
    return f"{o.number}  {o.created_at.isoformat(timespec='seconds')}  {how}{why}"


def _list(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        which = _list_of(spool, args)
        found: list[OptOut] = []
        while page := spool.list_optouts(which, found[-1].id if found else 0, PAGE):
            found += page
    finally:
        spool.close()
    emit(args, [views.optout_view(o) for o in found],
         "\n".join(_line(o) for o in found) or "no opt-outs")
    return 0


def _add(args: argparse.Namespace, config: Config) -> int:
    number = _number(args.number, config)
    spool = open_spool(config)
    try:
        new = NewOptOut(_list_of(spool, args), number, OptOutMethod.CLI, utcnow(),
                        args.reason or None)
        optout, created = spool.add_optout(new)
    finally:
        spool.close()
    emit(args, {**views.optout_view(optout), "created": created},
         f"added {number}" if created else f"{number} was on the list already")
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    number = _number(args.number, config)
    spool = open_spool(config)
    try:
        removed = spool.remove_optout(_list_of(spool, args), number)
    finally:
        spool.close()
    emit(args, {"number": number, "removed": removed},
         f"removed {number}" if removed else f"{number} is not on the list")
    return 0 if removed else 1


def _import(args: argparse.Namespace, config: Config) -> int:
    lines = (sys.stdin.read() if args.file == "-" else
             Path(args.file).read_text(encoding="utf-8-sig")).splitlines()
    wanted, bad = _numbers_in(lines, config)
    spool = open_spool(config)
    try:
        which = _list_of(spool, args)
        now, reason = utcnow(), args.reason or None
        added = spool.add_optouts([NewOptOut(which, number, OptOutMethod.IMPORT, now, reason)
                                   for number in wanted])
    finally:
        spool.close()
    notes = [f"line {n}: {reason}" for n, reason in bad]
    emit(args, {"added": added, "already": len(wanted) - added,
                "invalid": [{"line": n, "reason": r} for n, r in bad]},
         "\n".join([f"added {added}, already listed {len(wanted) - added}, "
                    f"invalid {len(bad)}", *notes]))
    return 1 if bad else 0


def _numbers_in(lines: list[str], config: Config) -> tuple[list[str], list[tuple[int, str]]]:
    """The numbers of a file (first CSV column), once each; blank and # lines and a header
    whose first cell has no digit are skipped; the others that are no number are bad."""
    wanted: dict[str, None] = {}
    bad: list[tuple[int, str]] = []
    for n, row in enumerate(csv.reader(lines), 1):
        cell = row[0].strip() if row else ""
        if not cell or cell.startswith("#") or (n == 1 and not any(c.isdigit() for c in cell)):
            continue
        try:
            wanted[_number(cell, config)] = None
        except Rejected as exc:
            bad.append((n, exc.reason))
    return list(wanted), bad


def _inbound_line(m: Inbound) -> str:
    answers = f"  (answers {m.in_reply_to})" if m.in_reply_to else ""
    return (f"{m.id}  {m.received_at.isoformat(timespec='seconds')}  {m.kind.value:<11} "
            f"from {m.sender} to {m.recipient}: {m.text}{answers}")


def _inbound_list(args: argparse.Namespace, config: Config) -> int:
    since = since_arg(args.since, config.hub.timezone)
    spool = open_spool(config, create=False)
    try:
        account_id = spool.get_account(args.account).id if args.account else None
        found = spool.inbound_page(account_id, since, None, args.limit)
    finally:
        spool.close()
    emit(args, [views.inbound_view(m) for m in found],
         "\n".join(_inbound_line(m) for m in found) or "no inbound messages")
    return 0


def _account_set(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config)
    try:
        if args.marketing_optout is not None:
            spool.set_marketing_optout(args.name, args.marketing_optout)
        account = spool.get_account(args.name)
        settings = spool.optout_settings(account.id)
        if args.optout_scope is not None:
            settings = replace(settings, scope=OptOutScope(args.optout_scope))
        if args.optout_confirm is not None:
            settings = replace(settings, confirm=args.optout_confirm == "on")
        if args.optout_scope is not None or args.optout_confirm is not None:
            spool.save_optout_settings(settings)
    finally:
        spool.close()
    confirm = "on" if settings.confirm else "off"
    emit(args, {"account": account.name, "optout_scope": settings.scope.value,
                "optout_confirm": settings.confirm,
                "marketing_optout": account.marketing_optout},
         f"{account.name}: optout-scope {settings.scope.value}, optout-confirm {confirm}, "
         f"marketing-optout {account.marketing_optout}")
    return 0
