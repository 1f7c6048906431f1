"""What every `smshub` subcommand shares: registering it, opening the spool (named on
stderr; created on first use, except by read commands) and printing data as text or
JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub import app
from hub.config import Config
from hub.errors import SchemaError
from hub.ports import SchemaState, Spool

Handler = Callable[[argparse.Namespace, Config], int]


def command(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text,
                                                     description=help_text)
    parser.add_argument("--json", action="store_true", help="print data as JSON")
    parser.set_defaults(handler=handler)
    return parser

def decimal_arg(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value

def open_spool(config: Config, *, create: bool = True) -> Spool:
    """The configured spool, named on stderr (a CLI started from another directory finds
    another `./var`). Read commands pass create=False: no spool there is an error, not
    a new empty one."""
    where = name_spool(config)
    path = sqlite_path(config.spool_url)
    if not create and path is not None and not path.exists():
        raise _no_spool(where)
    spool = app.open_configured_spool(config)
    try:
        if not create and spool.schema_state() is SchemaState.EMPTY:
            raise _no_spool(where)
        app.ensure_schema(spool, create_if_empty=create)
    except BaseException:
        spool.close()
        raise
    return spool


def name_spool(config: Config) -> str:
    """Say on stderr which spool this command opens (one line, no password)."""
    where = spool_location(config.spool_url)
    print(f"smshub: spool {where}", file=sys.stderr)
    return where


def _no_spool(where: str) -> SchemaError:
    return SchemaError(f"no spool at {where}; run `smshub db upgrade`, or start from the "
                       "hub's directory or pass --config")


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite:/// URL, absolute; None for others and :memory:."""
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("sqlite") or not rest.startswith("/"):
        return None
    name = rest[1:].split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name).absolute()


def spool_location(url: str) -> str:
    """What to call the spool in messages: its file, or its URL without a password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()

def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)
