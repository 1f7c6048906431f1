"""What every `smshub` subcommand shares: registering it, opening the spool (creating
the schema on first use) and printing data as text or JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from hub import app
from hub.config import Config
from hub.ports import Spool

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

def open_spool(config: Config) -> Spool:
    spool = app.open_configured_spool(config)
    app.ensure_schema(spool, create_if_empty=True)
    return spool

def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)
