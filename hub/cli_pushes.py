"""`smshub account pushes NAME`: an account's own URLs for the dialects' delivery-report
pushes: the XML deliveryReport, and Clickatell callbacks (whose clients keep the URL
with the account, as Clickatell's Developers' Central does). Checked like webhook
endpoints: no address of the hub's own networks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.cli_base import command, emit, open_spool
from hub.clock import utcnow
from hub.config import Config
from hub.errors import Rejected
from hub.model import CallbackKind
from hub.webhooks import check_host, parse_networks

OFF = "off"
_KINDS = {"xml": CallbackKind.XML, "clickatell": CallbackKind.CLICKATELL}


def pushes_command(acc: Any) -> None:
    """Registered by cli_accounts with the account actions."""
    pushes = command(acc, "pushes", _pushes, "set an account's delivery-report push URLs "
                     "(none given: show them); docs/pushes.md")
    pushes.add_argument("name")
    pushes.add_argument("--xml", metavar="URL|off",
                        help="POST every message's deliveryReport document here")
    pushes.add_argument("--clickatell", metavar="URL|off",
                        help="Clickatell callbacks of sendMsg requests that ask for them")


def _pushes(args: argparse.Namespace, config: Config) -> int:
    allowed = parse_networks(config.webhooks.allow_networks)
    changes = {kind: getattr(args, name) for name, kind in _KINDS.items()
               if getattr(args, name) is not None}
    try:
        for url in changes.values():
            if url != OFF:
                check_host(url, allowed)  # resolved now, and again at each delivery
    except Rejected as exc:
        print(f"smshub: {exc.reason}", file=sys.stderr)
        return 2
    spool = open_spool(config)
    try:
        account = spool.get_account(args.name)
        for kind, url in changes.items():
            spool.set_account_push_url(account.id, kind, None if url == OFF else url,
                                       utcnow())
        urls = spool.account_push_urls(account.id)
    finally:
        spool.close()
    shown = {name: urls.get(kind) for name, kind in _KINDS.items()}
    emit(args, {"account": account.name, **shown},
         "\n".join(f"{account.name}: {name} {url or OFF}" for name, url in shown.items()))
    return 0
