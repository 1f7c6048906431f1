"""`smshub webhook add/list/show/remove/rotate/replay/enable/disable`: an account's webhook
endpoints from the command line, by the same rules as `/v1/webhooks` (hub.webhooks)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub import views
from hub.cli_base import command, emit, open_spool
from hub.cli_messages import since_arg
from hub.clock import seconds, utcnow
from hub.config import Config
from hub.errors import NotFound, Rejected
from hub.events import EventType
from hub.model import WebhookEndpoint
from hub.ports import Spool
from hub.webhooks import check_host, new_endpoint, new_secret, parse_networks

EVENTS_HELP = ("events to send, comma-separated (default: all): "
               + ", ".join(e.value for e in EventType))


def webhook_commands(sub: Any) -> None:
    hook = sub.add_parser("webhook", help="webhook endpoints (signed event pushes)"
                          ).add_subparsers(title="webhook", metavar="ACTION")
    add = command(hook, "add", _add, "add an endpoint to an account; prints its secret once")
    add.add_argument("account")
    add.add_argument("url")
    add.add_argument("--events", default="*", help=EVENTS_HELP)
    add.add_argument("--description", default="")
    listing = command(hook, "list", _list, "list endpoints (an account's, or every one)")
    listing.add_argument("--account")
    show = command(hook, "show", _show, "an endpoint and its latest deliveries")
    show.add_argument("id")
    remove = command(hook, "remove", _remove, "delete an endpoint (what it is still owed "
                     "is given up)")
    remove.add_argument("id")
    rotate = command(hook, "rotate", _rotate, "give an endpoint a new secret; the old one "
                     "signs beside it for [webhooks] secret_overlap seconds")
    rotate.add_argument("id")
    replay = command(hook, "replay", _replay, "send an endpoint's events again, with their "
                     "original ids")
    replay.add_argument("id")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--since", help="events made since: an ISO 8601 time, or 30m, 2h, 7d")
    which.add_argument("--event", help="one event, by its id (webhook-id)")
    for name, handler, text in (("enable", _enable, "enable an endpoint again"),
                                ("disable", _disable, "stop sending to an endpoint")):
        command(hook, name, handler, text).add_argument("id")


def _endpoint(spool: Spool, endpoint_id: str) -> WebhookEndpoint:
    found = spool.get_webhook(endpoint_id)
    if found is None:
        raise NotFound(f"no webhook endpoint '{endpoint_id}'")
    return found


def _line(e: WebhookEndpoint) -> str:
    state = "enabled" if e.enabled else f"disabled ({e.disabled_reason})"
    return f"{e.id}  {e.url}  {','.join(sorted(e.events))}  {state}"


def _add(args: argparse.Namespace, config: Config) -> int:
    allowed = parse_networks(config.webhooks.allow_networks)
    events = args.events.split(",")
    spool = open_spool(config)
    try:
        account = spool.get_account(args.account)
        try:
            endpoint = new_endpoint(account.id, args.url, events, allowed, utcnow(),
                                    description=args.description)
            check_host(args.url, allowed)
        except Rejected as exc:
            print(f"smshub: {exc.reason}", file=sys.stderr)
            return 2
        spool.create_webhook(endpoint)
    finally:
        spool.close()
    emit(args, views.webhook_view(endpoint, with_secret=True),
         f"{_line(endpoint)}\nsecret {endpoint.secret}  (shown once: give it to the "
         "receiver to verify signatures)")
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        account_id = spool.get_account(args.account).id if args.account else None
        found = spool.list_webhooks(account_id)
    finally:
        spool.close()
    emit(args, [views.webhook_view(e) for e in found],
         "\n".join(_line(e) for e in found) or "No webhook endpoints")
    return 0


def _show(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        endpoint = _endpoint(spool, args.id)
        rows = [views.delivery_view(r) for r in spool.webhook_deliveries(endpoint.id, 20)]
    finally:
        spool.close()
    lines = [_line(endpoint)] + [
        f"  {d['event_id']}  {d['type']}  {d['status']}  attempts {d['attempts']}"
        + (f"  {d['error']['message']}" if d["error"] else "") for d in rows]
    emit(args, {**views.webhook_view(endpoint), "deliveries": rows}, "\n".join(lines))
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        _endpoint(spool, args.id)
        spool.remove_webhook(args.id, utcnow())
    finally:
        spool.close()
    emit(args, {"id": args.id, "removed": True}, f"webhook {args.id} removed")
    return 0


def _rotate(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        _endpoint(spool, args.id)
        now = utcnow()
        rotated = spool.rotate_webhook_secret(
            args.id, new_secret(), now + seconds(config.webhooks.secret_overlap), now)
    finally:
        spool.close()
    assert rotated is not None
    emit(args, views.webhook_view(rotated, with_secret=True),
         f"secret {rotated.secret}\nthe old secret also signs until "
         f"{rotated.previous_until.isoformat() if rotated.previous_until else 'now'}")
    return 0


def _replay(args: argparse.Namespace, config: Config) -> int:
    try:
        since = since_arg(args.since, config.hub.timezone)
    except ValueError as exc:
        print(f"smshub: --since: {exc}", file=sys.stderr)
        return 2
    spool = open_spool(config, create=False)
    try:
        _endpoint(spool, args.id)
        queued = spool.replay_webhook(args.id, since, args.event, utcnow())
    finally:
        spool.close()
    emit(args, {"id": args.id, "queued": queued}, f"{queued} events queued again")
    return 0


def _set_enabled(args: argparse.Namespace, config: Config, enabled: bool) -> int:
    spool = open_spool(config, create=False)
    try:
        _endpoint(spool, args.id)
        spool.enable_webhook(args.id, enabled, None if enabled else "disabled by the operator",
                             utcnow())
    finally:
        spool.close()
    word = "enabled" if enabled else "disabled"
    emit(args, {"id": args.id, "enabled": enabled}, f"webhook {args.id} {word}")
    return 0


def _enable(args: argparse.Namespace, config: Config) -> int:
    return _set_enabled(args, config, True)


def _disable(args: argparse.Namespace, config: Config) -> int:
    return _set_enabled(args, config, False)
