"""`smshub operator add|list|remove|passwd`: the staff who sign in to the portal's
operator pages at /admin, their passwords read from standard input and kept hashed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.accounts import hash_password
from hub.cli_base import command, emit, open_spool
from hub.clock import utcnow
from hub.config import Config
from hub.operators import MIN_PASSWORD, Operator


def operator_commands(sub: Any) -> None:
    ops = sub.add_parser("operator", help="operators of the portal's /admin pages").add_subparsers(
        title="operator", metavar="ACTION"
    )
    command(ops, "add", _add, "add an operator (password read from standard input)").add_argument(
        "name"
    )
    command(ops, "list", _list, "list operators")
    command(ops, "remove", _remove, "remove an operator: their sessions end at once").add_argument(
        "name"
    )
    command(
        ops,
        "passwd",
        _passwd,
        "set an operator's password (read from standard input); their sessions end",
    ).add_argument("name")


def _password() -> str | None:
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        print(f"smshub: the password must have at least {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return password


def _json(operator: Operator) -> dict[str, Any]:
    return {"name": operator.name, "created_at": operator.created_at.isoformat()}


def _add(args: argparse.Namespace, config: Config) -> int:
    password = _password()
    if password is None:
        return 1
    spool = open_spool(config)
    try:
        operator = spool.add_operator(args.name, hash_password(password), utcnow())
    finally:
        spool.close()
    emit(args, _json(operator), f"operator {operator.name} added")
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        found = spool.list_operators()
    finally:
        spool.close()
    emit(
        args,
        [_json(o) for o in found],
        "\n".join(f"{o.name}  since {o.created_at.isoformat(timespec='seconds')}" for o in found)
        or "no operators",
    )
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        spool.remove_operator(args.name)
    finally:
        spool.close()
    emit(args, {"name": args.name, "removed": True}, f"operator {args.name} removed")
    return 0


def _passwd(args: argparse.Namespace, config: Config) -> int:
    password = _password()
    if password is None:
        return 1
    spool = open_spool(config, create=False)
    try:
        spool.set_operator_password(args.name, hash_password(password))
    finally:
        spool.close()
    emit(args, {"name": args.name, "password": "set"}, f"password set for {args.name}")
    return 0
